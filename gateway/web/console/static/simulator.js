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
