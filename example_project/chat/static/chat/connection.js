// The connection indicator: it follows the official client's own connectionState(), and the
// page asks it before sending, so nothing is queued silently while the server is away.

import { $ } from "./ui.js";

const LABELS = { live: "live", connecting: "connecting…", offline: "offline · reconnecting…" };

export function watchConnection(client) {
  let state = "connecting";
  const listeners = [];

  function update(connection) {
    const next = connection.isWebSocketConnected ? "live"
      : connection.hasEverConnected ? "offline" : "connecting";
    if (next === state && $("#status").dataset.state === next) return;
    state = next;
    const badge = $("#status");
    badge.dataset.state = state;
    badge.textContent = LABELS[state];
    badge.title = state === "live" ? "Connected: changes arrive as they happen"
      : `Not connected (${connection.connectionRetries} retries so far)`;
    document.body.classList.toggle("is-offline", state !== "live");
    for (const listener of listeners) listener(state);
  }

  update(client.connectionState());
  if (typeof client.subscribeToConnectionState === "function") {
    client.subscribeToConnectionState(update);
  } else {  // clients before subscribeToConnectionState: read the same state every second
    setInterval(() => update(client.connectionState()), 1000);
  }
  return {
    get online() { return state === "live"; },
    onChange(listener) { listeners.push(listener); },
  };
}
