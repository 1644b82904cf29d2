// The custom command's Preview panel: the reply rendered with sample values as it is typed.
// The panel and its endpoint come from commands/admin_commands.py; the endpoint renders with the
// bot's own renderer and answers {"text": …} or {"error": …} (what a save would say).
"use strict";
// Loaded in the page's head with the admin's media: wait for the form.
document.addEventListener("DOMContentLoaded", function () {
  const panel = document.getElementById("command-preview");
  const input = document.getElementById("id_template");
  if (!panel || !input) {
    return; // a read-only view: the panel shows the saved reply, rendered on the server
  }
  const text = panel.querySelector(".command-preview-text");
  const error = panel.querySelector(".command-preview-error");
  const hint = panel.querySelector(".command-preview-hint");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
  const guild = document.getElementById("id_guild_id");
  let timer = null;
  let asked = 0;

  function show(rendered, problem) {
    text.hidden = rendered === null;
    text.textContent = rendered === null ? "" : rendered;
    error.hidden = !problem;
    error.textContent = problem || "";
    hint.hidden = input.value !== "";
  }

  async function refresh() {
    const mine = ++asked;
    const body = new URLSearchParams({ template: input.value, guild_id: guild ? guild.value : panel.dataset.guild || "" });
    try {
      const response = await fetch(panel.dataset.url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf ? csrf.value : "" },
      });
      if (mine !== asked) {
        return; // a later keystroke's answer is on its way
      }
      if (response.status === 403) {
        show(null, "You may not preview commands.");
      } else if (!response.ok && response.status !== 400) {
        show(null, "The preview is unavailable right now (" + response.status + ").");
      } else {
        const answer = await response.json();
        show(answer.text, answer.error);
      }
    } catch (e) {
      if (mine === asked) {
        show(null, "The preview is unavailable: the server could not be reached.");
      }
    }
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    if (input.value === "") {
      show(null, null);
      return;
    }
    timer = setTimeout(refresh, 200);
  });
});
