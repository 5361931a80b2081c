// Filters that apply at once (no dependencies, no build step; no inline script, so a
// strict Content-Security-Policy can forbid those).
//
// In a form marked [data-filters], a <select data-autosubmit> submits the form as soon
// as it changes, and the form's [data-apply] button, needed only without JavaScript, is
// hidden. After the new page loads, focus goes back to the select that was changed, so
// a keyboard user keeps their place.
(function () {
  "use strict";
  var KEY = "recsite:filters:focus";

  function submit(form) {
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  function init() {
    var forms = document.querySelectorAll("form[data-filters]");
    Array.prototype.forEach.call(forms, function (form) {
      Array.prototype.forEach.call(form.querySelectorAll("[data-apply]"), function (button) {
        button.hidden = true;
      });
      Array.prototype.forEach.call(form.querySelectorAll("[data-autosubmit-hint]"), function (hint) {
        hint.hidden = false;
      });
      Array.prototype.forEach.call(form.querySelectorAll("select[data-autosubmit]"), function (select) {
        select.addEventListener("change", function () {
          try { sessionStorage.setItem(KEY, select.name); } catch (e) { /* private mode */ }
          submit(form);
        });
      });
    });
    var name = null;
    try {
      name = sessionStorage.getItem(KEY);
      sessionStorage.removeItem(KEY);
    } catch (e) { /* private mode */ }
    if (name) {
      var target = document.querySelector('form[data-filters] select[name="' + name + '"]');
      if (target) target.focus();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
