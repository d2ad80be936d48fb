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
    // Close an open ⋮ menu when clicking elsewhere.
    document.querySelectorAll("details.menu[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  // Clicking the backdrop closes the modal.
  document.addEventListener("click", (event) => {
    if (event.target === modal()) modal().close();
  });
})();
