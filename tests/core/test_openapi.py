import re
import subprocess
import sys
import uuid

import pytest

from tests.conftest import BASE_DIR


def test_the_schema_generates_and_validates_without_warnings():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            "/dev/null",
        ],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_an_anonymous_reader_gets_a_schema_of_what_it_may_call(client, db):
    """Nothing without public flows (tests/core/test_openapi_readers.py has the rest)."""
    answer = client.get("/api/schema/?format=json")
    assert answer.status_code == 200
    assert answer.json()["paths"] == {}


def test_every_operation_has_a_response_example(admin_client):
    schema = admin_client.get("/api/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            success = [c for c in operation["responses"] if c.startswith("2")]
            assert success, (method, path)
            for code, response in operation["responses"].items():
                if "content" not in response:
                    assert code == "204", (method, path, code)  # nothing to show
                    continue
                media = next(iter(response["content"].values()))
                assert media.get("examples") or media.get("example"), (method, path, code)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_no_external_asset(client, url, db):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert all(asset.startswith("/") for asset in assets), assets
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_every_path_parameter_is_described_with_an_example_that_fits_it(admin_client):
    """Swagger UI puts the example in the URL: without one it read /api/1/action///poll/."""
    schema = admin_client.get("/api/schema/?format=json").json()
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    continue
                where = f"{method.upper()} {path} {{{parameter['name']}}}"
                assert parameter.get("description"), where
                example = parameter.get("example")
                assert example, where
                pattern = parameter["schema"].get("pattern")
                assert pattern is None or re.fullmatch(pattern.strip("^$"), example), where
                if parameter["schema"].get("format") == "uuid":
                    uuid.UUID(example)
                checked += 1
    assert checked > 50
