// The phone simulator's keypad types into the screen without a round trip; without this
// script each key is a form button the server adds to what is typed.
"use strict";
(function () {
  var form = document.getElementById("handset");
  var typed = document.getElementById("typed");
  if (!form || !typed) return;
  form.querySelectorAll("button[name=key]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      typed.value = (typed.value + button.value).slice(0, 160);
      typed.focus();
    });
  });
  var clear = form.querySelector("button[value=clear]");
  if (clear) clear.addEventListener("click", function (event) {
    event.preventDefault();
    typed.value = typed.value.slice(0, -1);
    typed.focus();
  });
})();

// The phone's SMS arrive after the screen that caused them (the worker sends them): the
// inbox is fetched again every few seconds for a while, and replaced when it changed.
(function () {
  var inbox = document.getElementById("inbox-messages");
  if (!inbox || !window.fetch || !window.DOMParser) return;
  var started = Date.now();
  var timer = window.setInterval(function () {
    if (Date.now() - started > 5 * 60 * 1000) { window.clearInterval(timer); return; }
    if (document.visibilityState !== "visible") return;
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("inbox-messages");
        if (fresh && fresh.innerHTML !== inbox.innerHTML) inbox.innerHTML = fresh.innerHTML;
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }, 3000);
})();
