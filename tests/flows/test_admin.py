import json
import re

import pytest
from django.db import connection as db

from apps.executions.models import Execution
from apps.flows.models import Connection, Flow, Script


@pytest.mark.parametrize(
    "model", ["application", "connection", "export", "import", "script", "flow"]
)
def test_changelist_and_add_pages_render(admin_client, model):
    assert admin_client.get(f"/admin/flows/{model}/").status_code == 200
    assert admin_client.get(f"/admin/flows/{model}/add/").status_code == 200


def test_the_execution_changelist_renders_with_few_queries(
    admin_client, application, django_assert_max_num_queries
):
    flow = Flow.objects.create(application=application, name="f")
    for _ in range(5):
        Execution.objects.create(flow=flow, flow_name="f", trigger="run")
    with django_assert_max_num_queries(12):
        assert admin_client.get("/admin/executions/execution/").status_code == 200


CONNECTION_FORM = {
    "type": "http",
    "base_uri": "https://crm.example.com",
    "headers": "{}",
    "auth_type": "none",
    "header_name": "X-API-Key",
    "allowed_private_hosts": "",
    "concurrency": 1,
}


def dump_all_tables() -> str:
    rows = []
    with db.cursor() as cursor:
        for table in db.introspection.table_names():
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")  # noqa: S608
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def test_connection_secrets_are_write_only_and_encrypted_at_rest(admin_client):
    response = admin_client.post(
        "/admin/flows/connection/add/",
        {
            **CONNECTION_FORM,
            "auth_type": "bearer",
            "token": "tok-SECRET-123",
            "name": "CRM",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = Connection.objects.get(name="CRM")
    assert connection.secrets() == {"token": "tok-SECRET-123"}
    assert "tok-SECRET-123" not in dump_all_tables()
    page = admin_client.get(f"/admin/flows/connection/{connection.pk}/change/").content.decode()
    assert "tok-SECRET-123" not in page
    assert "Stored (hidden)" in page

    # Saving again without the secret keeps it.
    admin_client.post(
        f"/admin/flows/connection/{connection.pk}/change/",
        {
            **CONNECTION_FORM,
            "base_uri": "https://crm.example.com/v2",
            "auth_type": "bearer",
            "token": "",
            "name": "CRM",
        },
    )
    connection.refresh_from_db()
    assert connection.base_uri.endswith("/v2")
    assert connection.secrets() == {"token": "tok-SECRET-123"}


def test_the_connection_form_sets_the_concurrency_level_within_its_bounds(admin_client):
    add = admin_client.get("/admin/flows/connection/add/").content.decode()
    assert re.search(r'<input [^>]*name="concurrency" value="1"', add)  # one at a time
    for refused in (0, 51):
        response = admin_client.post(
            "/admin/flows/connection/add/",
            {**CONNECTION_FORM, "name": "CRM", "concurrency": refused},
        )
        assert response.status_code == 200
        assert "Enter a concurrency level from 1 to 50" in response.content.decode()
    assert not Connection.objects.exists()

    response = admin_client.post(
        "/admin/flows/connection/add/", {**CONNECTION_FORM, "name": "CRM", "concurrency": 8}
    )
    assert response.status_code == 302
    assert Connection.objects.get(name="CRM").concurrency == 8


def test_a_bearer_connection_without_a_token_is_refused(admin_client):
    response = admin_client.post(
        "/admin/flows/connection/add/",
        {
            **CONNECTION_FORM,
            "auth_type": "bearer",
            "name": "CRM",
        },
    )
    assert response.status_code == 200
    assert "Required for Bearer token" in response.content.decode()


def test_invalid_javascript_is_refused_at_save_with_the_line(admin_client):
    response = admin_client.post(
        "/admin/flows/script/add/",
        {
            "name": "broken",
            "language": "javascript",
            "content": "function main(ctx) {\n  return {;\n}",
        },
    )
    assert response.status_code == 200
    assert "SyntaxError" in response.content.decode()
    assert not Script.objects.exists()


def test_a_flow_referencing_a_missing_resource_is_refused_at_save(admin_client, application):
    response = admin_client.post(
        "/admin/flows/flow/add/",
        {
            "application": application.pk,
            "name": "f",
            "page_generators": "[]",
            "page_processors": json.dumps([{"type": "script", "_scriptId": "404"}]),
            "variables": "{}",
            "api": "{}",
            "timezone": "UTC",
            "timeout_ms": 60000,
            "max_concurrency": 0,
            "concurrency_policy": "queue",
        },
    )
    assert response.status_code == 200
    assert "pageProcessors[0]: script 404 does not exist." in response.content.decode()
    assert not Flow.objects.exists()


def test_test_run_shows_the_result_and_each_step(admin_client, application):
    script = Script.objects.create(
        name="prepareResponse",
        content="function main(ctx) { return {statusCode: 200, result: 'Hello ' + "
        "ctx.trigger.args.request.query.name} }",
    )
    flow = Flow.objects.create(
        application=application,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
    )
    change = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert f"/admin/flows/flow/{flow.pk}/test-run/" in change
    assert "transforms" in change  # the readable pipeline
    response = admin_client.post(
        f"/admin/flows/flow/{flow.pk}/test-run/",
        {"input": "{}", "query": '{"name": "Leor"}', "variables": "{}"},
    )
    page = response.content.decode()
    assert "Succeeded" in page
    assert "Hello Leor" in page
    execution = Execution.objects.get()
    detail = admin_client.get(
        f"/admin/executions/execution/{execution.pk}/change/"
    ).content.decode()
    assert "pageProcessors[0]" in detail
    assert "Hello Leor" in detail


def test_run_now_queues_a_run_on_commit(
    admin_client, application, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.executions import queue

    queued = []
    monkeypatch.setattr(queue, "send_run", queued.append)
    flow = Flow.objects.create(application=application, name="f")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/flows/flow/", {"action": "run_now", "_selected_action": [flow.pk]}
        )
    execution = Execution.objects.get()
    assert queued == [str(execution.pk)]
    assert execution.celery_task_id == str(execution.pk)
    assert (execution.trigger, execution.status) == ("run", "queued")


def test_clone_and_enable_disable_actions(admin_client, application):
    flow = Flow.objects.create(application=application, name="f")
    admin_client.post("/admin/flows/flow/", {"action": "clone", "_selected_action": [flow.pk]})
    clone = Flow.objects.get(name="f (copy)")
    assert clone.disabled
    admin_client.post("/admin/flows/flow/", {"action": "enable", "_selected_action": [clone.pk]})
    clone.refresh_from_db()
    assert not clone.disabled


FLOW_FORM = {
    "name": "f",
    "page_generators": "[]",
    "variables": "{}",
    "api": "{}",
    "timezone": "UTC",
    "timeout_ms": 60000,
    "max_concurrency": 0,
    "concurrency_policy": "queue",
}


@pytest.mark.parametrize(
    ("processors", "message"),
    [
        (
            '[{"type": "export", "_exportId": "1", "responseMapping": {"fields": 5}}]',
            "must be lists",
        ),
        ('[{"type": [], "_scriptId": "1"}]', "type must be one of"),
        ('[{"type": "script", "_scriptId": 1000000000000000000000000000000}]', "needs _scriptId"),
        ('[{"type": "script", "_scriptId": "1", "function": 5}]', "function must be a string"),
        ('[{"type": "bogus"}, 7]', "type must be one of"),
        (
            '[{"type": "export", "_exportId": "1", '
            '"responseMapping": {"fields": [{"extract": "a", "generate": ""}]}}]',
            "responseMapping.fields[0] needs",
        ),
    ],
)
def test_a_malformed_pipeline_is_refused_with_a_message_not_a_crash(
    admin_client, application, processors, message
):
    form = {**FLOW_FORM, "application": application.pk, "page_processors": processors}
    response = admin_client.post("/admin/flows/flow/add/", form)
    assert response.status_code == 200
    assert message in response.content.decode()


def test_the_change_page_survives_invalid_json_in_one_list(admin_client, application):
    flow = Flow.objects.create(application=application, name="f")
    form = {
        **FLOW_FORM,
        "application": application.pk,
        "page_generators": "[{",
        "page_processors": '[{"type": "bogus"}, 5]',
    }
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 200
    assert "type must be one of" in response.content.decode()


def test_credentials_in_default_headers_are_kept_encrypted_and_never_shown(admin_client):
    response = admin_client.post(
        "/admin/flows/connection/add/",
        {
            **CONNECTION_FORM,
            "headers": '{"X-Api-Key": "k-0123456789"}',
            "name": "CRM",
        },
    )
    assert response.status_code == 302
    connection = Connection.objects.get(name="CRM")
    assert "k-0123456789" not in str(connection.headers)
    assert "k-0123456789" not in connection.secret_headers_encrypted
    page = admin_client.get(f"/admin/flows/connection/{connection.pk}/change/")
    assert "k-0123456789" not in page.content.decode()


def test_a_connection_whose_secrets_cannot_be_decrypted_can_be_reset(admin_client, settings):
    connection = Connection.objects.create(
        name="Old", base_uri="https://x.example", auth_type="bearer"
    )
    connection.set_secrets(token="t")
    connection.save()
    settings.FLOWSITE_ENCRYPTION_KEY = "a-completely-different-key-of-32-bytes!!"
    page = admin_client.get(f"/admin/flows/connection/{connection.pk}/change/")
    assert page.status_code == 200
    assert "cannot be decrypted" in page.content.decode()
    response = admin_client.post(
        f"/admin/flows/connection/{connection.pk}/change/",
        {
            **CONNECTION_FORM,
            "base_uri": "https://x.example",
            "auth_type": "bearer",
            "token": "new",
            "clear_secrets": "on",
            "name": "Old",
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.secrets() == {"token": "new"}


def test_a_schedule_saved_in_the_admin_becomes_a_periodic_task_and_goes_with_the_flow(
    admin_client, application
):
    from django_celery_beat.models import PeriodicTask

    form = {
        **FLOW_FORM,
        "application": application.pk,
        "page_processors": "[]",
        "schedule": "? 0 2 ? * *",
        "timezone": "America/Los_Angeles",
    }
    response = admin_client.post("/admin/flows/flow/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    flow = Flow.objects.get()
    task = PeriodicTask.objects.get()
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == (
        "0",
        "2",
        "America/Los_Angeles",
    )
    page = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert "02:00 PST" in page or "02:00 PDT" in page
    admin_client.post("/admin/flows/flow/", {"action": "disable", "_selected_action": [flow.pk]})
    assert not PeriodicTask.objects.get().enabled
    admin_client.post(f"/admin/flows/flow/{flow.pk}/delete/", {"post": "yes"})
    assert not PeriodicTask.objects.exists()


def test_an_invalid_schedule_or_time_zone_is_refused(admin_client, application):
    form = {
        **FLOW_FORM,
        "application": application.pk,
        "page_processors": "[]",
        "schedule": "0 0 2 L * ?",
        "timezone": "Mars/Olympus",
    }
    page = admin_client.post("/admin/flows/flow/add/", form).content.decode()
    assert "Invalid schedule" in page
    assert "Unknown time zone" in page


def test_the_admin_refuses_to_delete_a_script_a_flow_uses_and_shows_the_flow(
    admin_client, application
):
    script = Script.objects.create(name="shape", content="function main(ctx) { return [] }")
    flow = Flow.objects.create(
        application=application,
        name="uses it",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
    )
    page = admin_client.get(f"/admin/flows/script/{script.pk}/delete/").content.decode()
    assert f'href="/admin/flows/flow/{flow.pk}/change/"' in page
    admin_client.post(f"/admin/flows/script/{script.pk}/delete/", {"post": "yes"})
    assert Script.objects.filter(pk=script.pk).exists()


def test_an_admin_edit_is_in_the_flows_audit_with_who_made_it(admin_client, application):
    flow = Flow.objects.create(application=application, name="audited")
    admin_client.post(
        "/admin/flows/flow/",
        {"action": "disable", "_selected_action": [flow.pk]},
    )
    latest = flow.history.first()
    assert latest.history_type == "~"
    assert latest.history_user.get_username() == "admin"
