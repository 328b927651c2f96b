/* Try a saved object from its own change page: post the panel's form to the try-it page
   and show that page's result (or its form errors) in the panel, without leaving. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form.try-inline");
    if (!form) return;
    event.preventDefault();
    var output = form.parentElement.querySelector(".try-inline-output");
    var button = form.querySelector("input[type=submit]");
    output.textContent = "Working…";
    button.disabled = true;
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var result = page.querySelector("#try-it-result");
        var errors = page.querySelectorAll("#try-it-form .errorlist, .errornote");
        output.replaceChildren();
        if (result) {
          output.append(document.importNode(result, true));
        } else if (errors.length) {
          errors.forEach(function (error) { output.append(document.importNode(error, true)); });
        } else {
          output.textContent = "No result: reload the page and try again.";
        }
      })
      .catch(function (error) { output.textContent = "Not sent: " + error; })
      .finally(function () { button.disabled = false; });
  });
})();
