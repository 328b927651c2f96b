"""Honest runs (issue 10): what a run's outcome is, and what a sync or auto caller hears.

DESIGN §8: `failed` answers a problem that quotes the script, `completed_with_errors`
answers the envelope with an error summary, and a flow's own answer is sent as it set it.
"""

import json

import pytest
from werkzeug.wrappers import Response

from apps.flows.models import Export, Flow
from tests.conftest import live_database_url, wait_for
from tests.executions.conftest import as_json, call
from tests.executions.honest import (
    FINISHED,
    WAIT_SECONDS,
    Hold,
    assert_failed_answer,
    finished_job,
    held_run,
    lookup,
    refusing_connection,
    resource_url,
    script_flow,
    trigger_url,
)

pytestmark = pytest.mark.django_db(transaction=True)

BOOM = "function main(ctx) { throw new Error('boom 42'); }"
CPU_LOOP = "function main(ctx) { while (true) {} }"
MEMORY_BOMB = (
    "function main(ctx) {\n"
    "  const a = [];\n"
    "  while (true) a.push('x'.repeat(2 ** 20) + a.length);\n}"
)
CHOSEN_STATUS = "function main(ctx) { error('Order 7 is closed', 409); }"
NAN_STATUS = "function main(ctx) { return {statusCode: parseInt('closed'), body: {}}; }"
ROUTES = [
    pytest.param(trigger_url, id="trigger"),
    pytest.param(resource_url, id="resource"),
]


def api(path: str, **settings) -> dict:
    return {"enabled": True, "method": "GET", "path": path, "mode": "sync", **settings}


# --- failed runs ----------------------------------------------------------------------------


@pytest.mark.parametrize("url_of", ROUTES)
@pytest.mark.parametrize(
    ("source", "status", "quoted", "record_errors"),
    [
        pytest.param(BOOM, 500, "boom 42", True, id="a script that throws"),
        pytest.param(CPU_LOOP, 500, "CPU-time limit", True, id="a CPU-time loop"),
        pytest.param(MEMORY_BOMB, 500, "memory limit", True, id="a memory bomb"),
        # error() fails the run itself: its record need not be listed as an error.
        pytest.param(CHOSEN_STATUS, 409, "Order 7 is closed", False, id="error() with a status"),
        # JSON turned NaN into null, and the answer into a record answered 200 "succeeded".
        pytest.param(NAN_STATUS, 500, "statusCode NaN", True, id="an answer with a NaN status"),
    ],
)
def test_a_failed_sync_run_answers_a_problem_with_its_status_and_its_own_message(
    live_server, sales, caller_key, manager, url_of, source, status, quoted, record_errors
):
    flow = script_flow(sales, "fails", source, api=api("/fails"))

    response = call(live_server, "GET", url_of(flow), key=caller_key)

    problem = assert_failed_answer(response, status, quoted, record_errors=record_errors)
    job = manager.get(f"/api/v1/jobs/{problem['processId']}").json()
    assert (job["status"], job["statusCode"]) == ("failed", status)


def test_a_script_that_throws_fails_each_record_of_its_page_and_the_answer_lists_five(
    live_server, sales, local_api, httpserver, caller_key, manager
):
    httpserver.expect_request("/seven").respond_with_json([{"n": n} for n in range(1, 8)])
    seven = Export.objects.create(name="Seven", connection=local_api, relative_uri="/seven")
    flow = script_flow(sales, "throws", BOOM, generators=[seven], api=api("/throws"))

    response = call(live_server, "GET", trigger_url(flow), key=caller_key)

    problem = assert_failed_answer(response, 500, "boom 42")
    assert len(problem["errors"]) == 5
    assert all(error["step"] == "pageProcessors[0]" for error in problem["errors"])
    assert [error["record"] for error in problem["errors"]] == [{"n": n} for n in range(1, 6)]
    job = manager.get(f"/api/v1/jobs/{problem['processId']}").json()
    assert (job["status"], job["numSuccess"], job["numError"]) == ("failed", 0, 7)
    errors = manager.get(f"/api/v1/jobs/{problem['processId']}/errors").json()
    assert len(errors) == 7
    assert all("boom 42" in error["message"] for error in errors)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("pageGenerators[0]", id="a page generator"),
        pytest.param("pageProcessors[0]", id="a lookup of every record"),
    ],
)
def test_a_refused_connection_fails_the_run_with_502_and_the_step(
    live_server, sales, caller_key, manager, where
):
    export = Export.objects.create(
        name="Unreachable", connection=refusing_connection(), relative_uri="/customers"
    )
    if where == "pageGenerators[0]":
        flow = Flow.objects.create(
            application=sales,
            name="unreachable",
            page_generators=[{"_exportId": str(export.pk)}],
            api=api("/unreachable"),
        )
    else:
        flow = Flow.objects.create(
            application=sales,
            name="unreachable",
            page_processors=[lookup(export, "customer", "data[0]")],
            api=api("/unreachable"),
        )

    response = call(live_server, "GET", trigger_url(flow), key=caller_key)

    problem = assert_failed_answer(response, 502)
    assert problem["upstreamStatus"] is None
    assert problem["step"] == where
    assert problem["errors"][0]["step"] == where
    job = manager.get(f"/api/v1/jobs/{problem['processId']}").json()
    assert (job["status"], job["statusCode"]) == ("failed", 502)


