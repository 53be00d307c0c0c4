// live.js follows a request's state while it is on its way to Active
// (Server-Sent Events from /requests/<name>/events, read as the user) and
// updates the page in place: the state at once, then the rest of the page
// (times, decisions, what can be done) from a fresh copy of it. Without
// script the page reloads itself instead (<noscript> meta refresh) and has
// a Reload link.
(function () {
  "use strict";
  var state = document.querySelector("[data-live]");
  if (!state || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var shown = state.textContent;
  var source = new EventSource(state.getAttribute("data-live"));
  var pending = null;

  // otherwise shows the latest state alone.
  function otherwise() {
    var el = document.querySelector("#state");
    if (el) {
      el.textContent = shown;
      el.className = "state " + shown.toLowerCase();
    }
  }

  function refreshPage() {
    // One fetch at a time; a change that comes meanwhile fetches again.
    if (pending) {
      pending.again = true;
      return;
    }
    pending = { again: false };
    fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (resp) {
        // Not a sign-in page or an error in place of the request's.
        return resp.ok && !resp.redirected ? resp.text() : null;
      })
      .then(function (html) {
        if (!html) {
          otherwise();
          return;
        }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("main");
        var main = document.querySelector("main");
        if (!fresh || !main) {
          otherwise();
          return;
        }
        // Keep what the user is typing: the swap waits while a field of
        // the page has the focus and holds text.
        var active = document.activeElement;
        if (active && main.contains(active) && active.value) {
          otherwise();
          return;
        }
        // The message the previous action left (shown once) stays.
        var flash = main.querySelector("#flash");
        if (flash && !fresh.querySelector("#flash")) {
          var h1 = fresh.querySelector("h1");
          if (h1) {
            h1.after(flash.cloneNode(true));
          }
        }
        main.replaceWith(document.importNode(fresh, true));
        var next = document.querySelector("#state");
        if (next) {
          shown = next.textContent;
        }
      })
      .catch(otherwise)
      .then(function () {
        var again = pending && pending.again;
        pending = null;
        if (again) {
          refreshPage();
        }
      });
  }

  source.addEventListener("state", function (e) {
    var d;
    try {
      d = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    if (!d.state || d.state === shown) {
      return;
    }
    shown = d.state;
    // The whole page at once, so that the state and what goes with it
    // never disagree on screen; the state alone if that fails.
    refreshPage();
  });
  source.addEventListener("end", function () {
    source.close();
  });
})();
