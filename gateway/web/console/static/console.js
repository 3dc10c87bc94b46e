// Narrows a select's options to the group chosen in another (department -> issues,
// district -> blocks). The form works without it: every option is there, grouped.
"use strict";
document.querySelectorAll("select[data-narrows]").forEach(function (parent) {
  var child = document.getElementById(parent.getAttribute("data-narrows"));
  if (!child) return;
  function narrow() {
    child.querySelectorAll("optgroup[data-group]").forEach(function (group) {
      var shown = !parent.value || group.getAttribute("data-group") === parent.value;
      group.hidden = !shown;
      group.disabled = !shown;
    });
    var chosen = child.options[child.selectedIndex];
    if (chosen && chosen.parentNode.disabled) child.value = "";
  }
  parent.addEventListener("change", narrow);
  narrow();
});
