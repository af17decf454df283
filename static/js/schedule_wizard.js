// The + ADD SCHEDULE wizard (templates/schedules/wizard.html). Everything here is an
// enhancement: without JavaScript every option is shown and Search / Preview runs reload the
// step. The users search and the next runs themselves are htmx requests (hx-get in the page).
(() => {
  const form = document.querySelector("form[data-schedule-wizard]");
  if (!form) return;

  // Show an option only for the choice it applies to: data-shown-if="frequency=weekly".
  const valueOf = (name) => {
    const checked = form.querySelector(`input[type=radio][name="${name}"]:checked`);
    if (checked) return checked.value;
    const element = form.querySelector(`select[name="${name}"], input[type=hidden][name="${name}"]`);
    return element ? element.value : "";
  };
  const reveal = () => {
    form.querySelectorAll("[data-shown-if]").forEach((element) => {
      const [name, wanted] = element.dataset.shownIf.split("=");
      element.hidden = valueOf(name) !== wanted;
    });
  };

  // Chosen users: ticking a user found adds them to the chosen list; unticking removes them.
  const chosen = document.getElementById("chosen-users");
  const noneYet = document.getElementById("chosen-none");
  const boxesFor = (value) =>
    form.querySelectorAll(`input[type=checkbox][name="users"][value="${CSS.escape(value)}"]`);
  const choose = (box) => {
    boxesFor(box.value).forEach((other) => { other.checked = box.checked; });
    const listed = chosen.querySelector(`input[value="${CSS.escape(box.value)}"]`);
    if (box.checked && !listed) {
      const item = box.closest("li").cloneNode(true);
      item.querySelector("input").removeAttribute("data-pick");
      chosen.appendChild(item);
    } else if (!box.checked && listed) {
      listed.closest("li").remove();
    }
    noneYet.hidden = chosen.children.length > 0;
  };
  const markFound = () => {
    form.querySelectorAll("input[data-pick]").forEach((box) => {
      box.checked = chosen.querySelector(`input[value="${CSS.escape(box.value)}"]`) !== null;
    });
  };

  form.addEventListener("change", (event) => {
    if (chosen && event.target.matches("input[type=checkbox][name=users]")) choose(event.target);
    // Another configuration: search its users instead.
    const search = form.querySelector("input[name=user_q]");
    if (search && window.htmx && event.target.matches("select[name=configuration]")) {
      window.htmx.trigger(search, "search");
    }
    reveal();
  });
  // A time zone suggested by the next runs (the server's search of the zones) fills the field.
  form.addEventListener("click", (event) => {
    const suggestion = event.target.closest("button[data-time-zone]");
    const field = form.querySelector("input[name=time_zone]");
    if (!suggestion || !field) return;
    field.value = suggestion.dataset.timeZone;
    field.dispatchEvent(new Event("change", { bubbles: true }));
    field.focus();
  });
  // Enter in a search box searches (htmx listens to "search"); it does not move to the next step.
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches("input[type=search]") && window.htmx) {
      event.preventDefault();
      window.htmx.trigger(event.target, "search");
    }
  });
  document.body.addEventListener("htmx:afterSwap", () => { if (chosen) markFound(); });
  reveal();
})();
