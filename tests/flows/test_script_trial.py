"""A script tried on sample records from its admin page: its output, its debug() lines,
and an error with its line; nothing stored."""

import pytest
from django.utils.html import escape

from apps.executions.models import Execution
from apps.flows.models import Script

pytestmark = pytest.mark.django_db

SHOUT = """function main(ctx) {
  debug('got', ctx.records.length, 'records for', ctx.variables.region);
  return ctx.records.map(function (r) { return {company: r.company.toUpperCase()}; });
}"""
THROWS = """function main(ctx) {
  debug('about to fail');
  var x = ctx.records[0].missing.deeper;
  return x;
}"""


def trial(admin_client, script, **data):
    url = f"/admin/flows/script/{script.pk}/test/"
    return admin_client.post(
        url, {"records": "[]", "function": "main", "variables": "{}", **data}
    ).content.decode()


def test_a_script_runs_on_typed_records_and_shows_its_output_and_debug_lines(admin_client):
    script = Script.objects.create(name="Shout", content=SHOUT)
    html = trial(
        admin_client,
        script,
        records='[{"company": "Acme"}, {"company": "Globex"}]',
        variables='{"region": "EU"}',
    )
    assert escape('"company": "ACME"') in html
    assert escape('"company": "GLOBEX"') in html
    assert "got 2 records for EU" in html
    assert not Execution.objects.exists()  # nothing recorded


def test_an_error_is_shown_with_its_line_and_the_debug_lines_before_it(admin_client):
    script = Script.objects.create(name="Throws", content=THROWS)
    html = trial(admin_client, script, records='[{"company": "Acme"}]')
    assert "Failed at line 3" in html
    assert "about to fail" in html
    assert '<div class="failed"><span class="no">3</span>' in html


def test_bad_sample_records_are_refused_with_a_message(admin_client):
    script = Script.objects.create(name="Shout", content=SHOUT)
    html = trial(admin_client, script, records='"just text"')
    assert "A JSON array of records" in html
    assert 'id="script-test-result"' not in html


def test_the_script_page_links_to_its_test(admin_client):
    script = Script.objects.create(name="Shout", content=SHOUT)
    html = admin_client.get(f"/admin/flows/script/{script.pk}/change/").content.decode()
    assert f'href="/admin/flows/script/{script.pk}/test/"' in html
