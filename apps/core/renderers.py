from rest_framework import renderers


class ProblemJSONRenderer(renderers.JSONRenderer):
    """Lets a client that accepts only application/problem+json get its errors (not 406)."""

    media_type = "application/problem+json"
