// Small progressive enhancements; every page works without JavaScript.

// Narrow screens: the "Menu" button (templates/base.html) folds the main menu away so the page,
// not the menu, fills the first screen. The stylesheet shows the button and hides the menu only
// under html.js, so without JavaScript the menu simply stays open.
document.documentElement.classList.add("js");
document.querySelectorAll(".menu-toggle[aria-controls]").forEach((button) => {
  button.setAttribute("aria-expanded", "false");
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", String(!open));
  });
});

document.addEventListener("DOMContentLoaded", () => {
  // Select the whole text of read-only copy fields on focus (invitation links).
  document.querySelectorAll("input.copy").forEach((input) => {
    input.addEventListener("focus", () => input.select());
  });
  // Ask before destructive actions: <form data-confirm="Delete ...?">. Delegated, so forms in
  // fragments replaced by live refresh ask too.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
  // "Select all in this folder" (browse pages): ticks or clears the rows of its form; clearing
  // a row clears it too, so the form never posts the whole folder after a row was left out.
  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!box.form) return;
    if (box.matches("[data-select-all]")) {
      box.form.querySelectorAll("[data-select-row]").forEach((row) => { row.checked = box.checked; });
    } else if (box.matches("[data-select-row]") && !box.checked) {
      box.form.querySelectorAll("[data-select-all]").forEach((all) => { all.checked = false; });
    }
  });
  // Live progress: an element with data-poll="<url>" is replaced by the URL's HTML every 2 s
  // until the response carries data-done.
  document.querySelectorAll("[data-poll]").forEach((element) => {
    const poll = async () => {
      const response = await fetch(element.dataset.poll, { headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) return;
      element.innerHTML = await response.text();
      if (!element.querySelector("[data-done]")) setTimeout(poll, 2000);
    };
    if (!element.querySelector("[data-done]")) setTimeout(poll, 2000);
  });
});
