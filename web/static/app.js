// Voxanne dashboard: the little the pages need beyond HTML. Everything works
// without it except these conveniences.
(function () {
  "use strict";

  // A recovery or confirmation link lands on the site with the session in
  // the URL fragment. Move it to the reset form (recovery) and out of the
  // address bar and history at once.
  var hash = window.location.hash ? window.location.hash.substring(1) : "";
  if (hash) {
    var params = new URLSearchParams(hash);
    var type = params.get("type");
    if (params.get("access_token") && type === "recovery" && window.location.pathname !== "/reset") {
      window.location.replace("/reset#" + hash);
      return;
    }
    if (params.get("access_token") && type === "signup") {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
      window.location.replace("/login?confirmed=1");
      return;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("reset-form");
    if (form) {
      var p = new URLSearchParams(hash);
      var access = p.get("access_token");
      var refresh = p.get("refresh_token");
      if (document.getElementById("access_token").value) {
        // A failed attempt brought the session back in the form.
      } else if (access && refresh) {
        document.getElementById("access_token").value = access;
        document.getElementById("refresh_token").value = refresh;
        window.history.replaceState(null, "", "/reset");
      } else if (!document.querySelector(".alert.error")) {
        document.getElementById("reset-missing").hidden = false;
      }
    }

    // The org switcher submits on change.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
      var btn = sel.form.querySelector("button");
      if (btn) { btn.classList.add("js-hidden"); }
    });

    // Destructive buttons ask first.
    document.querySelectorAll("[data-confirm]").forEach(function (btn) {
      btn.addEventListener("click", function (ev) {
        if (!window.confirm(btn.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  });
})();
