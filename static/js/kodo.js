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
  // live parts of pages (refilled by htmx, kodo/live.py) ask too.
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
});

// Live parts of pages (kodo/live.py) are polled by htmx. A poll that was redirected (the session
// ended: the login page) takes the whole window there rather than nesting that page in the part.
document.addEventListener("htmx:beforeSwap", (event) => {
  const answered = event.detail.xhr.responseURL;
  if (!answered) return;
  const asked = new URL(event.detail.pathInfo.requestPath, window.location.href);
  if (new URL(answered).pathname !== asked.pathname) {
    event.detail.shouldSwap = false;
    window.location.assign(answered);
  }
});
// A poll answered 4xx (the job is gone, or no longer this person's to see) stops polling: htmx
// polls an element while it is in the page, so it is replaced by an inert copy. A 5xx or a lost
// connection (a restart) is tried again at the next poll.
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  const element = event.detail.elt;
  const polling = (element.getAttribute("hx-trigger") || "").startsWith("every ");
  if (status >= 400 && status < 500 && polling) {
    const inert = element.cloneNode(true);
    inert.removeAttribute("hx-get");
    inert.removeAttribute("hx-trigger");
    element.replaceWith(inert);
  }
});
