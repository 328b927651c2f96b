"""Writes for flow tests: save a recorded run as a test, edit one, run a flow's tests."""

from django.utils import timezone

from apps.core.exceptions import ApiProblem
from apps.executions import recording
from apps.executions.models import Execution, RunRecording
from apps.flows import crypto
from apps.flows.models import Flow
from apps.flowtests import replay
from apps.flowtests.models import FlowTest

HOW_TO_RECORD = (
    "Get a recorded run in one of three ways: a Test run (the admin's Test run always "
    "records), a run of the flow with captureForTests on, or a re-run of this job made to "
    "save a test (POST /api/v1/jobs/<id>/rerunForTest, or the run page's 'Re-run and "
    "record' button); then save that run."
)


class NoRecording(ApiProblem):
    def __init__(self, detail: str):
        super().__init__(409, f"{detail} {HOW_TO_RECORD}", code="no-recording")


def save_as_test(*, execution: Execution, name: str, user=None) -> FlowTest:
    """A new test of the run's flow from the run's recording (409 without one)."""
    if execution.flow is None:
        raise ApiProblem(409, f"The flow of job {execution.pk} was deleted.", code="flow-gone")
    stored = RunRecording.objects.filter(execution=execution).first()
    if stored is None:
        raise NoRecording(f"Job {execution.pk} was not recorded.")
    if not stored.complete:
        raise NoRecording(
            f"Job {execution.pk}'s recording was cut: the run exchanged more than "
            f"FLOWSITE_TEST_CAPTURE_MAX_BYTES ({stored.size_bytes} bytes)."
        )
    try:
        document = recording.load(execution)
    except ValueError as exc:  # FLOWSITE_ENCRYPTION_KEY changed since it was recorded
        raise NoRecording(f"Job {execution.pk}'s recording cannot be read: {exc}") from None
    secrets = replay.secrets_of(document, execution.flow)
    test = FlowTest(
        flow=execution.flow,
        name=name,
        recording=crypto.encrypt_json(document),
        expected=replay.expected_from(document, secrets),
        source_process_id=str(execution.pk),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    test.full_clean()
    test.save()
    return test


def update_test(*, test: FlowTest, changes: dict) -> FlowTest:
    """Edit a test's name, expected outcome, ignored fields or relaxed request parts."""
    for field, value in changes.items():
        setattr(test, field, value)
    test.full_clean()
    test.save()
    return test


def delete_test(*, test: FlowTest) -> None:
    test.delete()


def run_test(test: FlowTest) -> dict:
    """Replay one test and keep its result on it."""
    report = replay.replay(test)
    FlowTest.objects.filter(pk=test.pk).update(
        last_result=report["result"], last_report=report, last_run_at=timezone.now()
    )
    test.last_result, test.last_report = report["result"], report
    return report


def run_tests(*, flow: Flow, tests=None) -> list[dict]:
    """Replay the flow's tests (or the given ones), in name order."""
    chosen = list(tests if tests is not None else flow.tests.order_by("name"))
    return [run_test(test) for test in chosen]
