import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from werkzeug.wrappers import Response

from apps.executions import launch, services, tasks
from apps.executions.models import Execution
from apps.flows.models import Connection, Export, Flow


def make_execution(flow, **fields) -> Execution:
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN)
    Execution.objects.filter(pk=execution.pk).update(**fields)
    execution.refresh_from_db()
    return execution


def test_purge_deletes_only_executions_past_retention(application):
    flow = Flow.objects.create(application=application, name="f")
    old = make_execution(flow, created_at=timezone.now() - timedelta(days=31))
    recent = make_execution(flow)
    assert services.purge_executions(older_than_days=30) >= 1
    assert not Execution.objects.filter(pk=old.pk).exists()
    assert Execution.objects.filter(pk=recent.pk).exists()


def test_cancelling_a_queued_run_cancels_it_at_once(application):
    flow = Flow.objects.create(application=application, name="f")
    execution = make_execution(flow)
    assert services.cancel_execution(execution)
    assert execution.status == "cancelled"
    assert launch.run_queued(execution.pk).status == "cancelled"  # a late task does nothing


def test_a_run_sees_a_cancel_request_and_stops(application, local_api, httpserver):
    def slow_page(request):
        time.sleep(1.1)  # the run looks for a cancel request about once a second
        return Response(json.dumps([{"n": i} for i in range(3)]), content_type="application/json")

    httpserver.expect_request("/n").respond_with_handler(slow_page)
    export = Export.objects.create(name="N", connection=local_api, relative_uri="/n")
    flow = Flow.objects.create(
        application=application, name="f", page_generators=[{"_exportId": str(export.pk)}]
    )
    execution = make_execution(flow, cancel_requested=True)
    execution = launch.run_queued(execution.pk)
    assert execution.status == "cancelled"
    # It says it stopped partway, not that it finished its last step (an outside probe
    # found every cancelled run saying so).
    execution.refresh_from_db()
    assert "stopped before it finished" in execution.error


def test_connection_secrets_never_reach_the_logs_or_the_execution(
    application, httpserver, caplog, admin_user
):
    httpserver.expect_request(
        "/secure", headers={"Authorization": "Bearer tok-LOG-SECRET"}
    ).respond_with_json({"error": "denied"}, status=403)
    connection = Connection.objects.create(
        name="Secure",
        base_uri=httpserver.url_for("/").rstrip("/"),
        auth_type="bearer",
        allowed_private_hosts=["localhost"],
    )
    connection.set_secrets(token="tok-LOG-SECRET")
    connection.save()
    export = Export.objects.create(name="S", connection=connection, relative_uri="/secure")
    flow = Flow.objects.create(
        application=application,
        name="f",
        page_processors=[{"type": "export", "_exportId": str(export.pk)}],
    )
    with caplog.at_level(logging.DEBUG):
        execution = launch.admin_test_run(flow, caller=launch.Caller(user=admin_user))
    assert execution.num_error == 1
    stored = [execution.error, str(execution.response), str(execution.request)]
    stored += [f"{e.message} {e.body_excerpt} {e.record}" for e in execution.errors.all()]
    stored += [f"{s.sample_in} {s.sample_out} {s.debug_lines}" for s in execution.steps.all()]
    assert "tok-LOG-SECRET" not in caplog.text
    assert all("tok-LOG-SECRET" not in text for text in stored)
    assert execution.errors.get().http_status == 403


def test_a_run_failed_as_stale_keeps_that_ending_when_its_process_resumes(application):
    """Found by an outside probe: a worker paused (SIGSTOP, a VM pause) past the stale
    limit had its run failed, with 'retry it if it is safe'; resumed, it rewrote the run
    as succeeded, so whoever retried had run the flow twice."""
    flow = Flow.objects.create(application=application, name="f")
    execution = make_execution(flow)
    assert services.claim(execution) == "claimed"
    later = timezone.now() + timedelta(seconds=settings.FLOWSITE_STALE_EXECUTION_SECONDS + 5)
    assert services.recover_stale_executions(now=later) == [execution.pk]

    finished = services.execute(execution)  # the paused process carries on

    stored = Execution.objects.get(pk=execution.pk)
    assert stored.status == "failed"
    assert "no sign of life" in stored.error
    assert finished.status == "failed"  # and what it answers agrees with the record


