"""`manage.py test_flows [--flow NAME] [--junit FILE]`: exit code for CI and JUnit XML."""

import xml.etree.ElementTree as ET
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.executions import launch
from apps.flows.models import Script
from apps.flowtests import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def tested(greeting, owner):
    for name in ("Ada", "Grace"):
        run = launch.admin_test_run(
            greeting, caller=launch.Caller(user=owner), query={"name": name}
        )
        services.save_as_test(execution=run, name=name, user=owner)
    return greeting


def run_command(*args):
    out = StringIO()
    try:
        call_command("test_flows", *args, stdout=out)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


def test_all_passing_exits_0_and_writes_valid_junit_xml(tested, tmp_path):
    junit = tmp_path / "flows.xml"
    code, out = run_command("--junit", str(junit))
    assert code == 0
    assert "2 passed, 0 failed" in out
    root = ET.parse(junit).getroot()  # noqa: S314 (our own file)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("2", "0")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == str(tested)
    assert [case.get("name") for case in suite.findall("testcase")] == ["Ada", "Grace"]
    assert all(float(case.get("time")) >= 0 for case in suite.iter("testcase"))
    assert not list(root.iter("failure"))


def test_a_failing_test_exits_1_with_a_failure_element_naming_the_step(tested, tmp_path):
    Script.objects.filter(name="prepareResponse").update(
        content="function main(ctx) { var n = ctx.trigger.args.request.query.name; "
        "return {statusCode: 200, result: n === 'Ada' ? 'Hello Ada' : 'Yo ' + n}; }"
    )
    junit = tmp_path / "flows.xml"
    code, out = run_command("--flow", "greeting", "--junit", str(junit))
    assert code == 1
    assert "FAIL" in out
    root = ET.parse(junit).getroot()  # noqa: S314 (our own file)
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["Ada"].find("failure") is None
    failure = cases["Grace"].find("failure")
    assert failure.get("message").startswith("pageProcessors[0] (prepareResponse): record 0 out")
    assert '"actual": "Yo Grace"' in failure.text


def test_an_unknown_flow_is_a_command_error(tested):
    with pytest.raises(CommandError, match="No flow named 'nope'"):
        call_command("test_flows", "--flow", "nope")


def test_control_characters_in_a_name_leave_the_junit_file_readable_and_the_terminal_alone(
    tested, tmp_path
):
    """XML 1.0 cannot hold U+0001; a name with an ANSI escape reached the terminal raw
    (an outside probe)."""
    services.update_test(test=tested.tests.get(name="Ada"), changes={"name": "ctl \x01\x1b[31m"})
    junit = tmp_path / "flows.xml"

    code, out = run_command("--junit", str(junit))

    assert code == 0
    assert "\x1b" not in out
    names = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase")]  # noqa: S314 (our own file)
    assert "ctl \ufffd\ufffd[31m" in names


def test_a_junit_file_that_cannot_be_written_is_a_command_error(tested, tmp_path):
    with pytest.raises(CommandError, match="Cannot write the JUnit file"):
        call_command(
            "test_flows", "--junit", str(tmp_path / "missing" / "x.xml"), stdout=StringIO()
        )
