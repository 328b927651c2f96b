"""What records tells the apps above it."""

from django.dispatch import Signal

# Sent with `record_type` after a field's type changed and the ordering indexes that cast
# its old type were dropped: whoever orders by the record type's fields builds theirs again.
fields_retyped = Signal()

# Sent with `record_type` and `fields` (its RecordFields as a change would leave them,
# unsaved) before the change is saved; each receiver returns a list of messages, one per
# use of the fields the change would break (a view filtering on a removed field). Any
# message refuses the change.
fields_changing = Signal()