def test_a_run_failed_by_housekeeping_starts_its_flows_error_handler(application, queued):
    """The failures an operator most needs to hear of (a worker that died) started no
    handler (found by an outside probe)."""
    handler = Flow.objects.create(application=application, name="handler")
    flow = Flow.objects.create(application=application, name="f", error_flow=handler)
    execution = make_execution(flow)
    assert services.claim(execution) == "claimed"
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Execution.objects.filter(pk=execution.pk).update(heartbeat_at=an_hour_ago)

    assert tasks.recover_stale_executions() == 1

    handled = Execution.objects.get(flow=handler)
    assert (handled.trigger, handled.parent_id) == ("error_handler", execution.pk)
    assert handled.input["status"] == "failed"


def test_a_cancelled_run_whose_process_died_ends_cancelled(application):
    """A cancel answered 202 always ends cancelled (README), also when the process that ran
    it died before it could stop it (an outside probe found it failed instead)."""
    flow = Flow.objects.create(application=application, name="f")
    execution = make_execution(flow)
    assert services.claim(execution) == "claimed"
    Execution.objects.filter(pk=execution.pk).update(cancel_requested=True)
    later = timezone.now() + timedelta(seconds=settings.FLOWSITE_STALE_EXECUTION_SECONDS + 5)

    assert services.recover_stale_executions(now=later) == []  # nothing failed

    stored = Execution.objects.get(pk=execution.pk)
    assert (stored.status, stored.status_code) == ("cancelled", 409)
    assert "process running it had stopped" in stored.error


def test_a_run_that_ends_late_starts_its_error_handler_once(application, queued, monkeypatch):
    """Found by the review: housekeeping started the handler, and the resumed process
    started it again."""
    handler = Flow.objects.create(application=application, name="handler")
    flow = Flow.objects.create(application=application, name="f", error_flow=handler)
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN)
    perform = services.perform

    def paused_past_the_stale_limit(execution, **kwargs):
        result = perform(execution, **kwargs)
        an_hour_ago = timezone.now() - timedelta(hours=1)
        Execution.objects.filter(pk=execution.pk).update(heartbeat_at=an_hour_ago)
        assert tasks.recover_stale_executions() == 1
        return result

    monkeypatch.setattr(services, "perform", paused_past_the_stale_limit)
    launch.run_queued(execution.pk)

    assert Execution.objects.filter(flow=handler).count() == 1


def test_a_run_waiting_for_a_slot_in_a_process_that_died_is_failed_saying_so(application):
    """A sub-flow's run or the admin's Test run waits for a slot in its process, looking at
    the run every 50 ms; its process killed, the run stayed queued for ever (an outside
    probe). One still looked at stays queued."""
    flow = Flow.objects.create(application=application, name="f", max_concurrency=1)
    stale = timezone.now() - timedelta(seconds=settings.FLOWSITE_STALE_EXECUTION_SECONDS + 5)
    waiting = {}
    for trigger in ("subflow", "test", "run"):
        for looked_at in ("lost", "alive"):
            run = services.create_execution(flow=flow, trigger=trigger)
            Execution.objects.filter(pk=run.pk).update(
                created_at=stale, heartbeat_at=stale if looked_at == "lost" else timezone.now()
            )
            waiting[trigger, looked_at] = run.pk

    failed = services.recover_stale_executions()

    assert set(failed) == {waiting[trigger, "lost"] for trigger in ("subflow", "test", "run")}
    lost = Execution.objects.get(pk=waiting["subflow", "lost"])
    assert (lost.status, lost.status_code) == ("failed", 500)
    assert "its process stopped" in lost.error
    alive = Execution.objects.filter(pk__in=[waiting[t, "alive"] for t in ("subflow", "test")])
    assert set(alive.values_list("status", flat=True)) == {"queued"}


def test_a_run_that_waited_for_a_slot_does_not_run_a_flow_deleted_or_disabled_meanwhile(
    application,
):
    """The waiting run was claimed with the flow it had read before: it ran the deleted
    flow's calls, past its limit (an outside probe)."""
    outcomes = {}
    for change in ("deleted", "disabled"):
        flow = Flow.objects.create(application=application, name=change, max_concurrency=1)
        waiter = services.create_execution(flow=flow, trigger="api")
        if change == "deleted":
            flow.delete()
        else:
            Flow.objects.filter(pk=flow.pk).update(disabled=True)

        assert services.claim(waiter) == "claimed"
        outcomes[change] = services.execute(waiter)

    assert (outcomes["deleted"].status, outcomes["deleted"].error) == (
        "failed",
        "The flow was deleted.",
    )
    assert outcomes["disabled"].status == "cancelled"
    assert "disabled before this run started" in outcomes["disabled"].error
