// A view's filters as rows: "Add a filter" copies an empty row, "Remove" takes one away
// (the last one is only emptied). Without this script the form still offers empty rows.
"use strict";
document.addEventListener("click", function (event) {
  const editor = event.target.closest(".filter-rows");
  if (!editor) return;
  const body = editor.querySelector("tbody");
  if (event.target.classList.contains("filter-add")) {
    const row = body.querySelector(".filter-row").cloneNode(true);
    row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    row.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
    body.appendChild(row);
    row.querySelector("input").focus();
  } else if (event.target.classList.contains("filter-remove")) {
    const row = event.target.closest(".filter-row");
    if (body.querySelectorAll(".filter-row").length > 1) {
      row.remove();
    } else {
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    }
  }
});
