// Refreshes the #live part of a dashboard page every 2 s without a reload.
// The fragment is rendered (and escaped) by the server from the same templates.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var url = live.getAttribute("data-refresh");
  var clock = document.getElementById("clock");
  var updated = document.getElementById("updated");
  var every = 2000;

  function stamp(ok) {
    if (clock && ok) { clock.textContent = new Date().toTimeString().slice(0, 8); }
    if (updated) { updated.className = ok ? "muted" : "stale"; }
  }

  function refresh() {
    if (document.hidden) { setTimeout(refresh, every); return; }
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) { live.innerHTML = html; stamp(true); })
      .catch(function () { stamp(false); })
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
