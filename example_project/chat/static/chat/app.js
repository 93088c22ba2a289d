// The chat page: every list on it is a live query through the official Convex browser client.
// This module builds the shared `app` context; each section of the page lives in its own module
// and gets that context (add a section: write a module, call it below).

import { channelsSection } from "./channels.js";
import { composerSection } from "./composer.js";
import { watchConnection } from "./connection.js";
import { messagesSection } from "./messages.js";
import { notesSection } from "./notes.js";
import { searchSection } from "./search.js";
import { CHANNEL_NAME, fillAvatars, notice } from "./ui.js";

const OFFLINE = "You are offline, so nothing was sent. The page reconnects by itself: " +
                "try again when the indicator says live.";

const client = new convex.ConvexClient(window.location.origin);
const connection = watchConnection(client);
const channelListeners = [];

const app = {
  client,
  connection,
  notice,
  user: window.CHAT.user,
  channel: null,

  // A call the user asked for: clears the last error, refuses while offline (the client would
  // otherwise queue it silently until the server is back), shows what went wrong.
  async run(kind, name, args = {}) {
    notice.clear();
    if (!connection.online) {
      notice.show(OFFLINE);
      return { ok: false };
    }
    try {
      return { ok: true, value: await client[kind](name, args) };
    } catch (err) {
      notice.show(err);
      return { ok: false, error: err };
    }
  },

  // Sections call onChannel(fn) to follow the open channel; fn(name) runs on every switch.
  onChannel(listener) {
    channelListeners.push(listener);
  },
};

function openFromHash() {
  const name = decodeURIComponent(location.hash.slice(1)) || "general";
  if (!CHANNEL_NAME.test(name)) {
    notice.show(`“${name}” is not a channel name: lowercase letters, digits, - and _.`);
    history.replaceState(null, "", "#" + (app.channel || "general"));
    if (app.channel) return;
    return openChannel("general");
  }
  notice.clear();
  return openChannel(name);
}

function openChannel(name) {
  if (name === app.channel) return;
  app.channel = name;
  for (const listener of channelListeners) listener(name);
}

fillAvatars();
channelsSection(app);
messagesSection(app);
composerSection(app);
searchSection(app);
notesSection(app);
window.addEventListener("hashchange", openFromHash);
openFromHash();
