// skillbox console: the page reloads itself every few seconds so pending calls, calls
// in flight and states stay current, unless the operator is typing in a form; the time
// left of each pending call counts down in between. No other script runs.
(function () {
  "use strict";
  var every = 5000;
  function busy() {
    var a = document.activeElement;
    if (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA")) return true;
    var fields = document.querySelectorAll("input[type=text], textarea");
    for (var i = 0; i < fields.length; i++) if (fields[i].value !== "") return true;
    return false;
  }
  function countdown() {
    var els = document.querySelectorAll("[data-expires]");
    for (var i = 0; i < els.length; i++) {
      var left = Math.max(0, Math.round((Date.parse(els[i].getAttribute("data-expires")) - Date.now()) / 1000));
      els[i].textContent = left > 0 ? left + "s" : "expired";
    }
  }
  if (document.querySelector("[data-expires]")) setInterval(countdown, 1000);
  if (!document.querySelector("[data-refresh]")) return;
  setInterval(function () {
    if (!busy()) window.location.replace(window.location.pathname);
  }, every);
})();