def test_an_upstream_error_that_fails_the_run_answers_502_with_the_upstream_status(
    live_server, sales, local_api, httpserver, caller_key
):
    httpserver.expect_request("/gone").respond_with_json({"message": "no such list"}, status=404)
    export = Export.objects.create(name="Gone list", connection=local_api, relative_uri="/gone")
    flow = Flow.objects.create(
        application=sales,
        name="gone",
        page_generators=[{"_exportId": str(export.pk)}],
        api=api("/gone"),
    )

    response = call(live_server, "GET", trigger_url(flow), key=caller_key)

    problem = assert_failed_answer(response, 502)
    assert (problem["upstreamStatus"], problem["step"]) == (404, "pageGenerators[0]")


# --- a flow's own answer ----------------------------------------------------------------------

OWN_ANSWERS = [
    pytest.param(
        "{statusCode: 404,"
        " headers: {'X-Flow': 'yes', 'Set-Cookie': 'flow=1', 'Keep-Alive': 'timeout=99'},"
        " body: {message: 'no such customer'}}",
        404,
        {"X-Flow": "yes"},
        "application/json",
        {"message": "no such customer"},
        id="404 with its body and header",
    ),
    pytest.param(
        "{statusCode: 405, body: {message: 'customers are read-only here'}}",
        405,
        {},
        "application/json",
        {"message": "customers are read-only here"},
        id="flow-set 405",
    ),
    pytest.param(
        "{statusCode: 422, result: {field: 'email', problem: 'already taken'}}",
        422,
        {},
        "application/json",
        {"field": "email", "problem": "already taken"},
        id="FaaR 422",
    ),
    pytest.param(
        "{statusCode: 503, headers: {'Retry-After': '120'}, body: {message: 'maintenance'}}",
        503,
        {"Retry-After": "120"},
        "application/json",
        {"message": "maintenance"},
        id="503 with Retry-After",
    ),
    pytest.param(
        "{statusCode: 200, headers: {'Content-Type': 'text/csv'}, body: 'id,name\\n1,Ann\\n'}",
        200,
        {},
        "text/csv",
        "id,name\n1,Ann\n",
        id="200 as CSV",
    ),
]


@pytest.mark.parametrize("url_of", ROUTES)
@pytest.mark.parametrize(("answer", "status", "headers", "content_type", "body"), OWN_ANSWERS)
def test_a_flows_own_answer_is_sent_as_it_set_it(
    live_server, sales, caller_key, url_of, answer, status, headers, content_type, body
):
    flow = script_flow(
        sales, "customer", f"function main(ctx) {{ return {answer}; }}", api=api("/customer")
    )

    response = call(live_server, "GET", url_of(flow), key=caller_key)

    assert response.status == status, response.data[:2000]
    assert response.headers["Content-Type"].startswith(content_type), response.headers
    if isinstance(body, str):
        assert response.data.decode() == body
    else:
        assert as_json(response) == body
    for name, value in headers.items():
        assert response.headers[name] == value
    assert "flow=1" not in response.headers.get("Set-Cookie", "")
    assert "timeout=99" not in response.headers.get("Keep-Alive", "")  # hop-by-hop
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("url_of", ROUTES)
def test_a_flows_own_204_goes_without_a_body(live_server, sales, caller_key, url_of):
    flow = script_flow(
        sales,
        "nothing",
        "function main(ctx) { return {statusCode: 204, body: {ignored: true}}; }",
        api=api("/nothing"),
    )

    response = call(live_server, "GET", url_of(flow), key=caller_key)

    assert (response.status, response.data) == (204, b"")


