"""The flow tests' management API (DESIGN §8): saveAsTest, the flow's tests, run them."""

import pytest

from apps.executions import launch
from apps.executions.models import Execution
from apps.flows.models import Script
from apps.flowtests import services
from apps.flowtests.models import FlowTest

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def recorded(greeting, owner) -> Execution:
    return launch.admin_test_run(greeting, caller=launch.Caller(user=owner), query={"name": "Ada"})


@pytest.fixture
def saved(manager, recorded) -> dict:
    answer = manager.post(f"/api/v1/jobs/{recorded.pk}/saveAsTest", {"name": "Ada"}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def test_save_as_test_answers_201_with_the_test_and_its_expected_outcome(saved, recorded):
    assert saved["name"] == "Ada"
    assert saved["_jobId"] == str(recorded.pk)
    assert saved["expected"]["status"] == "succeeded"
    assert saved["expected"]["answer"] == {"statusCode": 200, "result": "Hello Ada"}
    assert saved["expected"]["steps"]["pageProcessors[0]"]["out"] == [
        {"statusCode": 200, "result": "Hello Ada"}
    ]
    assert "recording" not in saved


def test_a_job_without_a_recording_answers_409_saying_how_to_get_one(manager, greeting, owner):
    job, _ = launch.run(greeting, caller=launch.Caller(user=owner))
    answer = manager.post(f"/api/v1/jobs/{job.pk}/saveAsTest", {"name": "x"}, format="json")
    assert answer.status_code == 409
    assert answer["Content-Type"].startswith(PROBLEM)
    detail = answer.json()["detail"]
    assert "Test run" in detail
    assert "captureForTests" in detail
    assert "rerunForTest" in detail


@pytest.mark.parametrize(
    ("body", "pointer"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": "a", "extra": 1}, "extra"), ([], None)],
)
def test_a_bad_save_body_is_a_400_problem(manager, recorded, body, pointer):
    answer = manager.post(f"/api/v1/jobs/{recorded.pk}/saveAsTest", body, format="json")
    assert answer.status_code == 400
    assert answer["Content-Type"].startswith(PROBLEM)
    if pointer:
        assert pointer in str(answer.json())


def test_a_second_test_of_the_same_name_is_a_400(manager, saved, recorded):
    answer = manager.post(f"/api/v1/jobs/{recorded.pk}/saveAsTest", {"name": "Ada"}, format="json")
    assert answer.status_code == 400
    assert "already" in str(answer.json())


def test_an_unknown_job_or_flow_or_test_is_a_404(manager, greeting):
    unknown = "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11"
    assert manager.post(f"/api/v1/jobs/{unknown}/saveAsTest", {"name": "a"}).status_code == 404
    malformed = "0af6cf38028f0eAe66705ab0Ec3B7b902A40"  # 36 hex digits, not a UUID
    for action in ("saveAsTest", "rerunForTest"):
        response = manager.post(f"/api/v1/jobs/{malformed}/{action}", {"name": "a"})
        assert response.status_code == 404, response.content
    assert manager.get("/api/v1/flows/999/tests").status_code == 404
    assert manager.get(f"/api/v1/flows/{greeting.pk}/tests/999").status_code == 404
    assert manager.get(f"/api/v1/flows/{greeting.pk}/tests/x").status_code == 404
    assert manager.get(f"/api/v1/flows/{greeting.pk}/tests/{'9' * 30}").status_code == 404


def test_list_get_patch_and_delete_a_test(manager, greeting, saved):
    tests_url = f"/api/v1/flows/{greeting.pk}/tests"
    assert [t["name"] for t in manager.get(tests_url).json()] == ["Ada"]
    url = f"{tests_url}/{saved['_id']}"
    assert manager.get(url).json()["expected"] == saved["expected"]
    expected = {**saved["expected"], "status": "failed"}
    changed = manager.patch(
        url,
        {"expected": expected, "ignoredFields": ["updatedAt"], "relaxed": ["query"]},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["expected"]["status"] == "failed"
    assert changed.json()["ignoredFields"] == ["updatedAt"]
    assert manager.patch(url, {"relaxed": ["headers"]}, format="json").status_code == 400
    assert manager.patch(url, {"ignoredFields": "x"}, format="json").status_code == 400
    for expected in ({"steps": "x"}, {"steps": {"p": {"out": 1}}}, {"errors": {}}, {"nope": 1}):
        bad = manager.patch(url, {"expected": expected}, format="json")
        assert bad.status_code == 400, expected
        assert bad.json()["errors"][0]["pointer"] == "#/expected"
    assert manager.delete(url).status_code == 204
    assert not FlowTest.objects.exists()


def test_run_answers_each_tests_result_and_on_failure_the_per_step_difference(
    manager, greeting, saved
):
    url = f"/api/v1/flows/{greeting.pk}/tests/run"
    [passed] = manager.post(url).json()
    assert passed["result"] == "passed"
    Script.objects.filter(name="prepareResponse").update(
        content="function main(ctx) { return {statusCode: 200, result: 'Hi'}; }"
    )
    answer = manager.post(url, {"_testIds": [saved["_id"]]}, format="json")
    assert answer.status_code == 200
    [failed] = answer.json()
    assert failed["result"] == "failed"
    assert failed["steps"][0]["firstDifferenceOut"]["diff"] == [
        {"path": "/result", "expected": "Hello Ada", "actual": "Hi"}
    ]
    listed = manager.get(f"/api/v1/flows/{greeting.pk}/tests").json()
    assert listed[0]["lastResult"] == "failed"
    assert manager.post(url, {"_testIds": ["999"]}, format="json").status_code == 400


def test_rerun_for_test_queues_a_recorded_rerun(manager, greeting, owner):
    job, _ = launch.run(greeting, caller=launch.Caller(user=owner))
    Execution.objects.filter(pk=job.pk).update(status="succeeded")
    answer = manager.post(f"/api/v1/jobs/{job.pk}/rerunForTest")
    assert answer.status_code == 201, answer.content
    rerun = Execution.objects.get(pk=answer.json()["_id"])
    assert rerun.options["captureForTests"] is True


def test_privileges_are_those_of_the_other_flow_endpoints(
    reader, key_client, outsider, greeting, recorded, owner
):
    test = services.save_as_test(execution=recorded, name="Ada", user=owner)
    url = f"/api/v1/flows/{greeting.pk}/tests"
    assert reader.get(url).status_code == 200
    assert reader.get(f"{url}/{test.pk}").status_code == 200
    assert reader.patch(f"{url}/{test.pk}", {"name": "b"}, format="json").status_code == 403
    assert reader.delete(f"{url}/{test.pk}").status_code == 403
    # Running tests needs what reading the flow's runs needs: a report quotes them.
    assert reader.post(f"{url}/run").status_code == 200
    assert reader.post(f"/api/v1/jobs/{recorded.pk}/saveAsTest", {"name": "z"}).status_code == 403
    assert key_client(outsider).get(url).status_code == 403


def test_a_caller_who_may_only_run_flows_may_not_run_their_tests(
    bystander, greeting, recorded, owner
):
    """A report quotes recorded records and requests: run_flows alone read them (a probe)."""
    services.save_as_test(execution=recorded, name="Ada", user=owner)

    answer = bystander.post(f"/api/v1/flows/{greeting.pk}/tests/run")

    assert answer.status_code == 403
    assert "Hello Ada" not in answer.content.decode()


def test_a_recording_that_cannot_be_decrypted_is_a_409_not_a_500(manager, recorded, settings):
    settings.FLOWSITE_ENCRYPTION_KEY = "another-key-of-at-least-32-bytes-long!!"
    answer = manager.post(f"/api/v1/jobs/{recorded.pk}/saveAsTest", {"name": "a"}, format="json")
    assert answer.status_code == 409
    assert "cannot be read" in answer.json()["detail"]
