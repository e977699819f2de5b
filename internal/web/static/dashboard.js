// Fjord dashboard: the page works without this script; it only makes the
// site picker navigate on change and keeps the realtime count fresh.
(function () {
  "use strict";
  var pick = document.getElementById("site-picker");
  if (pick) {
    pick.addEventListener("change", function () { location.href = pick.value; });
    var go = document.getElementById("site-go");
    if (go) go.hidden = true;
  }
  var rt = document.getElementById("realtime-count");
  if (rt && rt.dataset.site) {
    setInterval(function () {
      fetch("/dashboard/" + encodeURIComponent(rt.dataset.site) + "/realtime", { headers: { "X-Fjord-Poll": "1" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (t) { if (t !== null) rt.textContent = t.trim(); })
        .catch(function () {});
    }, 30000);
  }
})();