def test_a_flows_own_1xx_answer_fails_the_run(live_server, sales, caller_key, manager):
    flow = script_flow(
        sales,
        "informational",
        "function main(ctx) { return {statusCode: 102, body: {working: true}}; }",
        api=api("/informational"),
    )

    response = call(live_server, "GET", trigger_url(flow), key=caller_key)

    problem = assert_failed_answer(response, 500, record_errors=False)
    assert manager.get(f"/api/v1/jobs/{problem['processId']}").json()["status"] == "failed"


# --- completed with errors ------------------------------------------------------------------


@pytest.fixture
def customers_api(httpserver):
    """Five customers in pages of two (page-number paging); a per-customer orders lookup
    that fails with HTTP 500 for customer 3 only."""
    customers = [{"id": n, "name": f"Customer {n}"} for n in range(1, 6)]

    def pages(request):
        page, size = int(request.args["page"]), int(request.args["pageSize"])
        chunk = customers[(page - 1) * size : page * size]
        return Response(json.dumps({"data": chunk}), content_type="application/json")

    httpserver.expect_request("/customers").respond_with_handler(pages)
    for n in (1, 2, 4, 5):
        httpserver.expect_request(f"/customers/{n}/orders").respond_with_json({"count": n * 10})
    httpserver.expect_request("/customers/3/orders").respond_with_json(
        {"message": "orders of customer 3 are unavailable"}, status=500
    )


@pytest.fixture
def paged_customers(sales, local_api, customers_api):
    """make(**api settings): a sync API flow over the customers and their orders."""

    def make(**settings) -> Flow:
        customers = Export.objects.create(
            name="Customers",
            connection=local_api,
            relative_uri="/customers",
            resource_path="data",
            paging="page",
            page_size=2,
        )
        orders = Export.objects.create(
            name="Orders", connection=local_api, relative_uri="/customers/{{record.id}}/orders"
        )
        return Flow.objects.create(
            application=sales,
            name="customers",
            page_generators=[{"_exportId": str(customers.pk)}],
            page_processors=[lookup(orders, "orders", "data[0].count")],
            api=api("/customers", **settings),
        )

    return make


def test_a_paged_export_whose_lookup_fails_for_one_record_answers_the_four_good_ones(
    live_server, paged_customers, caller_key, manager
):
    flow = paged_customers()

    response = call(live_server, "GET", trigger_url(flow), key=caller_key)

    assert response.status == 200, response.data[:2000]
    assert response.headers["Content-Type"].startswith("application/json")
    answer = as_json(response)
    assert answer["status"] == "completed_with_errors"
    assert [(r["id"], r["orders"]) for r in answer["data"]["records"]] == [
        (1, 10),
        (2, 20),
        (4, 40),
        (5, 50),
    ]
    assert answer["errors"]["count"] == 1
    [error] = answer["errors"]["first"]
    assert set(error) >= {"step", "stepName", "message", "record", "httpStatus"}
    assert (error["step"], error["record"]["id"], error["httpStatus"]) == (
        "pageProcessors[0]",
        3,
        500,
    )
    job = manager.get(f"/api/v1/jobs/{answer['processId']}").json()
    assert (job["status"], job["numSuccess"], job["numError"]) == ("completed_with_errors", 4, 1)
    [stored] = manager.get(f"/api/v1/jobs/{answer['processId']}/errors").json()
    assert (stored["record"]["id"], stored["httpStatus"]) == (3, 500)


@pytest.mark.parametrize(
    ("error_status", "expected"),
    [
        pytest.param(None, 200, id="default"),
        pytest.param(200, 200, id="200"),
        pytest.param(207, 207, id="207"),
        pytest.param(422, 422, id="422"),
        pytest.param("phixflow", 200, id="phixflow with records returned"),
    ],
)
def test_a_run_completed_with_errors_answers_the_status_its_flow_chose(
    live_server, paged_customers, caller_key, error_status, expected
):
    settings = {} if error_status is None else {"errorStatus": error_status}
    flow = paged_customers(**settings)

    response = call(live_server, "GET", resource_url(flow), key=caller_key)

    assert response.status == expected, response.data[:2000]
    answer = as_json(response)
    assert set(answer) >= {"processId", "status", "data", "errors"}, answer
    assert answer["status"] == "completed_with_errors"
    assert len(answer["data"]["records"]) == 4
    assert answer["errors"]["count"] == 1


