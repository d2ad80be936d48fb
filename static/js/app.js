// Small behaviours on top of htmx; every page also works without this file.
(() => {
  const modal = () => document.getElementById("modal");

  // A fragment loaded into the modal opens it.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "modal-body" && !modal().open) modal().showModal();
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
})();
