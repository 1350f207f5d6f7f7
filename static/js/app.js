// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function init(root) {
    root.querySelectorAll("[data-upload] input[type=file]").forEach(function (input) {
      input.addEventListener("change", function () { showPreviews(input); });
    });

    root.querySelectorAll("[data-repeat]").forEach(initRepeat);

    startClocks(root);
    markCurrentInStrip();

    // The workspace switcher goes on choosing (its Switch button is for pages without JavaScript).
    root.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
      var button = form.querySelector("[data-autosubmit-button]");
      if (button) button.hidden = true;
      form.querySelector("select").addEventListener("change", function () { form.requestSubmit(); });
    });
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        navigator.clipboard.writeText(source.innerText).then(function () {
          var label = button.textContent;
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = label; }, 1500);
        });
      });
    });

    root.querySelectorAll("a.zoom").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        openLightbox(link.href, link.querySelector("img").alt);
      });
    });
  }

  function showPreviews(input) {
    var box = input.closest("[data-upload]").querySelector("[data-previews]");
    box.replaceChildren();
    var max = parseInt(input.dataset.max || "0", 10);
    Array.from(input.files).forEach(function (file, index) {
      var item = document.createElement("figure");
      if (file.type.indexOf("image/") === 0) {
        var img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = file.name;
        item.appendChild(img);
      }
      var caption = document.createElement("figcaption");
      caption.textContent = file.name + " (" + Math.ceil(file.size / 1024) + " KB)";
      item.appendChild(caption);
      if (max && index >= max) item.classList.add("over");
      box.appendChild(item);
    });
    if (max && input.files.length > max) {
      var warning = document.createElement("p");
      warning.className = "error";
      warning.textContent = "At most " + max + " files: the extra ones will be refused.";
      box.appendChild(warning);
    }
  }

  // Files over the server's limits are refused here, beside their field, before anything is sent:
  // one file over the per-file limit, or a submit over the body limit (the server would answer 413
  // without knowing which field to blame). The text fields get a generous allowance.
  function megabytes(bytes) {
    return (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MB";
  }

  function refuseOversizeFiles(form) {
    form.querySelectorAll("[data-size-error]").forEach(function (node) { node.remove(); });
    var maxBody = parseInt(form.dataset.maxBody || "0", 10);
    var maxFile = parseInt(form.dataset.maxFile || "0", 10);
    var total = 65536, largest = null, problem = null;
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      var sum = 0;
      Array.from(input.files).forEach(function (file) {
        sum += file.size;
        if (!problem && maxFile && file.size > maxFile) {
          problem = { input: input, message: file.name + " is " + megabytes(file.size) +
            "; each file can be at most " + megabytes(maxFile) + "." };
        }
      });
      total += sum;
      if (sum && (!largest || sum > largest.sum)) largest = { input: input, sum: sum };
    });
    form.querySelectorAll("textarea, input[type=text]").forEach(function (field) { total += field.value.length; });
    if (!problem && maxBody && largest && total > maxBody) {
      problem = { input: largest.input, message: "The files chosen here come to " + megabytes(largest.sum) +
        "; one Generate can send at most " + megabytes(maxBody) + " in all. Choose fewer or smaller files." };
    }
    if (!problem) return false;
    var field = problem.input.closest(".field") || problem.input.parentNode;
    var box = document.createElement("div");
    box.setAttribute("data-form-error", "");
    box.setAttribute("data-size-error", "");
    var text = document.createElement("p");
    text.className = "error";
    text.setAttribute("role", "alert");
    text.textContent = problem.message;
    box.appendChild(text);
    field.appendChild(box);
    var advanced = field.closest("details");
    if (advanced) advanced.open = true;
    field.scrollIntoView({ block: "center" });
    problem.input.focus({ preventScroll: true });
    return true;
  }

  // A submit refused by the server for its size (413), or while the database or file store is
  // down (503), says so at the top of the form, which stays as it was (htmx swaps nothing on an
  // error answer).
  document.addEventListener("htmx:responseError", function (event) {
    var form = event.detail.elt;
    var status = event.detail.xhr.status;
    if (!form || form.id !== "run-form" || (status !== 413 && status !== 503)) return;
    form.querySelectorAll("[data-body-error]").forEach(function (node) { node.remove(); });
    var holder = document.createElement("div");
    holder.innerHTML = event.detail.xhr.responseText;
    var message = holder.firstElementChild;
    if (!message) return;
    message.setAttribute("data-body-error", "");
    form.prepend(message);
    message.scrollIntoView({ block: "center" });
  });

  function initRepeat(fieldset) {
    var rows = Array.from(fieldset.querySelectorAll("[data-repeat-row]"));
    var add = fieldset.querySelector("[data-repeat-add]");
    var visible = Math.max(1, parseInt(fieldset.dataset.visible || "1", 10));
    function refresh() {
      var shown = rows.filter(function (row) { return !row.hidden; }).length;
      add.hidden = shown >= rows.length;
      rows.forEach(function (row) {
        row.querySelector("[data-repeat-remove]").hidden = shown <= 1;
      });
    }
    rows.forEach(function (row, index) {
      row.hidden = index >= visible;
      row.querySelector("[data-repeat-remove]").addEventListener("click", function () {
        row.querySelectorAll("input[type=text], input[type=url], input[type=file], textarea").forEach(function (field) {
          field.value = "";
        });
        row.hidden = true;
        fieldset.appendChild(row);  // keep the hidden rows last
        rows = Array.from(fieldset.querySelectorAll("[data-repeat-row]"));
        fieldset.appendChild(add);
        refresh();
      });
    });
    add.addEventListener("click", function () {
      var next = rows.find(function (row) { return row.hidden; });
      if (next) {
        next.hidden = false;
        var first = next.querySelector("input, select, textarea");
        if (first) first.focus();
      }
      refresh();
    });
    refresh();
  }

  function openLightbox(src, alt) {
    var dialog = document.getElementById("lightbox");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "lightbox";
      dialog.innerHTML = '<form method="dialog"><button class="close" aria-label="Close">×</button></form><img alt="">';
      dialog.addEventListener("click", function (event) { if (event.target === dialog) dialog.close(); });
      document.body.appendChild(dialog);
    }
    var img = dialog.querySelector("img");
    img.src = src;
    img.alt = alt || "";
    dialog.showModal();
  }

  // A prompt's length: counted in characters (not UTF-16 units) once it nears its cap, and
  // marked when over it, so a long paste is never cut short without a word (the server refuses it).
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!field.matches || !field.matches("textarea[data-maxlength]")) return;
    var max = parseInt(field.getAttribute("data-maxlength"), 10);
    var length = Array.from(field.value).length;
    var count = field.parentNode.querySelector(".char-count");
    if (!count) {
      count = document.createElement("p");
      count.className = "char-count small";
      count.setAttribute("aria-live", "polite");
      field.insertAdjacentElement("afterend", count);
    }
    count.hidden = length < max * 0.9;
    count.classList.toggle("over", length > max);
    count.textContent = length.toLocaleString() + " / " + max.toLocaleString() + " characters" +
      (length > max ? ": " + (length - max).toLocaleString() + " too many" : "");
  });

  // Generate: a second press within a second of the same form is the same intention (a double
  // click), so it is dropped here; the server makes one task of a resent request anyway (the form
  // token). A form changed since the last press is a new request and always goes.
  var lastPress = 0, lastForm = "";
  function formState(form) {
    var parts = [];
    new FormData(form).forEach(function (value, name) {
      if (name === "form_token") return;
      parts.push(name + "=" + (typeof value === "string" ? value : value.name + ":" + value.size));
    });
    return parts.join("&");
  }
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "run-form") return;
    if (refuseOversizeFiles(event.target)) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    var state = formState(event.target);
    if (Date.now() - lastPress < 1000 && state === lastForm) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    lastPress = Date.now();
    lastForm = state;
  }, true);
  // A refused try: the form comes back with its errors. The next press is a new try; the files
  // chosen before stay chosen (a new file input would be empty); the first error comes into view
  // (it may be in the collapsed Advanced section, or under the sticky Generate bar).
  var chosenFiles = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "run-form") return;
    chosenFiles = {};
    target.querySelectorAll("input[type=file]").forEach(function (input) {
      if (input.files.length) chosenFiles[input.name] = input.files;
    });
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "run-form") return;
    lastPress = 0;
    var form = document.getElementById("run-form");
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      if (!chosenFiles[input.name]) return;
      input.files = chosenFiles[input.name];
      if (input.closest("[data-upload]")) showPreviews(input);
    });
    var error = form.querySelector(".has-error, [data-form-error]");
    if (error) {
      error.scrollIntoView({ block: "center" });
      var field = error.querySelector("input:not([type=hidden]), select, textarea");
      if (field) field.focus({ preventScroll: true });
    }
  });

  // Keys page: a key made or rolled shows its secret once, at the top of the keys section. A roll
  // is pressed in the key's row, maybe far below it, so the box comes into view (with its Copy
  // button focused) rather than appearing off-screen where a reload would lose it unseen.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "api-keys") return;
    var box = document.querySelector("#api-keys .secret-box");
    if (!box) return;
    box.scrollIntoView({ block: "nearest" });
    var copy = box.querySelector("[data-copy]");
    if (copy) copy.focus({ preventScroll: true });
  });

  // After a task was made: the errors of earlier tries are stale, and on a narrow screen the
  // result panel (below the form) comes into view.
  document.addEventListener("playground:submitted", function () {
    var form = document.getElementById("run-form");
    if (form) {
      form.querySelectorAll("[data-form-error]").forEach(function (node) { node.remove(); });
      form.querySelectorAll(".has-error").forEach(function (node) { node.classList.remove("has-error"); });
      form.querySelectorAll("[aria-invalid]").forEach(function (node) { node.removeAttribute("aria-invalid"); });
    }
    var panel = document.getElementById("task-status");
    if (panel && window.matchMedia("(max-width: 52rem)").matches) panel.scrollIntoView({ block: "start" });
  });

  // A task's own page opened on a narrow screen (a link from History, or one someone shared): its
  // result panel sits below the form, so it comes into view, as after Generate. A page the browser
  // put back where it was (a reload), or a link to an anchor, stays where it is.
  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("task-status");
    if (!panel || !/^\/tasks\/[^/]+$/.test(location.pathname) || location.hash || window.scrollY > 0) return;
    if (window.matchMedia("(max-width: 52rem)").matches) panel.scrollIntoView({ block: "start" });
  });

  // The estimate follows the priced fields; until the new one arrives the old one is marked stale
  // rather than shown as if it were current.
  function markEstimateStale(event) {
    if (!event.target.matches || !event.target.matches(".priced")) return;
    var cost = document.getElementById("cost");
    if (cost) cost.classList.add("stale");
  }
  document.addEventListener("input", markEstimateStale);
  document.addEventListener("change", markEstimateStale);

  // An estimate refused while the database was down (503) is asked for again after the server's
  // Retry-After, for a minute: the Generate button must not go on showing the price of the fields
  // as they were before the last change.
  document.addEventListener("htmx:afterRequest", function (event) {
    var cost = event.detail.elt;
    if (cost.id !== "cost" || event.detail.successful || !event.detail.xhr || event.detail.xhr.status !== 503) return;
    cost.retries = (cost.retries || 0) + 1;
    if (cost.retries > 12) return;
    var wait = parseInt(event.detail.xhr.getResponseHeader("Retry-After") || "5", 10);
    setTimeout(function () {
      var field = document.querySelector("#run-form .priced");
      if (field && document.getElementById("cost") === cost) field.dispatchEvent(new Event("change"));
    }, wait * 1000);
  });

  // When the panel shows a task's end, its strip item catches up at once rather than at its next poll
  // (also one whose polling stopped after failing: see stopPolling).
  document.addEventListener("htmx:afterSettle", function () {
    var panel = document.getElementById("task-status");
    if (!panel || !panel.dataset.task || panel.hasAttribute("hx-trigger")) return;
    var item = document.getElementById("strip-" + panel.dataset.task);
    if (item && item.hasAttribute("hx-trigger")) htmx.trigger(item, "refresh");
    else if (item && item.dataset.stoppedUrl) resumePolling(item);
  });

  // A strip item whose polling stopped asks once more; the answer polls on if its task still runs.
  function resumePolling(item) {
    var url = item.dataset.stoppedUrl;
    delete item.dataset.stoppedUrl;
    htmx.ajax("GET", url, { source: item, target: item, swap: "outerHTML" });
  }

  // Switching model: files chosen in the form are not sent along (the new form cannot hold them);
  // their fields are named so the page can say which to choose again.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id !== "model-select") return;
    var form = document.getElementById("run-form");
    if (!form) return;
    var dropped = [];
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      if (input.files.length) dropped.push(input.name);
    });
    if (dropped.length) event.detail.parameters.dropped_files = dropped;
  });

  // The strip item of the task on show in the panel is marked.
  function markCurrentInStrip() {
    var panel = document.getElementById("task-status");
    var current = panel ? "strip-" + panel.dataset.task : "";
    document.querySelectorAll(".strip-item").forEach(function (item) {
      if (item.id === current) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    });
  }

  // A poll that keeps failing (the server or a proxy answering 5xx, or no answer) stops after a
  // few tries: the status panel then says so and offers to try again. A 503 is the server saying
  // the database or file store is briefly down (a restart): polls go on through a minute of those,
  // the panel saying so meanwhile (a panel left as it was would look like a task stuck at 0%).
  var MAX_POLL_FAILURES = 3, MAX_UNAVAILABLE_POLLS = 60;
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.matches || !elt.matches("[hx-trigger^='every']")) return;
    if (event.detail.successful) {
      elt.pollFailures = elt.unavailablePolls = 0;
      elt.querySelectorAll("[data-poll-unavailable]").forEach(function (node) { node.remove(); });
      return;
    }
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 503) {
      elt.unavailablePolls = (elt.unavailablePolls || 0) + 1;
      if (elt.unavailablePolls >= MAX_UNAVAILABLE_POLLS) stopPolling(elt, status);
      else if (elt.id === "task-status") sayUnavailable(elt);
      return;
    }
    elt.pollFailures = (elt.pollFailures || 0) + 1;
    if (elt.pollFailures >= MAX_POLL_FAILURES) stopPolling(elt, status);
  });

  function sayUnavailable(panel) {
    if (panel.querySelector("[data-poll-unavailable]")) return;
    var notice = document.createElement("p");
    notice.className = "notice";
    notice.setAttribute("role", "status");
    notice.setAttribute("data-poll-unavailable", "");
    notice.textContent = "The server is not answering just now (it may be restarting). " +
      "This page keeps checking and shows the task as soon as it is back.";
    var head = panel.querySelector(".panel-head");
    if (head) head.after(notice);
    else panel.prepend(notice);
  }

  function stopPolling(elt, status) {
    var url = elt.getAttribute("hx-get");
    var stopped = elt.cloneNode(true);
    stopped.querySelectorAll("[data-poll-unavailable]").forEach(function (node) { node.remove(); });
    ["hx-get", "hx-trigger", "data-etag"].forEach(function (name) { stopped.removeAttribute(name); });
    if (elt.id !== "task-status") stopped.dataset.stoppedUrl = url;  // Try again resumes it too
    if (elt.id === "task-status") {
      stopped.setAttribute("aria-busy", "false");
      var alert = document.createElement("div");
      alert.className = "alert poll-stopped";
      alert.setAttribute("role", "alert");
      var text = document.createElement("p");
      text.textContent = (status ? "The server answered with an error (" + status + ")" : "The server could not be reached") +
        ", so this page stopped checking on the task. It may still be running.";
      var retry = document.createElement("button");
      retry.type = "button";
      retry.className = "secondary small";
      retry.textContent = "Try again";
      retry.addEventListener("click", function () {
        retry.disabled = true;
        document.querySelectorAll(".strip-item[data-stopped-url]").forEach(resumePolling);
        htmx.ajax("GET", url, { target: "#task-status", swap: "outerHTML" }).finally(function () { retry.disabled = false; });
      });
      alert.append(text, retry);
      stopped.prepend(alert);
    }
    elt.replaceWith(stopped);  // a polling element that leaves the page stops polling
    htmx.process(stopped);
  }

  // An output that did not load (the file store or the database briefly down answers 503) is
  // asked for again every few seconds for a minute, rather than left broken until a reload: the
  // panel that shows a task's end polls no more.
  var MAX_IMAGE_RETRIES = 12;
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (!img.matches || !img.matches("img[src*='/files/']")) return;
    img.retries = (img.retries || 0) + 1;
    if (img.retries > MAX_IMAGE_RETRIES) return;
    setTimeout(function () {
      if (img.isConnected) img.src = img.getAttribute("src");
    }, 5000);
  }, true);  // an image's error does not bubble

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      var form = document.getElementById("run-form");
      if (form && form.contains(document.activeElement)) {
        event.preventDefault();
        form.requestSubmit();
      }
    }
  });

  // The status panel of a running task: its elapsed time ticks on here between polls, and a poll
  // that finds the task unchanged leaves the panel alone. Such a poll is answered 304; the browser
  // then gives htmx its cached copy of the panel, whose ETag is the one the panel already shows
  // (data-etag) and whose elapsed time is older than the one on screen.
  function formatDuration(seconds) {
    if (seconds < 60) return seconds.toFixed(1) + " s";
    return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
  }

  function startClocks(root) {
    root.querySelectorAll("[data-elapsed]").forEach(function (clock) {
      clock.elapsedFrom = Date.now() - parseFloat(clock.dataset.elapsed) * 1000;
    });
  }

  function tickClocks() {
    document.querySelectorAll("[data-elapsed]").forEach(function (clock) {
      if (clock.elapsedFrom === undefined) return;
      clock.textContent = formatDuration((Date.now() - clock.elapsedFrom) / 1000);
    });
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var etag = event.detail.xhr.getResponseHeader("ETag");
    var target = event.detail.target;
    if (etag && target && target.dataset.etag === etag) event.detail.shouldSwap = false;
  });

  if (window.htmx) {
    htmx.onLoad(init);
  } else {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  }
  setInterval(tickClocks, 1000);
})();
