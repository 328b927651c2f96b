"""Admin widgets of flows: a code editor for scripts."""

from django import forms

CODEMIRROR = "flows/codemirror/"


class CodeEditor(forms.Textarea):
    """A monospace textarea that becomes a code editor when JavaScript runs: CodeMirror 5
    (committed under static/flows/codemirror, served by whitenoise) with highlighting, line
    numbers, Tab that indents, bracket matching and closing. With `check_url`, the source is
    posted there as the builder types (debounced) and before the form is sent; an answer
    {"ok": false, "error": …, "line": n} is shown under the editor with line n marked, and the
    form is not sent. Without JavaScript it stays the textarea, checked on save by the form."""

    def __init__(self, *, mode: str = "javascript", check_url=None, attrs=None):
        attrs = {
            "rows": 24,
            "spellcheck": "false",
            "class": "code-editor",
            "data-mode": mode,
            **(attrs or {}),
        }
        if check_url is not None:
            attrs["data-check-url"] = check_url  # may be lazy: reversed when rendered
        super().__init__(attrs=attrs)

    class Media:
        css = {"all": (f"{CODEMIRROR}codemirror.css", "flows/code_editor.css")}
        js = (
            f"{CODEMIRROR}codemirror.js",
            f"{CODEMIRROR}javascript.js",
            f"{CODEMIRROR}matchbrackets.js",
            f"{CODEMIRROR}closebrackets.js",
            "flows/code_editor.js",
        )
