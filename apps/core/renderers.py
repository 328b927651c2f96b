from rest_framework import renderers


class ProblemJSONRenderer(renderers.JSONRenderer):
    """Lets a client that accepts only application/problem+json get its errors (not 406)."""

    media_type = "application/problem+json"


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API (a browser asking for HTML). The management API's documents are
    not DRF serializers (apps.flows.documents), so DRF cannot build its forms for them:
    their page shows the document and its links, without the forms, instead of a 500."""

    def get_rendered_html_form(self, data, view, method, request):
        try:
            return super().get_rendered_html_form(data, view, method, request)
        except AssertionError:  # "should either include a serializer_class attribute"
            return None

    def get_raw_data_form(self, data, view, method, request):
        try:
            return super().get_raw_data_form(data, view, method, request)
        except AssertionError:
            return None
