// Live search and "similar messages", self-contained: its own panel, its own Convex client.
// Results follow new and edited messages as they arrive (chat:search and chat:similar are
// live queries with precise re-runs: only writes that match re-run them).
(function () {
  "use strict";
  const client = new convex.ConvexClient(window.location.origin);
  const channel = () => decodeURIComponent(location.hash.slice(1)) || "general";
  const panel = document.createElement("aside");
  panel.className = "search-panel";
  panel.dataset.testid = "search-panel";
  panel.innerHTML = '<input type="search" placeholder="Search this channel" ' +
    'data-testid="search-input" autocomplete="off"><ol data-testid="search-results"></ol>' +
    '<h4 hidden>Similar messages</h4><ol data-testid="similar-results"></ol>';
  (document.querySelector("main") || document.body).append(panel);
  const [input, results, heading, similar] =
    [panel.querySelector("input"), ...panel.querySelectorAll("ol, h4")].sort(
      (a, b) => (a.compareDocumentPosition(b) & 2) ? 1 : -1);
  let stopSearch = null;
  let stopSimilar = null;

  function item(message, withSimilar) {
    const li = document.createElement("li");
    li.textContent = `${message.author_name}: ${message.body} `;
    if (withSimilar) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "similar";
      button.addEventListener("click", () => showSimilar(message._id));
      li.append(button);
    }
    return li;
  }

  function search() {
    if (stopSearch) stopSearch();
    stopSearch = null;
    const text = input.value.trim();
    if (!text) { results.replaceChildren(); return; }
    stopSearch = client.onUpdate("chat:search", { channel: channel(), text },
      (hits) => results.replaceChildren(...hits.map((m) => item(m, true))),
      (err) => { results.textContent = String(err.message || err); });
  }

  function showSimilar(id) {
    if (stopSimilar) stopSimilar();
    heading.hidden = false;
    stopSimilar = client.onUpdate("chat:similar", { id, k: 5 },
      (hits) => similar.replaceChildren(...hits.map((m) => item(m, false))),
      (err) => { similar.textContent = String(err.message || err); });
  }

  input.addEventListener("input", search);
  window.addEventListener("hashchange", search);
})();
