"""A flow's built spec is remembered by its process for at most half a second (issue
"Hot path"): a change to the flow is seen at once, a change to a resource it uses within
half a second whatever made it (`QuerySet.update()` included), and the decrypted secrets
leave the memory when the entry expires."""

import pytest

from apps.flows import spec_cache
from apps.flows.models import Connection, Export, Flow, Script
from tests.conftest import wait_for


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(spec_cache.memory, "seconds", 0.5)  # as in production (tests/conftest.py)
    monkeypatch.setattr(spec_cache.memory, "clock", clock)
    spec_cache.clear()
    yield clock
    spec_cache.clear()


@pytest.fixture
def flow(application) -> Flow:
    script = Script.objects.create(name="greet", content="function main(ctx) { return 1; }")
    return Flow.objects.create(
        application=application,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
    )


def source_of(flow: Flow) -> str:
    return spec_cache.flow_spec(flow).processors[0].resource.source


def fresh(flow: Flow) -> Flow:
    return Flow.objects.select_related("application").get(pk=flow.pk)


def test_a_spec_is_built_once_within_half_a_second(flow, clock, django_assert_num_queries):
    flow, again = fresh(flow), fresh(flow)
    with django_assert_num_queries(1):  # the script
        first = spec_cache.flow_spec(flow)
    with django_assert_num_queries(0):
        assert spec_cache.flow_spec(again) is first  # the same flow, read again
    clock.now += spec_cache.SECONDS
    with django_assert_num_queries(1):
        assert spec_cache.flow_spec(flow) is not first


def test_a_script_changed_by_update_is_used_half_a_second_later(flow, clock):
    flow = fresh(flow)
    assert "return 1" in source_of(flow)
    Script.objects.update(content="function main(ctx) { return 2; }")  # no signal
    clock.now += spec_cache.SECONDS
    assert "return 2" in source_of(flow)


def test_a_resource_saved_in_this_process_is_used_at_once(flow, clock):
    flow = fresh(flow)
    assert "return 1" in source_of(flow)
    script = Script.objects.get()
    script.content = "function main(ctx) { return 3; }"
    script.save()
    assert "return 3" in source_of(flow)


def test_a_changed_flow_document_is_built_again_at_once(flow, clock, application):
    flow = fresh(flow)
    spec_cache.flow_spec(flow)
    other = Script.objects.create(name="other", content="function main(ctx) { return 4; }")
    # update(): no signal, yet the caller's flow shows the new pipeline and variables.
    Flow.objects.filter(pk=flow.pk).update(
        page_processors=[{"type": "script", "_scriptId": str(other.pk)}], variables={"a": 1}
    )
    changed = fresh(flow)
    spec = spec_cache.flow_spec(changed)
    assert "return 4" in spec.processors[0].resource.source
    assert spec.variables == {"a": 1}


def test_decrypted_secrets_leave_the_memory_when_the_entry_expires(application, monkeypatch):
    monkeypatch.setattr(spec_cache.memory, "seconds", 0.05)
    connection = Connection.objects.create(
        name="Keyed", base_uri="https://api.example", auth_type="bearer"
    )
    connection.set_secrets(token="s3cret-token")
    connection.save()
    export = Export.objects.create(name="people", connection=connection, relative_uri="/people")
    flow = Flow.objects.create(application=application, name="reader")
    flow.page_generators = [{"_exportId": str(export.pk)}]
    flow.save()
    spec = spec_cache.flow_spec(fresh(flow))
    assert spec.generators[0].resource.connection.auth.token == "s3cret-token"
    assert spec_cache.memory
    # No call comes: the timer drops the entry at its deadline all the same.
    wait_for(lambda: not spec_cache.memory, timeout=10, message="the entry to be dropped")
