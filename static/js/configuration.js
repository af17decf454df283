// The configuration form (templates/o365/configuration_form.html): choosing KodoADSettings.json
// reads it here, in the browser, and fills the fields -- nothing is sent before SAVE, and the
// server still checks the file as if the fields were typed (o365/forms.py, o365/kodo_settings.py).
"use strict";

(() => {
  const MAX_BYTES = 256 * 1024; // o365.kodo_settings.MAX_SETTINGS_BYTES
  // KodoADSettings.json key -> form field
  const FIELDS = [
    ["TenantId", "tenant_id"],
    ["ClientId", "client_id"],
    ["ClientSecret", "client_secret"],
    ["CertificatePassword", "certificate_password"],
    ["CertificatePfxBase64", "certificate_base64"],
  ];
  const TEXT_KEYS = [
    "AppName", "TenantId", "ClientId", "ClientSecret", "CertificatePassword",
    "CertificatePfxBase64", "CertificateThumbprint", "CertificateNotAfter", "Cloud",
    "AuthorityHost", "GraphBaseUrl", "CaCertificatePem",
  ];

  class SettingsError extends Error {}

  const labelOf = (form, name) => {
    const input = form.elements[name];
    const label = input && input.id ? form.querySelector(`label[for="${input.id}"]`) : null;
    return label ? label.textContent.trim() : name;
  };

  const normalized = (text) => String(text || "").replace(/\s+/g, " ").trim().toLowerCase();

  const parse = (text) => {
    let data;
    try {
      data = JSON.parse(text.replace(/^\uFEFF/, ""));
    } catch (error) {
      throw new SettingsError(
        `KodoADSettings.json is not valid JSON (${error.message}). Choose the file ` +
        "Register-KodoApp.ps1 wrote, or fill the fields by hand.");
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      throw new SettingsError("KodoADSettings.json must hold one JSON object {...}.");
    }
    const missing = ["TenantId", "ClientId"].filter((key) => !data[key]);
    if (missing.length) {
      throw new SettingsError(
        `KodoADSettings.json lacks ${missing.join(", ")}. Run Register-KodoApp.ps1 again, ` +
        "or fill the fields by hand.");
    }
    const notText = TEXT_KEYS.filter(
      (key) => key in data && data[key] !== null && typeof data[key] !== "string");
    if (notText.length) {
      throw new SettingsError(
        `In KodoADSettings.json, ${notText.join(", ")} must be text in quotes.`);
    }
    if (!data.ClientSecret && !data.CertificatePfxBase64) {
      throw new SettingsError(
        "KodoADSettings.json holds neither a ClientSecret nor a CertificatePfxBase64.");
    }
    return data;
  };

  // The option of the cloud select the file's `Cloud` names: "" for Custom (the form's choice
  // stays), an <option>, or a SettingsError.
  const cloudOption = (select, named) => {
    const jsonNames = JSON.parse(select.dataset.jsonNames || "{}");
    const wanted = normalized(named);
    const key = jsonNames[wanted.replace(/ /g, "")];
    if (key === "") return "";
    const options = Array.from(select.options);
    const option = key
      ? options.find((o) => o.value === key)
      : options.find((o) => normalized(o.textContent) === wanted);
    if (!option) {
      throw new SettingsError(
        `KodoADSettings.json is for the cloud "${named}", which is not enabled for your ` +
        "organization. Ask the server administrator to enable it.");
    }
    return option;
  };

  // Fill the fields from the file (the name only when empty); returns the note saying what was
  // filled. A cloud the organization cannot use fails before anything is filled.
  const fill = (form, data) => {
    const select = form.elements.cloud;
    const option = select && data.Cloud ? cloudOption(select, data.Cloud) : "";
    const filled = [];
    const set = (name, value) => {
      const input = form.elements[name];
      if (!input || !value) return;
      input.value = value;
      filled.push(labelOf(form, name));
    };
    if (form.elements.name && !form.elements.name.value.trim()) set("name", data.AppName);
    FIELDS.forEach(([key, name]) => set(name, data[key]));
    let cloudNote = "";
    if (option) {
      select.value = option.value;
      filled.push(`${labelOf(form, "cloud")} (${option.textContent.trim()})`);
    } else if (select && data.Cloud && select.selectedIndex >= 0) {
      cloudNote = ` The Cloud stays ${select.options[select.selectedIndex].textContent.trim()}` +
        " (the file says Custom: the cloud chosen here).";
    }
    return `Filled from KodoADSettings.json: ${filled.join(", ")}.${cloudNote} ` +
      "Check them, then SAVE; nothing has been sent yet.";
  };

  const show = (input, text, isError) => {
    const field = input.closest(".field") || input.parentElement;
    field.querySelectorAll("[data-settings-message]").forEach((old) => old.remove());
    if (!text) return;
    const message = document.createElement("p");
    message.dataset.settingsMessage = "";
    message.className = isError ? "error" : "note";
    message.setAttribute("role", isError ? "alert" : "status");
    message.textContent = text;
    field.appendChild(message);
    field.classList.toggle("invalid", isError);
  };

  const read = (input) => {
    const file = input.files && input.files[0];
    if (!file) {
      show(input, "", false);
      return;
    }
    if (file.size > MAX_BYTES) {
      show(input, "KodoADSettings.json is larger than 256 KB; the script writes about 5 KB. " +
        "Is it the right file?", true);
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      try {
        show(input, fill(input.form, parse(String(reader.result))), false);
      } catch (error) {
        if (!(error instanceof SettingsError)) throw error;
        show(input, error.message, true);
      }
    };
    reader.onerror = () => show(input, "The file could not be read. Choose it again.", true);
    reader.readAsText(file); // UTF-8, or UTF-16 with its byte order mark (PowerShell 5.1)
  };

  // Loaded with defer: the form is parsed by now. A file already chosen (the browser restoring
  // the form on Back) is read at once.
  document.querySelectorAll("input[type=file][data-kodo-settings]").forEach((input) => {
    input.addEventListener("change", () => read(input));
    if (input.files && input.files.length) read(input);
  });
})();
