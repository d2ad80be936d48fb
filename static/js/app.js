// Small behaviours on top of htmx; every page also works without this file.
(() => {
  const modal = () => document.getElementById("modal");

  // A fragment loaded into the modal opens it.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "modal-body") {
      if (!modal().open) modal().showModal();
      // A form sent back with errors: show the first one (the modal may be scrolled past it).
      const error = event.detail.target.querySelector(".error");
      if (error) error.scrollIntoView({ block: "center" });
    }
    document.querySelectorAll("details.menu[open]").forEach((d) => d.removeAttribute("open"));
  });

  document.addEventListener("click", (event) => {
    const close = event.target.closest("[data-close-modal]");
    if (close && modal().open) {
      event.preventDefault();
      modal().close();
      return;
    }
    const add = event.target.closest("[data-add-env]");
    if (add) {
      const rows = add.parentElement.querySelector(".env-rows");
      const row = rows.querySelector(".env-row").cloneNode(true);
      row.querySelectorAll("input").forEach((input) => (input.value = ""));
      rows.appendChild(row);
      row.querySelector("input").focus();
      return;
    }
    const remove = event.target.closest("[data-remove-env]");
    if (remove) {
      const row = remove.closest(".env-row");
      if (row.parentElement.children.length > 1) row.remove();
      else row.querySelectorAll("input").forEach((input) => (input.value = ""));
      return;
    }
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      copyText(copy.dataset.copy).then(
        () => flashButton(copy, "Copied"),
        () => flashButton(copy, "Press Ctrl+C")
      );
      return;
    }
    // Close an open ⋮ menu when clicking elsewhere.
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // Copy to the clipboard; the fallback covers pages served over plain http on another host.
  const copyText = (text) => {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  };
  const flashButton = (button, text) => {
    button.dataset.flash = text;
    setTimeout(() => delete button.dataset.flash, 1500);
  };

  // Durations of running jobs tick every second (the server sends the start time).
  const seconds = (s) => {
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 60) return `${Math.round(s)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  };
  setInterval(() => {
    document.querySelectorAll("[data-since]").forEach((el) => {
      const start = Date.parse(el.dataset.since);
      if (!Number.isNaN(start)) el.textContent = seconds(Math.max(0, (Date.now() - start) / 1000));
    });
  }, 1000);

  // Filter forms apply a choice as soon as it is made (the Filter button does the same).
  document.addEventListener("change", (event) => {
    const form = event.target.closest("form[data-autosubmit]");
    if (form && event.target.tagName === "SELECT") form.requestSubmit();
  });

  // Clicking the backdrop closes the modal.
  document.addEventListener("click", (event) => {
    if (event.target === modal()) modal().close();
  });

  // A polled part answered 304 comes back from the browser's cache as the same content: keep what
  // is on screen (a log's scroll position, a selection) instead of swapping it in again.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    const etag = event.detail.xhr && event.detail.xhr.getResponseHeader("ETag");
    if (!etag || !target || target.id !== "logs") return;
    if (target.dataset.etag === etag) event.detail.shouldSwap = false;
    else target.dataset.etag = etag;
  });

  // "Try on 100 rows": the server sends each step as it begins (<template data-try-step>), then the
  // panel; each step's seconds tick here meanwhile. Without this script the form posts as usual.
  document.addEventListener(
    "submit",
    (event) => {
      const button = event.submitter;
      if (!button || !button.hasAttribute("data-try-progress") || !window.fetch || !window.TextDecoder) return;
      event.preventDefault();
      event.stopPropagation(); // htmx would post it too
      tryWithProgress(event.target, button);
    },
    true
  );

  const STEP = /^\s*<template data-try-step="([^"]*)" data-at="([^"]*)">([^<]*)<\/template>\n?/;

  const tryWithProgress = async (form, button) => {
    const steps = form.querySelector("#try-progress");
    const buttons = form.querySelectorAll("button");
    const began = Date.now();
    buttons.forEach((b) => (b.disabled = true));
    steps.hidden = false;
    steps.replaceChildren();
    // The last check's or try's results are not this try's: they go while it runs.
    document.querySelectorAll("#predict-panel #check-ok, #predict-panel #trial").forEach((el) => el.remove());
    const showStep = (key, label) => {
      const last = steps.lastElementChild;
      if (last) {
        last.className = "done";
        const clock = last.querySelector("strong");
        clock.removeAttribute("data-since");
        clock.textContent = seconds((Date.now() - Number(last.dataset.began)) / 1000);
      }
      if (!key) return;
      const item = document.createElement("li");
      item.className = "current";
      item.dataset.step = key;
      item.dataset.began = String(Date.now());
      item.append(`${label}… `);
      const clock = document.createElement("strong");
      clock.dataset.since = new Date().toISOString();
      clock.textContent = seconds(0);
      item.append(clock);
      steps.append(item);
    };
    const body = new FormData(form);
    body.set("action", "try");
    let html = "";
    try {
      const response = await fetch(form.getAttribute("action"), { // form.action: its buttons named "action"
        method: "POST",
        body,
        headers: { "X-Try-Progress": "1", "HX-Request": "true" },
        credentials: "same-origin",
      });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let panel = false;
      for (;;) {
        const { done, value } = await reader.read();
        if (value) html += decoder.decode(value, { stream: true });
        let match;
        while (!panel && (match = STEP.exec(html))) {
          html = html.slice(match[0].length);
          const label = document.createElement("textarea"); // the label arrives escaped
          label.innerHTML = match[3];
          showStep(match[1], label.value);
        }
        if (!panel && html.trim() && !html.trimStart().startsWith("<template")) panel = true;
        if (done) break;
      }
      html += decoder.decode();
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      showStep(null);
      steps.insertAdjacentHTML("beforeend", '<li class="error-text"></li>');
      steps.lastElementChild.textContent = `The try could not finish: ${error.message}. Try again.`;
      buttons.forEach((b) => (b.disabled = false));
      return;
    }
    showStep(null);
    const done = document.createElement("li");
    done.className = "done";
    done.dataset.step = "done";
    done.textContent = `Done in ${seconds((Date.now() - began) / 1000)}`;
    steps.append(done);
    htmx.swap("#predict-panel", html, { swapStyle: "outerHTML" });
    const fresh = document.getElementById("try-progress"); // the new panel's: keep the steps shown
    if (fresh && fresh !== steps) {
      fresh.replaceChildren(...steps.children);
      fresh.hidden = false;
    }
  };
})();
