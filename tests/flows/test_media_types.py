"""The media types a flow may answer with (api.contentType, a flow's own contentType)."""

import pytest

from apps.flows.api_settings import FlowApi, api_errors
from apps.flows.media_types import answer_content_type, as_sent, is_json, media_type_error


@pytest.mark.parametrize(
    "value",
    [
        "text/csv",
        "application/xml",
        "text/plain; charset=utf-8",
        'text/plain;charset="UTF-8"',
        "application/vnd.ms-excel",
        "application/hal+json",
        "text/html",
        "image/svg+xml",
        "application/octet-stream",
    ],
)
def test_real_media_types_are_accepted(value):
    assert media_type_error(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "csv",
        "text/",
        "text/csv;",
        "text csv",
        "text/csv; charset",
        "text/csv\nX-Evil: 1",
        "*/*",
        "text/*",
        "TEXT/JavaScript",
        "application/javascript; charset=utf-8",
        "text/css",
        "application/wasm",
        "multipart/x-mixed-replace; boundary=frame",
        "text/csv; charset=iso-8859-1",
        "text/csv; charset=no-such-charset",
        42,
        None,
    ],
)
def test_unusable_or_dangerous_media_types_are_refused(value):
    assert media_type_error(value)


def test_the_api_settings_check_and_keep_the_content_type():
    assert api_errors({"contentType": "text/csv"}) == []
    assert api_errors({"contentType": "text/javascript"})[0].startswith(
        "api.contentType: text/javascript is refused"
    )
    assert FlowApi.of({"contentType": " text/csv "}).content_type == "text/csv"
    assert FlowApi.of({}).content_type == ""


def test_helpers():
    assert is_json("application/json; charset=utf-8")
    assert is_json("application/problem+json")
    assert not is_json("text/csv")
    assert as_sent("text/csv") == "text/csv; charset=utf-8"
    assert as_sent("text/csv; charset=utf-8") == "text/csv; charset=utf-8"
    assert as_sent("application/xml") == "application/xml"
    assert answer_content_type({"contentType": "a/b", "headers": {"Content-Type": "c/d"}}) == "a/b"
    assert answer_content_type({"headers": {"content-type": "c/d"}}) == "c/d"
    assert answer_content_type({"headers": "nonsense"}) is None
