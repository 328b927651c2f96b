"""What an OPTIONS request answers on every API view."""

from rest_framework.metadata import SimpleMetadata


class ApiMetadata(SimpleMetadata):
    """200 with the Allow header (DRF sets it from the view's methods), the view's name and
    the media types it renders and parses.

    DRF's default also describes a POST/PUT body from the view's serializer (`actions`):
    that fails with a 500 on views without one, such as every DocumentViewSet, and would
    be a second, poorer description of what /api/schema/ describes already. So no view
    needs a serializer for OPTIONS, and the request and response shapes are in one place.
    """

    def determine_actions(self, request, view):
        return {}
