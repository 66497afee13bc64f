// Live events: keeps each poller's cursor, honours pause, trims the tables, opens a clicked row.
(function () {
  "use strict";
  var CURSOR_HEADER = "X-Live-Cursor";

  function poller(elt) {
    return elt && elt.closest ? elt.closest("[data-live-poll]") : null;
  }

  // Paused: the poll is not sent; the cursor stays, so resuming fetches what arrived meanwhile.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var form = poller(evt.detail.elt);
    if (form && form.dataset.paused === "true") evt.preventDefault();
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = poller(evt.detail.elt);
    if (!form || !evt.detail.successful) return;
    var cursor = evt.detail.xhr.getResponseHeader(CURSOR_HEADER);
    if (cursor) form.querySelector("input[name=after]").value = cursor;
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    var body = evt.detail.target;
    var table = body && body.closest ? body.closest("table.live-table") : null;
    if (!table) return;
    var max = parseInt(table.dataset.maxRows || "200", 10);
    var rows = body.rows;
    for (var i = rows.length - 1; i >= max; i--) rows[i].remove();
    var empty = table.closest("section").querySelector(".empty-note");
    if (empty && rows.length) empty.hidden = true;
  });

  // A click anywhere on an event row opens it (the time cell holds the keyboard-reachable link).
  document.addEventListener("click", function (evt) {
    var row = evt.target.closest ? evt.target.closest("tr[data-href]") : null;
    if (!row || evt.target.closest("a, button, summary, input, select")) return;
    if (window.getSelection && String(window.getSelection())) return; // selecting text to copy
    window.location.href = row.dataset.href;
  });
})();
