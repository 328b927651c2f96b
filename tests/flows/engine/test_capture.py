"""The engine's recording and replay ports, without a database: what a replay answers,
and the calls it names when the recording does not match."""

import re

import pytest

from apps.flows.engine.capture import RecordingHttp, Replay, Tape, without
from apps.flows.engine.context import RecordsError
from apps.flows.outbound.errors import OutboundError
from apps.flows.outbound.values import Auth, ConnectionConfig, HttpRequest, HttpResponse

CRM = ConnectionConfig(
    key="crm", base_uri="https://crm.example.com/api", auth=Auth("bearer", token="t0ken-secret")
)


class Answers:
    def send(self, connection, request, **options):
        return HttpResponse(
            200,
            {"content-type": "application/json", "set-cookie": "s=1"},
            b'{"ok": true}',
            "u",
            1.0,
        )


def never_secret(name: str) -> bool:
    return name.lower() in {"authorization", "set-cookie", "x-api-key"}


def recorded() -> dict:
    tape = Tape(max_bytes=10_000)
    http = RecordingHttp(Answers(), tape, lambda: "pageProcessors[0]", never_secret)
    http.send(
        CRM,
        HttpRequest("POST", "/leads", headers={"X-API-Key": "k3y", "X-Trace": "1"}, json={"a": 1}),
    )
    return tape.document()


def test_a_recorded_exchange_keeps_the_request_and_answer_but_no_credential():
    [exchange] = recorded()["exchanges"]
    assert exchange["url"] == "https://crm.example.com/api/leads"
    assert exchange["headers"] == {"X-Trace": "1"}
    assert exchange["body"] == {"a": 1}
    assert exchange["response"]["headers"] == {"content-type": "application/json"}
    assert "t0ken-secret" not in str(exchange)


def test_a_tape_past_its_cap_keeps_nothing_more_and_says_so():
    tape = Tape(max_bytes=50)
    tape.add("exchanges", {"url": "x" * 10})
    tape.add("exchanges", {"url": "x" * 100})
    assert tape.overflow
    assert len(tape.exchanges) == 1


def test_a_replay_answers_a_recorded_request_and_notes_nothing():
    replay = Replay(recorded(), where=lambda: "pageProcessors[0]", drop_header=never_secret)
    answer = replay.http.send(CRM, HttpRequest("POST", "/leads", json={"a": 1}))
    assert answer.json() == {"ok": True}
    assert replay.finish() == []


def test_a_request_the_recording_lacks_fails_naming_it():
    replay = Replay(recorded(), where=lambda: "pageProcessors[1]", drop_header=never_secret)
    with pytest.raises(
        OutboundError, match=re.escape("no answer for GET https://crm.example.com/api/other")
    ):
        replay.http.send(CRM, HttpRequest("GET", "/other"))
    missing, unused = replay.finish()
    assert (missing.problem, missing.step) == ("missing", "pageProcessors[1]")
    assert "GET https://crm.example.com/api/other" in missing.message
    assert unused.problem == "unused"
    assert "POST https://crm.example.com/api/leads" in unused.message


def test_a_changed_body_fails_unless_relaxed():
    strict = Replay(recorded(), where=lambda: "pageProcessors[0]", drop_header=never_secret)
    strict.http.send(CRM, HttpRequest("POST", "/leads", json={"a": 2}))
    [changed] = strict.finish()
    assert changed.problem == "changed"
    assert "body changed" in changed.message
    relaxed = Replay(
        recorded(),
        where=lambda: "pageProcessors[0]",
        drop_header=never_secret,
        relaxed=frozenset({"body"}),
    )
    relaxed.http.send(CRM, HttpRequest("POST", "/leads", json={"a": 2}))
    assert relaxed.finish() == []


def test_a_write_the_recording_lacks_is_a_records_error():
    replay = Replay({"writes": []}, where=lambda: "pageProcessors[2]", drop_header=never_secret)
    with pytest.raises(RecordsError):
        replay.records.write({"_recordTypeId": "1", "action": "create"}, {"Company": "Acme"})
    [missing] = replay.finish()
    assert (missing.kind, missing.problem) == ("write", "missing")


def test_ignored_fields_go_by_name_at_any_depth_or_by_dotted_path():
    value = {"id": 1, "at": 5, "customer": {"id": 2, "at": 6}, "items": [{"at": 7, "n": 1}]}
    assert without(value, {"at"}) == {"id": 1, "customer": {"id": 2}, "items": [{"n": 1}]}
    assert without(value, {"customer.id"}) == {
        "id": 1,
        "at": 5,
        "customer": {"at": 6},
        "items": [{"at": 7, "n": 1}],
    }
