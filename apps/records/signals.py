"""What records tells the apps above it."""

from django.dispatch import Signal

# Sent with `record_type` after a field's type changed and the ordering indexes that cast
# its old type were dropped: whoever orders by the record type's fields builds theirs again.
fields_retyped = Signal()
