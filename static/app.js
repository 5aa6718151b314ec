/* The app's one script: progressive enhancement only, every page works without it.
 *
 * - <time datetime> elements show "3 minutes ago", with the local date and time on hover;
 * - a text box with data-max gets a live counter that counts as the server does (code
 *   points, after CR LF -> LF, surrounding white space ignored), and says by how much a
 *   text is too long instead of cutting it;
 * - the status form posts with fetch (X-XSRFToken header), inserts the new status at the
 *   top and shows errors in place; what is being typed is kept in sessionStorage, so a
 *   session that ended meanwhile loses nothing: the user signs in and finds it again.
 * No framework, no CDN, no inline code (the Content-Security-Policy forbids it).
 */
(function () {
  "use strict";

  // ----- counting like the server ------------------------------------------------------
  function normalise(text) {
    return text.replace(/\r\n?/g, "\n");
  }
  function length(text) {
    return Array.from(normalise(text).trim()).length; // code points, as Python's len()
  }

  // ----- relative times ------------------------------------------------------------------
  var relative = window.Intl && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
  var absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  var STEPS = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [4.35, "week"],
               [12, "month"], [Infinity, "year"]];

  function ago(date, now) {
    var amount = (date.getTime() - now) / 1000;
    if (Math.abs(amount) < 45) return "just now";
    for (var i = 0; i < STEPS.length; i++) {
      if (Math.abs(amount) < STEPS[i][0]) {
        return relative.format(Math.round(amount), STEPS[i][1]);
      }
      amount /= STEPS[i][0];
    }
    return absolute.format(date);
  }

  function showTime(el, now) {
    var date = new Date(el.getAttribute("datetime"));
    if (isNaN(date.getTime())) return;
    el.title = absolute.format(date);
    if (relative && !el.hasAttribute("data-absolute")) {
      el.textContent = ago(date, now);
    } else {
      el.textContent = absolute.format(date);
    }
  }

  function refreshTimes(root) {
    var now = Date.now();
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) showTime(times[i], now);
  }

  // ----- the live counter ----------------------------------------------------------------
  function setUpCounter(box) {
    var max = parseInt(box.getAttribute("data-max"), 10);
    var counter = document.getElementById(box.id + "-count");
    if (!max || !counter) return null;
    function update() {
      var used = length(box.value);
      counter.classList.toggle("over", used > max);
      if (used > max) {
        counter.textContent = (used - max) + " character" + (used - max === 1 ? "" : "s") +
          " too many (" + used + " of " + max + ")";
      } else {
        counter.textContent = used + " of " + max + " characters";
      }
      return used;
    }
    box.addEventListener("input", update);
    update();
    return { update: update, max: max };
  }

  // ----- errors beside their field -------------------------------------------------------
  function fieldError(box) {
    return document.getElementById(box.id + "-error");
  }
  function showError(box, message) {
    var el = fieldError(box);
    if (!el) return;
    el.textContent = "Error: " + message;
    el.hidden = false;
    box.setAttribute("aria-invalid", "true");
    var ids = (box.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (ids.indexOf(el.id) < 0) ids.push(el.id);
    box.setAttribute("aria-describedby", ids.join(" "));
    if (document.title.indexOf("Error: ") !== 0) document.title = "Error: " + document.title;
    box.focus();
  }
  function clearError(box) {
    var el = fieldError(box);
    if (el) { el.hidden = true; el.textContent = ""; }
    box.removeAttribute("aria-invalid");
    document.title = document.title.replace(/^Error: /, "");
  }

  // ----- flash message (the same box the server renders after a redirect) ----------------
  function flash(text) {
    var box = document.getElementById("flash");
    if (!box) {
      box = document.createElement("p");
      box.id = "flash";
      box.className = "flash";
      box.setAttribute("role", "status");
      var main = document.getElementById("main");
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = text;
  }

  // ----- the status form -----------------------------------------------------------------
  function draftStore() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  function setUpPostForm(form) {
    var box = form.querySelector("textarea");
    if (!box) return;
    var counter = setUpCounter(box);
    var store = draftStore();
    var key = "draft:" + (form.getAttribute("data-draft-key") || form.action);
    if (store) {
      var saved = store.getItem(key);
      if (saved && !box.value) {
        box.value = saved;
        if (counter) counter.update();
      }
      box.addEventListener("input", function () {
        if (box.value) store.setItem(key, box.value); else store.removeItem(key);
      });
    }
    box.addEventListener("input", function () {
      if (box.getAttribute("aria-invalid") && (!counter || length(box.value) <= counter.max)) {
        clearError(box);
      }
    });

    form.addEventListener("submit", function (event) {
      if (!window.fetch || !window.URLSearchParams) return; // the plain form still works
      event.preventDefault();
      var used = length(box.value);
      if (used === 0) { showError(box, "Status must not be empty."); return; }
      if (counter && used > counter.max) {
        showError(box, "Status must be at most " + counter.max + " characters; this one has " +
          used + ". Shorten it by " + (used - counter.max) + ".");
        return;
      }
      var button = form.querySelector("button[type=submit]");
      var token = form.querySelector("input[name=_xsrf]");
      var body = new URLSearchParams();
      body.append("status", normalise(box.value));
      if (button) button.disabled = true;
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Accept": "application/json",
          "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
          "X-XSRFToken": token ? token.value : ""
        },
        body: body.toString()
      }).then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          return { status: response.status, data: data };
        });
      }).then(function (reply) {
        if (reply.status === 201 && reply.data && !reply.data.error) {
          posted(form, box, reply.data.message);
          if (store) store.removeItem(key);
          if (counter) counter.update();
        } else if (reply.status === 401) {
          // The session ended (signed out elsewhere, or idle too long): the draft is kept
          // in sessionStorage; after signing in the user comes back here and finds it.
          if (store && box.value) store.setItem(key, box.value);
          window.location.assign("/?next=" + encodeURIComponent(location.pathname));
        } else {
          showError(box, (reply.data && reply.data.message) ||
            "The status could not be posted. Please try again.");
        }
      }).catch(function () {
        showError(box, "The status could not be posted: no connection. Please try again.");
      }).then(function () {
        if (button) button.disabled = false;
      });
    });
  }

  function posted(form, box, status) {
    var list = document.querySelector(".statuses");
    if (list) {
      var item = document.createElement("li");
      var text = document.createElement("p");
      text.textContent = status.user_status;
      var time = document.createElement("time");
      time.setAttribute("datetime", status.created_date || new Date().toISOString());
      item.appendChild(text);
      item.appendChild(time);
      list.insertBefore(item, list.firstChild);
      list.hidden = false;
      showTime(time, Date.now());
      var empty = document.querySelector(".empty");
      if (empty) empty.remove();
    }
    box.value = "";
    clearError(box);
    flash("Status posted.");
  }

  // ----- start ---------------------------------------------------------------------------
  function start() {
    refreshTimes(document);
    window.setInterval(function () { refreshTimes(document); }, 30000);
    var forms = document.querySelectorAll("form.post-form");
    for (var i = 0; i < forms.length; i++) setUpPostForm(forms[i]);
    var counted = document.querySelectorAll("textarea[data-max]:not(.post-form textarea)");
    for (var j = 0; j < counted.length; j++) setUpCounter(counted[j]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
