"""README's curls run as written against the demo that `make run` creates.

The demo is installed by `manage.py bootstrap` (what `make run` runs) into an empty test
database whose ids start at 1, as a fresh `make run`'s do; the variables come from the
`export …` line bootstrap prints, with BASE pointed at the live server. Then every ```sh
block of README that calls curl runs, in README's order, in one bash, as a reader pasting
them would (later blocks use what earlier ones set and created). Each curl must answer 2xx,
or the status README shows under it (`# HTTP/1.1 404 Not Found`). A curl marked
`# illustrative` in README is not run; ILLUSTRATIVE lists them.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.executions import queue
from tests.conftest import require

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)

README = settings.BASE_DIR / "README.md"
BLOCK = re.compile(r"^[ \t]*```sh\n(.*?)^[ \t]*```", re.S | re.M)
STATUS_COMMENT = re.compile(r"^#\s*HTTP/[\d.]+\s+(\d{3})\b")
MARK = "README-CURL-STATUS"
ILLUSTRATIVE: list[str] = []  # curls README marks `# illustrative`: none at present


@dataclass(frozen=True)
class Curl:
    command: str  # the logical line, continuations joined
    expected: int | None  # None: any 2xx


def logical_lines(block: str) -> list[str]:
    lines, current = [], ""
    for raw in block.splitlines():
        line = raw.strip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    return lines


def readme_blocks() -> list[str]:
    """The ```sh blocks of README that call curl, dedented, in order."""
    blocks = [match.group(1) for match in BLOCK.finditer(README.read_text())]
    return [block for block in blocks if re.search(r"\bcurl\s", block)]


def is_curl(line: str) -> bool:
    return line.startswith("curl ") or "$(curl " in line


def readme_curls() -> tuple[list[Curl], list[str], str]:
    """The curls to run with their expected statuses, the illustrative ones, and the
    script that runs every block without the illustrative ones."""
    curls, illustrative, script = [], [], []
    for block in readme_blocks():
        lines = logical_lines(block)
        for index, line in enumerate(lines):
            if not is_curl(line):
                script.append(line)
                continue
            if "# illustrative" in line:
                illustrative.append(line)
                continue
            following = lines[index + 1] if index + 1 < len(lines) else ""
            found = STATUS_COMMENT.match(following)
            curls.append(Curl(line, int(found.group(1)) if found else None))
            script.append(line)
    return curls, illustrative, "\n".join(script)


def demo_variables() -> dict[str, str]:
    """What bootstrap prints for README's curls: `export BASE=… FLOWSITE_KEY=… DEMO_KEY=…`."""
    out = StringIO()
    call_command("bootstrap", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if line.strip().startswith("export "))
    return dict(pair.split("=", 1) for pair in line.split()[1:])


def test_readme_has_its_curls_and_marks_none_illustrative_but_those_listed():
    curls, illustrative, _ = readme_curls()
    assert len(curls) >= 16, [curl.command for curl in curls]
    assert illustrative == ILLUSTRATIVE


def test_every_readme_curl_answers_as_readme_says_against_the_demo(
    live_server, tmp_path, monkeypatch
):
    require("curl", None if shutil.which("curl") else "curl is not installed")
    monkeypatch.setattr(queue, "send_run", lambda execution_id: None)  # no worker: stays queued
    variables = demo_variables()
    assert variables["BASE"] == f"http://{settings.HOST}:{settings.PORT}"
    assert set(variables) == {"BASE", "FLOWSITE_KEY", "DEMO_KEY"}
    curls, illustrative, script = readme_curls()
    for line in illustrative:
        print(f"not run (illustrative): {line}")
    wrapper = (
        "curl() { command curl --silent --show-error --max-time 60 "
        f"--write-out '%{{stderr}}{MARK} %{{http_code}}\\n' \"$@\"; }}\n"
    )

    done = subprocess.run(
        ["bash", "-c", wrapper + script],
        cwd=tmp_path,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            **variables,
            "BASE": live_server.url,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    statuses = [int(code) for code in re.findall(rf"^{MARK} (\d+)$", done.stderr, re.M)]
    report = "\n".join(
        f"{status} {'ok' if ok else 'WRONG'}  {curl.command[:140]}"
        for curl, status, ok in (
            (
                curl,
                status,
                status == curl.expected if curl.expected else 200 <= status < 300,
            )
            for curl, status in zip(curls, statuses, strict=False)
        )
    )
    print(report, done.stdout, sep="\n")  # shown by pytest -s, or when the test fails
    assert len(statuses) == len(curls), f"{report}\n--- stderr:\n{done.stderr[-3000:]}"
    assert "WRONG" not in report, f"{report}\n--- stdout:\n{done.stdout[-6000:]}"
