/* The script editor: a textarea.code-editor becomes CodeMirror 5, and its source is checked
   by the server (data-check-url) as the builder types and before the form is sent.
   See apps/flows/widgets.py CodeEditor. Without this script the textarea stays as it is. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 500;

  function csrfToken(form) {
    var field = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function nextFocusable(after) {
    var all = Array.prototype.slice.call(
      document.querySelectorAll("input, select, textarea, button, a[href]")
    );
    return all.filter(function (element) {
      return (
        after.compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING &&
        !after.contains(element) &&
        !element.disabled &&
        element.type !== "hidden" &&
        element.offsetParent !== null
      );
    })[0];
  }

  function enhance(textarea) {
    if (textarea.dataset.editor === "on") return;
    textarea.dataset.editor = "on";
    var form = textarea.form;

    var wrap = document.createElement("div");
    wrap.className = "code-editor-wrap";
    textarea.parentNode.insertBefore(wrap, textarea);
    wrap.appendChild(textarea);

    var editor = CodeMirror.fromTextArea(textarea, {
      mode: textarea.dataset.mode || "javascript",
      lineNumbers: true,
      indentUnit: 2,
      tabSize: 2,
      indentWithTabs: false,
      matchBrackets: true,
      autoCloseBrackets: true,
      gutters: ["code-editor-problems", "CodeMirror-linenumbers"],
      extraKeys: {
        // Tab indents (the selection's lines, or at the cursor) instead of leaving the field.
        Tab: function (cm) {
          if (cm.somethingSelected()) cm.indentSelection("add");
          else cm.replaceSelection(Array(cm.getOption("indentUnit") + 1).join(" "), "end");
        },
        "Shift-Tab": function (cm) {
          cm.indentSelection("subtract");
        },
        // The keyboard's way out, since Tab stays in the editor.
        Esc: function (cm) {
          var next = nextFocusable(wrap);
          if (next) next.focus();
          else cm.getInputField().blur();
        },
      },
    });
    editor.getInputField().setAttribute("aria-label", textarea.getAttribute("aria-label") ||
      (document.querySelector("label[for=" + textarea.id + "]") || {}).textContent || "Source");
    textarea.editor = editor; // for tests and other scripts of the page
    // The hidden textarea follows the editor, and is no longer `required` for the browser:
    // a hidden control that fails it would block Save with no message (the form still
    // says "This field is required.").
    textarea.required = false;
    editor.on("changes", function () {
      editor.save();
    });

    var keys = document.createElement("div");
    keys.className = "code-editor-keys";
    keys.textContent = "Tab indents, Shift-Tab outdents, Esc leaves the editor.";
    wrap.appendChild(keys);

    var url = textarea.dataset.checkUrl;
    if (!url || !form || !window.fetch) return;

    var status = document.createElement("div");
    status.className = "code-editor-status";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    wrap.appendChild(status);

    var marked = null;
    var timer = null;
    var asked = 0; // the latest check asked; older answers are ignored
    var checked = null; // {source, result} of the latest answer
    var sending = false;

    function unmark() {
      if (marked === null) return;
      editor.removeLineClass(marked, "background", "code-editor-error-line");
      editor.setGutterMarker(marked, "code-editor-problems", null);
      marked = null;
    }

    function show(result) {
      unmark();
      if (!result) {
        status.className = "code-editor-status";
        status.textContent = "";
        return;
      }
      if (result.ok) {
        status.className = "code-editor-status code-editor-ok";
        status.textContent = "Syntax checked: no problem found.";
        return;
      }
      status.className = "code-editor-status code-editor-problem";
      status.textContent = result.error;
      if (result.line && result.line <= editor.lineCount()) {
        var dot = document.createElement("span");
        dot.className = "code-editor-error-gutter";
        dot.title = result.error;
        dot.textContent = "\u00a0";
        marked = editor.getLineHandle(result.line - 1);
        editor.addLineClass(marked, "background", "code-editor-error-line");
        editor.setGutterMarker(marked, "code-editor-problems", dot);
      }
    }

    // Resolves to the answer for the current source, or null when it could not be checked
    // (the server then checks on save, as it always does).
    function check() {
      var source = editor.getValue();
      if (checked && checked.source === source) return Promise.resolve(checked.result);
      var mine = ++asked;
      status.className = "code-editor-status";
      status.textContent = "Checking the syntax…";
      var body = new URLSearchParams();
      body.append("source", source);
      return fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(form), Accept: "application/json" },
      })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .catch(function () {
          return null;
        })
        .then(function (result) {
          if (mine !== asked) return undefined; // a newer check is on its way
          if (result) checked = { source: source, result: result };
          show(result);
          return result;
        });
    }

    editor.on("changes", function () {
      clearTimeout(timer);
      timer = setTimeout(check, DEBOUNCE_MS);
    });

    // Before the form is sent: a source with a syntax error stays here, marked, as typed.
    form.addEventListener("submit", function (event) {
      if (sending) return;
      event.preventDefault();
      clearTimeout(timer);
      var submitter = event.submitter;
      var settle = function (result) {
        if (result === undefined) return check().then(settle); // superseded: ask again
        if (result && result.ok === false) {
          editor.focus();
          var line = (result.line || 0) - 1;
          if (line >= 0 && line < editor.lineCount() && editor.getCursor().line !== line) {
            editor.setCursor({ line: line, ch: editor.getLine(line).length });
          }
          return;
        }
        sending = true;
        editor.save();
        // Later, not in this microtask: while its submit event is being dispatched, a form
        // ignores requestSubmit() (HTML's "firing submission events").
        setTimeout(function () {
          if (form.requestSubmit) form.requestSubmit(submitter || undefined);
          else form.submit();
        }, 0);
      };
      check().then(settle);
    });

    // A page shown again with the form's own syntax error: mark its line at once.
    var row = textarea.closest(".form-row");
    if (row && row.querySelector(".errorlist")) check();
  }

  function start() {
    if (typeof CodeMirror === "undefined") return;
    document.querySelectorAll("textarea.code-editor").forEach(enhance);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
