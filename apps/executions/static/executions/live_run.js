/* Live runs (issue 13): a queued or running run's page, and the runs list, poll a small
   JSON endpoint of the admin every second and update status, counts and the current step
   in place; they stop when the runs end. The run page then loads once more to show the
   finished run (its steps' samples, debug lines, errors and buttons). No library. */
(function () {
  "use strict";
  var PERIOD_MS = 1000;
  var MAX_PERIOD_MS = 10000;

  function text(element, value) {
    if (element && element.textContent !== String(value)) element.textContent = String(value);
  }

  function seconds(value) {
    if (value === null || value === undefined) return "";
    return value < 60 ? value.toFixed(1) + " s" : Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
  }

  function statusMark(element, state) {
    // As the admin's coloured_status column renders it: <b style="color:…">Label</b>.
    if (!element) return;
    var mark = element.querySelector("b");
    if (!mark) {
      element.textContent = "";
      mark = element.appendChild(document.createElement("b"));
    }
    mark.style.color = state.colour || "inherit";
    text(mark, state.statusLabel);
  }

  // Poll `url` every PERIOD_MS (backing off on failures) until `handle` returns false.
  function poll(url, handle) {
    var period = PERIOD_MS;
    function again() { window.setTimeout(tick, period); }
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (response.status === 403 || response.status === 404) return handle(null, response.status);
          if (!response.ok) throw new Error(String(response.status));
          return response.json().then(function (data) { return handle(data, response.status); });
        })
        .then(function (goOn) { period = PERIOD_MS; if (goOn !== false) again(); })
        .catch(function () { period = Math.min(period * 2, MAX_PERIOD_MS); again(); });
    }
    tick();
  }

  // --- A run's page --------------------------------------------------------------------
  function stepRow(tbody, step) {
    var row = document.createElement("tr");
    row.className = "live-step";
    row.setAttribute("data-path", step.path);
    ["label", "name", "in", "out", "errors"].forEach(function (name) {
      var cell = document.createElement("td");
      cell.className = "live-" + name;
      row.appendChild(cell);
    });
    tbody.appendChild(row);
    return row;
  }

  // The run page's diagram (admin/executions/diagram.html) carries the same numbers on
  // its boxes: data-step="<path>", b.diagram-in/-out/-errors, .diagram-current.
  function showOnDiagram(state) {
    var diagram = document.getElementById("flow-diagram");
    if (!diagram) return;
    text(diagram.querySelector(".diagram-run-status"), state.statusLabel);
    text(diagram.querySelector(".diagram-run-success"), state.numSuccess);
    text(diagram.querySelector(".diagram-run-errors"), state.numError);
    var ran = {};
    state.steps.forEach(function (step) { ran[step.path] = step; });
    diagram.querySelectorAll(".diagram-step[data-step]").forEach(function (box) {
      var step = ran[box.getAttribute("data-step")];
      box.classList.toggle("diagram-current", box.getAttribute("data-step") === state.current);
      if (!step) return;
      box.classList.remove("diagram-not-run");
      box.classList.toggle("diagram-has-errors", step.errors > 0);
      text(box.querySelector("b.diagram-in"), step["in"]);
      text(box.querySelector("b.diagram-out"), step.out);
      text(box.querySelector("b.diagram-errors"), step.errors);
    });
  }

  function showRun(panel, state) {
    showOnDiagram(state);
    var status = panel.querySelector(".live-run-status");
    status.style.color = state.colour || "inherit";
    text(status, state.statusLabel);
    statusMark(document.querySelector(".field-coloured_status .readonly"), state);
    text(panel.querySelector(".live-run-success"), state.numSuccess);
    text(panel.querySelector(".live-run-errors"), state.numError);
    text(document.querySelector(".field-num_success .readonly"), state.numSuccess);
    text(document.querySelector(".field-num_error .readonly"), state.numError);
    text(document.querySelector(".field-num_ignore .readonly"), state.numIgnore);
    text(panel.querySelector(".live-run-current"), state.current ? state.currentName + " (" + state.current + ")" : "—");
    text(panel.querySelector(".live-run-elapsed"), state.elapsedSeconds === null ? "" : "running for " + seconds(state.elapsedSeconds));
    var tbody = panel.querySelector(".live-run-steps tbody");
    if (!state.steps.length) return;
    var waiting = tbody.querySelector(".live-run-waiting");
    if (waiting) waiting.remove();
    state.steps.forEach(function (step) {
      var row = null;
      tbody.querySelectorAll("tr.live-step").forEach(function (candidate) {
        if (candidate.getAttribute("data-path") === step.path) row = candidate;
      });
      if (!row) row = stepRow(tbody, step);
      var cells = row.children;
      text(cells[0], step.path + " (" + step.kind + ")");
      text(cells[1], step.name);
      text(cells[2], step["in"]);
      text(cells[3], step.out);
      text(cells[4], step.errors);
      row.classList.toggle("current", step.path === state.current);
    });
  }

  function watchRun(panel) {
    poll(panel.getAttribute("data-url"), function (state, status) {
      if (state === null) {
        text(panel.querySelector(".live-run-note"), status === 404 ? "This run no longer exists." : "You may not view this run.");
        return false;
      }
      showRun(panel, state);
      if (state.finished) {
        panel.classList.add("live-run-finished");
        text(panel.querySelector(".live-run-note"), "The run ended: loading its final state…");
        window.setTimeout(function () { window.location.reload(); }, 300);
        return false;
      }
      return true;
    });
  }

  // --- The runs list -------------------------------------------------------------------
  var ACTIVE = { "Queued": true, "Running": true };

  function watchList(marker) {
    var rows = {};
    document.querySelectorAll("#result_list tbody tr").forEach(function (row) {
      var box = row.querySelector("input.action-select");
      var status = row.querySelector("td.field-coloured_status");
      if (box && status && ACTIVE[status.textContent.trim()]) rows[box.value] = row;
    });
    var ids = Object.keys(rows);
    if (!ids.length) return;
    var url = marker.getAttribute("data-url") + "?" + ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
    poll(url, function (data) {
      if (data === null) return false;
      var active = 0;
      data.runs.forEach(function (state) {
        var row = rows[state.id];
        if (!row) return;
        statusMark(row.querySelector("td.field-coloured_status"), state);
        text(row.querySelector("td.field-num_success"), state.numSuccess);
        text(row.querySelector("td.field-num_error"), state.numError);
        text(row.querySelector("td.field-num_ignore"), state.numIgnore);
        row.title = state.current ? "Now in " + state.currentName + " (" + state.current + ")" : "";
        if (!state.finished) active += 1;
      });
      return active > 0;
    });
  }

  function start() {
    var panel = document.getElementById("live-run");
    if (panel) watchRun(panel);
    var marker = document.getElementById("live-runs");
    if (marker) watchList(marker);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
