// Live search and "similar messages" for the open channel. Results follow new and edited
// messages as they arrive (chat:search and chat:similar are live queries with precise re-runs:
// only writes that match re-run them).

import { $, el } from "./ui.js";

export function searchSection(app) {
  const panel = $("[data-section=search]");
  const input = $("[data-testid=search-input]", panel);
  const results = $("[data-testid=search-results]", panel);
  const heading = $("h3", panel);
  const similar = $("[data-testid=similar-results]", panel);
  let stopSearch = null;
  let stopSimilar = null;

  function item(message, withSimilar) {
    return el("li", {}, el("b", { textContent: message.author_name + ": " }), message.body, " ",
      withSimilar ? el("button", { type: "button", className: "link", textContent: "similar",
                                   onclick: () => showSimilar(message._id) })
                  : null);
  }

  function search() {
    if (stopSearch) stopSearch();
    stopSearch = null;
    const text = input.value.trim();
    if (!text || !app.channel) return results.replaceChildren();
    stopSearch = app.client.onUpdate("chat:search", { channel: app.channel, text },
      (hits) => results.replaceChildren(...hits.map((m) => item(m, true))), app.notice.show);
  }

  function showSimilar(id) {
    if (stopSimilar) stopSimilar();
    heading.hidden = false;
    stopSimilar = app.client.onUpdate("chat:similar", { id, k: 5 },
      (hits) => similar.replaceChildren(...hits.map((m) => item(m, false))), app.notice.show);
  }

  function clearSimilar() {
    if (stopSimilar) stopSimilar();
    stopSimilar = null;
    heading.hidden = true;
    similar.replaceChildren();
  }

  input.addEventListener("input", search);
  app.onChannel(() => { clearSimilar(); search(); });
  $("#search-toggle").addEventListener("click", () => {
    document.body.classList.toggle("searching");
    if (document.body.classList.contains("searching")) input.focus();
  });
}
