// Template editor: warn before leaving the page with unsaved edits.
(function () {
  "use strict";
  const form = document.getElementById("tpl-form");
  if (!form) return;
  let dirty = false;
  form.addEventListener("input", function (event) {
    // The preview inputs are not part of the template.
    if (!event.target.name || !event.target.name.startsWith("preview_")) dirty = true;
  });
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
