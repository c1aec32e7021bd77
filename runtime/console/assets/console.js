// skillbox console: the time left of each pending call counts down. A page that lists
// no call waiting for a decision reloads itself every few seconds so calls in flight
// and states stay current, unless the operator is typing in a form. A page that lists
// one (data-hold) never reloads by itself: a reload could put another request's Allow
// under the approver's pointer. It fetches itself in the background instead and, when
// what it lists changed (data-state), shows a notice with a reload link. No other
// script runs.
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
  var hold = document.querySelector("[data-hold]");
  if (hold) {
    var shown = hold.getAttribute("data-state");
    var notice = document.getElementById("changed");
    var timer = setInterval(function () {
      fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.text(); })
        .then(function (text) {
          var doc = new DOMParser().parseFromString(text, "text/html");
          var now = doc.querySelector("[data-state]");
          if (!now || now.getAttribute("data-state") !== shown) {
            notice.hidden = false;
            clearInterval(timer);
          }
        })
        .catch(function () {});
    }, every);
    return;
  }
  if (!document.querySelector("[data-refresh]")) return;
  setInterval(function () {
    if (!busy()) window.location.replace(window.location.pathname);
  }, every);
})();
