"""The script editor in real Chromium: Tab indents, a syntax error is marked before the
form is sent, and the fixed script is saved. With FLOWSITE_SCREENSHOTS=<folder> the script
page is saved there (README shows docs/script-editor.png)."""

import os
from pathlib import Path

import pytest

from apps.flows.models import Script
from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SOURCE = "#id_content"


def source(page) -> str:
    return page.evaluate("document.querySelector('#id_content').editor.getValue()")


def test_a_builder_types_a_script_sees_its_syntax_error_before_saving_and_saves_it_fixed(
    page, live_server
):
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/admin/flows/script/add/")
    page.fill("#id_name", "Tag leads")
    assert not page.is_visible(SOURCE)  # the editor stands in for the textarea

    page.click(".CodeMirror")
    page.keyboard.type("function main(ctx) {")  # the brackets close themselves
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # indents: the focus stays in the editor
    assert page.evaluate("!!document.activeElement.closest('.CodeMirror')")
    page.keyboard.type("var tag = ;")
    assert source(page) == "function main(ctx) {\n  var tag = ;\n}"

    # Checked as it is typed: the message under the editor, its line marked.
    problem = page.wait_for_selector(".code-editor-status.code-editor-problem")
    assert "SyntaxError" in problem.inner_text()
    assert "(line 2)" in problem.inner_text()
    marked = page.locator(".CodeMirror-code > div:has(.code-editor-error-line)")
    assert marked.locator(".CodeMirror-linenumber").inner_text() == "2"

    # Save does not send it: the page stays, with what was typed.
    page.click("input[name=_save]")
    page.wait_for_timeout(300)
    assert "/add/" in page.url
    assert not Script.objects.exists()
    assert source(page) == "function main(ctx) {\n  var tag = ;\n}"

    page.keyboard.press("Backspace")
    page.keyboard.type("'hot';")
    page.wait_for_selector(".code-editor-status.code-editor-ok")
    assert page.locator(".code-editor-error-line").count() == 0

    page.click("input[name=_save]")
    message = page.wait_for_selector(".messagelist .success")
    assert "was added successfully" in message.inner_text()
    saved = Script.objects.get().content  # stored with LF, though a form sends CR LF
    assert saved == "function main(ctx) {\n  var tag = 'hot';\n}"
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        screenshot(page, Path(folder) / "script-editor.png")


SCORE = """// Scores each lead from its rating and its company's size.
function main(ctx) {
  var weights = {Hot: 3, Warm: 2, Cold: 1};
  debug('scoring', ctx.records.length, 'leads');
  return ctx.records.map(function (lead) {
    var score = (weights[lead.rating] || 0) * 10;
    if (lead.employees > 500 {
      score += 5;
    }
    return {company: lead.company, score: score, tier: score >= 30 ? 'A' : 'B'};
  });
}"""


def screenshot(page, path: Path) -> None:
    """The saved script's page with a longer source and a syntax error marked."""
    page.click("text=Tag leads")
    page.wait_for_selector(".CodeMirror")
    page.evaluate("(text) => document.querySelector('#id_content').editor.setValue(text)", SCORE)
    page.wait_for_selector(".code-editor-status.code-editor-problem")
    page.evaluate("document.querySelector('#id_content').editor.setCursor({line: 4, ch: 48})")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.locator("#script_form").screenshot(path=str(path))
