// The set-up page: language tabs, copy buttons, the service name rewritten in every
// snippet as it is typed, and the "waiting for your first span" panel, which polls the
// organisation's newest trace and turns into a link to it. Without this script the page
// shows every language at once and the service name is a GET form.
(function () {
  "use strict";

  var SERVICE = /^[A-Za-z0-9._-]{1,64}$/;
  var STORED_TAB = "weft.setup.language";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP dashboards have no clipboard API: copy through a selected textarea.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var done = document.execCommand("copy");
      document.body.removeChild(area);
      if (done) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function setUpCopyButtons() {
    document.querySelectorAll("button.copy").forEach(function (button) {
      var holder = button.closest(".snippet-block, .copyable");
      var source = holder && holder.querySelector("pre");
      if (!source) { return; }
      button.hidden = false;
      var caption = holder.querySelector(".snippet-head span");
      button.title = "Copy " + (caption ? caption.textContent : "the key");
      button.addEventListener("click", function () {
        copyText(source.textContent).then(function () {
          button.textContent = "Copied";
          button.classList.add("done");
        }, function () {
          button.textContent = "Select and copy";
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
        });
        setTimeout(function () {
          button.textContent = "Copy";
          button.classList.remove("done");
        }, 2000);
      });
    });
  }

  function setUpTabs() {
    var list = document.querySelector(".tabs[role=tablist]");
    if (!list) { return; }
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    function select(tab, focus) {
      tabs.forEach(function (other) {
        var selected = other === tab;
        other.setAttribute("aria-selected", selected ? "true" : "false");
        other.tabIndex = selected ? 0 : -1;
        document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
      });
      if (focus) { tab.focus(); }
      try { localStorage.setItem(STORED_TAB, tab.dataset.language); } catch (e) { /* private mode */ }
    }
    list.hidden = false;
    document.querySelector(".snippets").classList.add("tabbed");
    var stored = null;
    try { stored = localStorage.getItem(STORED_TAB); } catch (e) { /* private mode */ }
    var wanted = (location.hash || "").replace("#", "") || stored;
    select(tabs.filter(function (t) { return t.dataset.language === wanted; })[0] || tabs[0], false);
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (event) {
        var next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
        if (next === undefined) { return; }
        event.preventDefault();
        select(tabs[(next + tabs.length) % tabs.length], true);
      });
    });
  }

  function setUpServiceName() {
    var input = document.getElementById("service");
    var error = document.getElementById("service-error");
    if (!input) { return; }
    // The snippets follow as the name is typed; the button is for pages without script.
    input.form.querySelector("button[type=submit]").hidden = true;
    input.form.addEventListener("submit", function (event) {
      event.preventDefault();
      apply();
    });
    function apply() {
      var name = input.value.trim();
      var valid = SERVICE.test(name);
      error.hidden = valid;
      input.setAttribute("aria-invalid", valid ? "false" : "true");
      if (!valid) { return; }
      document.querySelectorAll("pre.snippet .snippet-service").forEach(function (span) { span.textContent = name; });
      // The set-up page's own address, also right after sign-up (whose URL is /signup).
      var url = new URL("/", location.href);
      url.searchParams.set("service", name);
      history.replaceState(null, "", url);
    }
    input.addEventListener("input", apply);
  }

  function arrived(panel, trace) {
    var heading = document.createElement("h2");
    heading.textContent = "Your first trace arrived";
    var paragraph = document.createElement("p");
    var link = document.createElement("a");
    link.id = "newest-trace";
    link.href = "/traces/" + encodeURIComponent(trace.trace_id);
    link.append("Open it: ");
    var service = document.createElement("strong");
    service.textContent = trace.root_service;
    link.append(service, " " + trace.root_name);
    paragraph.append(link);
    panel.replaceChildren(heading, paragraph);
    panel.classList.add("arrived");
  }

  function pollFirstTrace() {
    var panel = document.getElementById("first-span");
    if (!panel || document.getElementById("newest-trace")) { return; }
    var url = panel.dataset.poll;
    var delay = 2000;
    function ask() {
      fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error("status " + response.status); }
          return response.json();
        })
        .then(function (body) {
          if (body.trace) {
            arrived(panel, body.trace);
            return;
          }
          delay = 2000;
          setTimeout(ask, delay);
        }, function () {
          // The session ended or Weft is briefly away: keep asking, less often.
          delay = Math.min(delay * 2, 30000);
          setTimeout(ask, delay);
        });
    }
    setTimeout(ask, delay);
  }

  setUpCopyButtons();
  setUpTabs();
  setUpServiceName();
  pollFirstTrace();
})();
