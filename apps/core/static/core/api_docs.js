// ReDoc for Flowsite: the schema is its reader's (/api/schema/ lists what the caller may
// call), so it is fetched here, with the API key typed in the form (kept in this tab's
// sessionStorage) or else the admin session's cookie, and handed to ReDoc as a document.
"use strict";

(function () {
  const STORE = "flowsite.apiKey";
  const container = document.getElementById("redoc-container");
  const form = document.getElementById("api-key-form");
  const input = document.getElementById("api-key");
  const status = document.getElementById("api-key-status");
  const schemaUrl = new URL(container.dataset.schemaUrl, document.baseURI);
  schemaUrl.searchParams.set("format", "json");

  function show(message, isError) {
    status.textContent = message;
    status.classList.toggle("error", Boolean(isError));
  }

  async function load() {
    const key = sessionStorage.getItem(STORE) || "";
    const headers = { Accept: "application/json" };
    if (key) {
      headers.Authorization = "Bearer " + key;
    }
    show("Loading…");
    let response;
    try {
      response = await fetch(schemaUrl, { headers, credentials: "same-origin" });
    } catch (error) {
      show("The schema could not be fetched: " + error.message, true);
      return;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && body.detail ? body.detail : response.statusText;
      show(response.status + ": " + detail, true);
      return;
    }
    const count = Object.keys(body.paths || {}).length;
    const who = key ? "this key" : "your session (or an anonymous reader)";
    show(count + " path(s) " + who + " may call.");
    // Descriptions are builders' text: ReDoc renders their Markdown, HTML included, unless
    // told to sanitise it (an outside probe put a form on this page through one).
    Redoc.init(body, { sanitize: true }, container);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const key = input.value.trim();
    if (key) {
      sessionStorage.setItem(STORE, key);
    } else {
      sessionStorage.removeItem(STORE);
    }
    input.value = "";
    load();
  });

  load();
})();
