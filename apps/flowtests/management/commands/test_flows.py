"""`manage.py test_flows [--flow NAME] [--junit FILE]`: replay the flow tests offline, for CI.

Exit code 0 when every test passed (or there is none), 1 when one failed; `--junit` writes
the results as JUnit XML (one testsuite per flow, one testcase per test, a <failure> with
the per-step difference of each failed one)."""

import json
import re
import time
import xml.etree.ElementTree as ET

from django.core.management.base import BaseCommand, CommandError

from apps.flows.models import Flow
from apps.flowtests import services


class Command(BaseCommand):
    help = "Replay flow tests offline; exit 1 when one fails. --junit FILE writes JUnit XML."

    def add_arguments(self, parser):
        parser.add_argument(
            "--flow",
            action="append",
            default=[],
            metavar="NAME",
            help="Only this flow's tests (its name, or 'Application/Flow'); repeatable.",
        )
        parser.add_argument("--junit", metavar="FILE", help="Write JUnit XML to FILE.")

    def handle(self, *args, flow: list[str], junit: str | None, **options):
        flows = Flow.objects.select_related("application").filter(tests__isnull=False).distinct()
        if flow:
            chosen = []
            for name in flow:
                application, _, flow_name = name.rpartition("/")
                found = flows.filter(name=flow_name)
                if application:
                    found = found.filter(application__name=application)
                if not found.exists():
                    raise CommandError(f"No flow named {name!r} has tests.")
                chosen.extend(found)
            flows = chosen
        else:
            flows = list(flows.order_by("application__name", "name"))
        suites = ET.Element("testsuites", name="flow tests")
        total = failures = 0
        for each in flows:
            started = time.monotonic()
            reports = []
            for test in each.tests.order_by("name"):
                test_started = time.monotonic()
                report = services.run_test(test)
                reports.append((test, report, time.monotonic() - test_started))
            suite = ET.SubElement(
                suites,
                "testsuite",
                name=str(each),
                tests=str(len(reports)),
                failures=str(sum(r["result"] != "passed" for _, r, _ in reports)),
                errors="0",
                skipped="0",
                time=f"{time.monotonic() - started:.3f}",
            )
            for test, report, took in reports:
                total += 1
                case = ET.SubElement(
                    suite, "testcase", classname=str(each), name=test.name, time=f"{took:.3f}"
                )
                if report["result"] == "passed":
                    self.stdout.write(shown(f"PASS {each} :: {test.name}"))
                    continue
                failures += 1
                summary = report.get("summary") or ["failed"]
                failure = ET.SubElement(case, "failure", message=summary[0], type="FlowTestFailed")
                failure.text = json.dumps(report, indent=2, default=str)
                self.stdout.write(shown(f"FAIL {each} :: {test.name}"))
                for line in summary:
                    self.stdout.write(shown(f"     {line}"))
        suites.set("tests", str(total))
        suites.set("failures", str(failures))
        suites.set("errors", "0")
        if junit:
            _printable(suites)
            try:
                ET.ElementTree(suites).write(junit, encoding="utf-8", xml_declaration=True)
            except OSError as exc:
                raise CommandError(f"Cannot write the JUnit file {junit!r}: {exc}") from None
        self.stdout.write(f"{total - failures} passed, {failures} failed")
        if failures:
            raise SystemExit(1)


# Control characters: XML 1.0 cannot hold them (a test named with one made the JUnit file
# unreadable), and a terminal would act on them (an ANSI escape in a name; outside probe).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def shown(text: str) -> str:
    return CONTROL.sub("\ufffd", text)


def _printable(element: ET.Element) -> None:
    for node in element.iter():
        node.attrib.update({name: shown(value) for name, value in node.attrib.items()})
        if node.text:
            node.text = shown(node.text)
