// The flow page's "Endpoint" panel (templates/admin/flows/flow/endpoint_panel.html): copy a
// curl, or try a call as the signed-in builder. A file of its own, not an inline script, so
// that the admin's Content-Security-Policy allows scripts from Flowsite's origin only.
(function () {
  var panel = document.getElementById("endpoint-panel");
  if (!panel || !panel.dataset.csrfCookieName) { return; }  // not callable: nothing to try
  var cookieName = panel.dataset.csrfCookieName;
  function csrfToken() {
    var cookies = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < cookies.length; i++) {
      if (cookies[i].indexOf(cookieName + "=") === 0) {
        return decodeURIComponent(cookies[i].slice(cookieName.length + 1));
      }
    }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  // GET and DELETE carry the payload in the URL, as the curl shows it (query_example):
  // its scalar values, booleans as true/false; objects and lists are left out.
  function withQuery(url, text) {
    var payload = JSON.parse(text);
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      throw new Error("The example payload must be a JSON object of parameters.");
    }
    var params = new URLSearchParams();
    Object.keys(payload).forEach(function (name) {
      var value = payload[name];
      if (value !== null && typeof value !== "object") { params.append(name, String(value)); }
    });
    var query = params.toString();
    return url.split("?")[0] + (query ? "?" + query : "");
  }
  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }
  panel.querySelectorAll(".endpoint-copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.parentNode.querySelector(".endpoint-curl").textContent;
      if (navigator.clipboard) { navigator.clipboard.writeText(text); }
      button.textContent = "Copied";
    });
  });
  panel.querySelectorAll(".endpoint-try").forEach(function (button) {
    button.addEventListener("click", function () {
      var result = document.getElementById("endpoint-result");
      var status = result.querySelector(".endpoint-status");
      var output = result.querySelector(".endpoint-response");
      var method = button.dataset.method;
      var payload = document.getElementById("endpoint-payload").value;
      var url = button.dataset.url;
      var options = {method: method, credentials: "same-origin", headers: {"Accept": "application/json"}};
      // An instance of a template is named on its template's shared path (Axway's header).
      Object.assign(options.headers, JSON.parse(button.dataset.headers || "{}"));
      result.hidden = false;
      output.textContent = "";
      if (button.dataset.body) {
        options.headers["Content-Type"] = "application/json";
        options.body = payload;
      } else if (payload.trim()) {
        try { url = withQuery(url, payload); } catch (error) {
          status.textContent = "Not sent: the example payload is not a JSON object of parameters";
          output.textContent = String(error.message || error);
          return;
        }
      }
      if (method !== "GET") { options.headers["X-CSRFToken"] = csrfToken(); }
      status.textContent = "calling " + method + " " + url + " …";
      fetch(url, options).then(function (response) {
        return response.text().then(function (text) {
          status.textContent = response.status + " " + response.statusText;
          output.textContent = pretty(text);
        });
      }).catch(function (error) {
        status.textContent = "The call failed";
        output.textContent = String(error);
      });
    });
  });
})();
