import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """JSON as a builder reads it (indented, double quotes), not Python's repr."""
    if value is None or value == "":
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
