// skillbox console: the page reloads itself every few seconds so calls in flight and
// states stay current, unless the operator is typing in a form. No other script runs.
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
  if (!document.querySelector("[data-refresh]")) return;
  setInterval(function () {
    if (!busy()) window.location.replace(window.location.pathname);
  }, every);
})();
