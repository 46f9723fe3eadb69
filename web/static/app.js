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

    // Live pages re-read their #live region when the org's calls or
    // messages change (the stream carries ids only, never data).
    var main = document.querySelector("main[data-live]");
    if (main && window.EventSource && document.getElementById("live")) {
      var source = new EventSource(main.getAttribute("data-live"));
      var timer = null;
      var refresh = function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          window.fetch(window.location.href, { credentials: "same-origin" }).then(function (r) {
            return r.ok && !r.redirected ? r.text() : null;
          }).then(function (html) {
            if (!html) { return; }
            var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
            var current = document.getElementById("live");
            if (fresh && current) { current.replaceWith(document.adoptNode(fresh)); }
          }).catch(function () { /* the next event or a reload will do */ });
        }, 100);
      };
      source.addEventListener("call", refresh);
      source.addEventListener("message", refresh);
      source.addEventListener("end", function () { source.close(); window.location.reload(); });
    }

    // On a narrow screen the navigation scrolls sideways: bring the current
    // page's tab into view (centred when it can be).
    var nav = document.querySelector("nav.nav");
    var current = nav && nav.querySelector('[aria-current="page"]');
    if (current && nav.scrollWidth > nav.clientWidth) {
      var offset = current.getBoundingClientRect().left - nav.getBoundingClientRect().left + nav.scrollLeft;
      nav.scrollLeft = Math.max(0, offset - (nav.clientWidth - current.offsetWidth) / 2);
    }

    // Destructive buttons ask first.
    document.querySelectorAll("[data-confirm]").forEach(function (btn) {
      btn.addEventListener("click", function (ev) {
        if (!window.confirm(btn.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  });
})();
