/* Rows editors of the flow page (steps, variables): add, remove and reorder rows.
   Each row posts its values under shared names, so the page's order is the order saved.
   Step pickers get Django admin's bundled select2, which searches as one types. */
(function () {
  "use strict";

  function search(select) {
    var $ = window.django && window.django.jQuery;
    if ($ && $.fn.select2 && !select.classList.contains("select2-hidden-accessible")) {
      $(select).select2({ width: "resolve", dropdownAutoWidth: true });
    }
  }

  function renumber(editor) {
    editor.querySelectorAll("tbody > tr .row-number").forEach(function (cell, index) {
      cell.textContent = String(index + 1);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".rows-editor button");
    if (!button) return;
    var editor = button.closest(".rows-editor");
    var body = editor.querySelector("tbody");
    var row = button.closest("tr");
    if (button.classList.contains("row-add")) {
      var fresh = editor.querySelector("template").content.firstElementChild.cloneNode(true);
      body.appendChild(fresh);
      fresh.querySelectorAll("select.step-picker").forEach(search);
      var first = fresh.querySelector("select, input[type=text]");
      if (first) first.focus();
    } else if (button.classList.contains("row-up") && row.previousElementSibling) {
      body.insertBefore(row, row.previousElementSibling);
    } else if (button.classList.contains("row-down") && row.nextElementSibling) {
      body.insertBefore(row.nextElementSibling, row);
    } else if (button.classList.contains("row-remove")) {
      row.remove();
    }
    renumber(editor);
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".rows-editor").forEach(function (editor) {
      editor.querySelectorAll("tbody select.step-picker").forEach(search);
      renumber(editor);
    });
  });
})();
