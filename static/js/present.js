// Presentation mode (templates/web/present.html): keys, full screen, the audience switch. The page
// works without this file: the drawer and the QR panel are <details>, the form posts, Leave is a link.
// app.js does the rest, as on the playground (polls, the strip catching up, double presses).
(function () {
  "use strict";

  var PROMPT_KEPT = "present:prompt";  // the prompt, across a switch of model (a new page)
  var root = null;
  var lastFullscreenExit = 0;  // when the browser last took the page out of full screen (its Esc)
  var leavingFullscreen = false;  // this script is taking it out (F, the button)

  function typing(element) {
    if (!element || !element.matches) return false;
    return element.isContentEditable ||
      element.matches("textarea, select, input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit])");
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) {
      leavingFullscreen = true;
      document.exitFullscreen();
    } else if (document.fullscreenEnabled) {
      document.documentElement.requestFullscreen().catch(function () {});
    }
  }

  // The strip: this visit's results, then the audience's, in the order shown. Moving opens the
  // neighbour in the big panel (its link's own hx-get) and marks it at once, so a second press
  // before the answer moves on from there.
  function move(step) {
    var items = Array.from(root.querySelectorAll(".present-strip .strip-item"));
    if (!items.length) return;
    var current = items.findIndex(function (item) { return item.hasAttribute("aria-current"); });
    var next = current < 0 ? 0 : Math.min(items.length - 1, Math.max(0, current + step));
    if (next === current) return;
    items.forEach(function (item, index) {
      if (index === next) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    });
    items[next].scrollIntoView({ block: "nearest", inline: "nearest" });
    items[next].querySelector("a").click();
  }

  function closeOpenPanel() {
    var open = root.querySelector("details.join[open], details.drawer[open]");
    if (!open) return false;
    open.open = false;
    open.querySelector("summary").focus();
    return true;
  }

  function onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
    var target = event.target;
    if (event.key === "Enter" && !event.shiftKey && target.matches && target.matches("[data-present-prompt]")) {
      event.preventDefault();
      target.form.requestSubmit();
      return;
    }
    if (event.key === "Escape") {
      var lightbox = document.getElementById("lightbox");
      if (lightbox && lightbox.open) return;  // the dialog closes by itself
      if (closeOpenPanel()) {
        event.preventDefault();
        return;
      }
      // In full screen Esc leaves full screen, not the page. The browser does that itself; should the
      // key reach the page as well (just after, or instead), it does no more than that.
      if (document.fullscreenElement) {
        event.preventDefault();
        toggleFullscreen();
        return;
      }
      if (Date.now() - lastFullscreenExit < 600) return;
      event.preventDefault();
      location.assign(root.dataset.leave);
      return;
    }
    if (typing(target)) return;
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      move(event.key === "ArrowRight" ? 1 : -1);
    } else if (event.key === "f" || event.key === "F") {
      event.preventDefault();
      toggleFullscreen();
    }
  }

  // "Show audience results": the strip's audience part polls while it is on (see present.html's
  // audience-strip); off, it is replaced by an empty one, which polls nothing. The address keeps
  // the choice, so a reload shows the same.
  function onAudienceSwitch(box) {
    var address = new URL(location.href);
    if (box.checked) {
      htmx.ajax("GET", box.dataset.audienceUrl, { target: "#audience-strip", swap: "outerHTML" });
      address.searchParams.set("audience", "1");
    } else {
      var empty = document.createElement("div");
      empty.id = "audience-strip";
      empty.className = "strip-group audience-strip";
      document.getElementById("audience-strip").replaceWith(empty);
      address.searchParams.delete("audience");
    }
    history.replaceState(history.state, "", address);
  }

  function start() {
    root = document.querySelector(".present");
    if (!root) return;
    document.addEventListener("keydown", onKey);

    var button = root.querySelector("[data-fullscreen]");
    if (button && document.fullscreenEnabled) {
      button.hidden = false;
      button.addEventListener("click", toggleFullscreen);
    }
    document.addEventListener("fullscreenchange", function () {
      if (!document.fullscreenElement && !leavingFullscreen) lastFullscreenExit = Date.now();
      leavingFullscreen = false;
      if (button) button.setAttribute("aria-pressed", document.fullscreenElement ? "true" : "false");
    });

    var picker = root.querySelector("[data-present-picker]");
    var prompt = root.querySelector("[data-present-prompt]");
    if (picker) {
      picker.addEventListener("change", function () {
        var current = root.querySelector("[data-present-prompt]");
        if (current && current.value) sessionStorage.setItem(PROMPT_KEPT, current.value);
        picker.form.submit();
      });
    }
    var kept = sessionStorage.getItem(PROMPT_KEPT);
    if (kept !== null) {
      sessionStorage.removeItem(PROMPT_KEPT);
      if (prompt && !prompt.value) prompt.value = kept;
    }

    document.addEventListener("change", function (event) {
      if (event.target.id === "show-audience") onAudienceSwitch(event.target);
    });
    // An answer that arrives after the switch went off is not shown (and so does not poll on).
    document.addEventListener("htmx:beforeSwap", function (event) {
      var box = document.getElementById("show-audience");
      var target = event.detail.target;
      if (box && !box.checked && target && target.id === "audience-strip") event.detail.shouldSwap = false;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
