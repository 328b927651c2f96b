"""BENCHMARKS.md is made of sections between `<!-- name -->` markers, one per benchmark;
each script replaces its own and keeps the others."""

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def read_section(name: str) -> str:
    """The current text of a section ("" when there is none)."""
    document = BENCHMARKS.read_text() if BENCHMARKS.exists() else ""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start in document and end in document:
        return document.split(start, 1)[1].split(end, 1)[0]
    return ""


def write_section(name: str, text: str) -> None:
    """Replace this benchmark's part of BENCHMARKS.md, keeping the others."""
    document = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    section = f"{start}\n{text.strip()}\n{end}"
    if start in document and end in document:
        before, rest = document.split(start, 1)
        document = before + section + rest.split(end, 1)[1]
    else:
        document = document.rstrip() + "\n\n" + section + "\n"
    BENCHMARKS.write_text(document)
    print(f"wrote the {name} section of {BENCHMARKS}")
