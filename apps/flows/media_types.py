"""The media types a flow may answer with (PhixFlow's `contentType` output attribute).

Plain Python: the flow's API settings check `api.contentType` when it is saved, and the
engine checks the content type a flow's own answer names when it runs.

A flow's answer always carries `X-Content-Type-Options: nosniff` and
`Content-Security-Policy: sandbox`, so HTML, SVG or XML in it cannot act as a page of
Flowsite's origin. Those headers do not help when a page of the origin *includes* the
answer as a subresource (a script or a style sheet is not a document, so the sandbox does
not apply, and nosniff lets a declared script type through), nor against a few types that
browsers handle outside the document model: those are refused.
"""

import codecs
import re

TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e])*"'
MEDIA_TYPE = re.compile(
    rf"(?P<type>{TCHARS})/(?P<subtype>{TCHARS})"
    rf"(?P<parameters>(?:[ \t]*;[ \t]*{TCHARS}=(?:{TCHARS}|{QUOTED}))*)[ \t]*"
)
PARAMETER = re.compile(rf"[ \t]*;[ \t]*(?P<name>{TCHARS})=(?P<value>{TCHARS}|{QUOTED})")

# The JavaScript MIME type essences of the WHATWG MIME Sniffing standard.
SCRIPT_TYPES = frozenset(
    {
        "application/ecmascript",
        "application/javascript",
        "application/x-ecmascript",
        "application/x-javascript",
        "text/ecmascript",
        "text/javascript",
        "text/javascript1.0",
        "text/javascript1.1",
        "text/javascript1.2",
        "text/javascript1.3",
        "text/javascript1.4",
        "text/javascript1.5",
        "text/jscript",
        "text/livescript",
        "text/x-ecmascript",
        "text/x-javascript",
    }
)
REFUSED = {
    "text/css": "a page of Flowsite's origin could load it as a style sheet",
    "application/wasm": "a page of Flowsite's origin could compile it as WebAssembly",
    "multipart/x-mixed-replace": "browsers have let its parts escape the answer's "
    "Content-Security-Policy",
    "application/x-shockwave-flash": "plug-ins ignore the answer's Content-Security-Policy",
    "application/futuresplash": "plug-ins ignore the answer's Content-Security-Policy",
}
EXAMPLES = "such as text/csv, application/xml or text/plain; charset=utf-8"


def media_type_error(value: object) -> str | None:
    """Why `value` cannot be the content type of a flow's answer, or None when it can."""
    match = MEDIA_TYPE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        return f"{value!r} is not a media type ({EXAMPLES})."
    essence = f"{match['type']}/{match['subtype']}".lower()
    if "*" in (match["type"], match["subtype"]):
        return f"{value!r} is a pattern, not a media type: name one ({EXAMPLES})."
    if essence in SCRIPT_TYPES:
        return (
            f"{essence} is refused: a page of Flowsite's origin could load it as a script, "
            "which X-Content-Type-Options: nosniff and Content-Security-Policy: sandbox do not "
            "prevent. Answer the code as text/plain."
        )
    if reason := REFUSED.get(essence):
        return (
            f"{essence} is refused: {reason}, which X-Content-Type-Options: nosniff and "
            "Content-Security-Policy: sandbox do not prevent."
        )
    charset = parameters(value).get("charset")
    if charset is not None and _codec(charset) != "utf-8":
        return (
            f"charset={charset} is refused: Flowsite sends text as UTF-8; say charset=utf-8 "
            "or leave the charset out."
        )
    return None


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def parameters(value: str) -> dict[str, str]:
    """A valid media type's parameters, names in lower case, values unquoted."""
    match = MEDIA_TYPE.fullmatch(value.strip())
    found = {}
    for parameter in PARAMETER.finditer(match["parameters"] if match else ""):
        text = parameter["value"]
        if text.startswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        found[parameter["name"].lower()] = text
    return found


def is_json(value: str) -> bool:
    """application/json, or a structured JSON type such as application/hal+json."""
    essence = value.split(";", 1)[0].strip().lower()
    return essence == "application/json" or essence.endswith("+json")


def as_sent(value: str) -> str:
    """The header value sent: a text type says that its text is UTF-8."""
    value = value.strip()
    if value.lower().startswith("text/") and "charset" not in parameters(value):
        return f"{value}; charset=utf-8"
    return value


def answer_content_type(answer: dict) -> str | None:
    """The content type a flow's own answer names: PhixFlow's `contentType` output
    attribute, else its `Content-Type` header; None when it names none."""
    if answer.get("contentType") not in (None, ""):
        return str(answer["contentType"])
    headers = answer.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if str(name).lower() == "content-type":
                return str(value)
    return None