# --- async: the poll and the job tell the same -----------------------------------------------


@pytest.fixture
def worker(start_worker):
    return start_worker(DATABASE_URL=live_database_url())


@pytest.mark.services
@pytest.mark.parametrize(
    ("failing", "expected"),
    [
        pytest.param({1, 2}, "failed", id="every record fails"),
        pytest.param({2}, "completed_with_errors", id="one record fails"),
    ],
)
def test_an_async_run_polls_the_same_outcome_as_its_job(
    live_server, sales, local_api, httpserver, caller_key, manager, worker, failing, expected
):
    httpserver.expect_request("/pair").respond_with_json([{"id": 1}, {"id": 2}])
    for n in (1, 2):
        status = 404 if n in failing else 200
        httpserver.expect_request(f"/pair/{n}").respond_with_json({"n": n}, status=status)
    pair = Export.objects.create(name="Pair", connection=local_api, relative_uri="/pair")
    each = Export.objects.create(
        name="Each", connection=local_api, relative_uri="/pair/{{record.id}}"
    )
    flow = Flow.objects.create(
        application=sales,
        name="pair",
        page_generators=[{"_exportId": str(pair.pk)}],
        page_processors=[lookup(each, "n", "data[0].n")],
        api=api("/pair", mode="async"),
    )

    response = call(live_server, "GET", trigger_url(flow), key=caller_key)

    assert response.status == 202, response.data[:2000]
    poll_url = as_json(response)["pollUrl"]

    def polled():
        body = as_json(call(live_server, "GET", poll_url, key=caller_key))
        return body if body["status"] in FINISHED else None

    final = wait_for(polled, timeout=WAIT_SECONDS, interval=0.2, message="the run to finish")
    assert final["status"] == expected, worker.log()
    job = manager.get(f"/api/v1/jobs/{final['processId']}").json()
    assert (job["status"], job["numError"]) == (expected, len(failing))


# --- cancel ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "held_in",
    [
        pytest.param("first step", id="cancelled in the first of two steps"),
        pytest.param("last step", id="cancelled during the last step"),
    ],
)
def test_a_cancel_answered_202_always_ends_the_run_cancelled(
    live_server, sales, local_api, httpserver, caller_key, manager, held_in
):
    hold = Hold(httpserver, "/hold", [{"id": 1}])
    held = Export.objects.create(name="Held", connection=local_api, relative_uri="/hold")
    if held_in == "first step":
        flow = script_flow(
            sales,
            "cancel me",
            "function main(ctx) { return ctx.records; }",
            generators=[held],
            api=api("/cancel-me"),
        )
    else:
        httpserver.expect_request("/one").respond_with_json([{"id": 1}])
        one = Export.objects.create(name="One", connection=local_api, relative_uri="/one")
        flow = Flow.objects.create(
            application=sales,
            name="cancel me",
            page_generators=[{"_exportId": str(one.pk)}],
            page_processors=[lookup(held, "held", "data[0].id")],
            api=api("/cancel-me"),
        )

    with held_run(live_server, flow, hold, caller_key) as run:
        cancel = manager.post(f"/api/v1/jobs/{run.execution.pk}/cancel")
        assert cancel.status_code == 202, cancel.content

    assert finished_job(manager, run.execution.pk)["status"] == "cancelled"


def test_a_cancel_after_the_run_finished_is_409_and_changes_nothing(
    live_server, sales, caller_key, manager
):
    flow = script_flow(
        sales, "quick", "function main(ctx) { return [{done: true}]; }", api=api("/quick")
    )
    response = call(live_server, "GET", trigger_url(flow), key=caller_key)
    assert response.status == 200, response.data[:2000]
    process_id = as_json(response)["processId"]

    cancel = manager.post(f"/api/v1/jobs/{process_id}/cancel")

    assert cancel.status_code == 409
    assert cancel["Content-Type"].startswith("application/problem+json")
    assert manager.get(f"/api/v1/jobs/{process_id}").json()["status"] == "succeeded"
