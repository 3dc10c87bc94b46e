// Bulk notices: the compose form shows the chosen template's values only; a notice's page
// follows its progress (every 2 s, from its small JSON) until it is done or cancelled, and
// reloads when its state changes (for its buttons). Without it: the page's Reload link.
"use strict";
(function () {
  var template = document.getElementById("template");
  if (template) {
    var pick = function () {
      document.querySelectorAll("div.vars[data-template]").forEach(function (box) {
        var shown = box.getAttribute("data-template") === template.value;
        box.hidden = !shown;
        box.querySelectorAll("input").forEach(function (i) { i.disabled = !shown; });
      });
    };
    template.addEventListener("change", pick);
    pick();
  }
  var card = document.querySelector("[data-progress]");
  if (!card) return;
  var url = card.getAttribute("data-progress");
  var status = card.getAttribute("data-status");
  var bar = document.getElementById("bar");
  function show(data) {
    card.querySelectorAll("[data-field]").forEach(function (el) {
      var name = el.getAttribute("data-field");
      if (name in data && name !== "status_label") el.textContent = String(data[name]);
    });
    if (bar) { bar.value = data.percent; bar.textContent = data.percent + "%"; }
    if (data.status !== status) window.location.reload();
    else if (data.status === "sending" || data.status === "paused") later();
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(show)
      .catch(function () { later(); });
  }
  function later() { window.setTimeout(poll, 2000); }
  if (status === "sending" || status === "paused" || status === "done") later();
})();
