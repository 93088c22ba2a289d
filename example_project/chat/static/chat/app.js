// The chat page: every list on it is a live query through the official Convex browser client.
(function () {
  "use strict";
  const client = new convex.ConvexClient(window.location.origin);
  const $ = (selector) => document.querySelector(selector);
  const state = { channel: decodeURIComponent(location.hash.slice(1)) || "general", unread: {},
                  pages: null, unsubscribe: null, loadMore: null, scrolledUp: false };

  function showError(err) {
    const data = err && err.data;
    $("#error").textContent = (data && (data.message || data.code)) || String(err.message || err);
  }
  const clearError = () => { $("#error").textContent = ""; };

  // Channels and unread counts.
  client.onUpdate("chat:channels", {}, renderChannels, showError);
  client.onUpdate("chat:unread", {}, (counts) => { state.unread = counts; renderChannels(); },
                  showError);
  let channelList = [];
  function renderChannels(list) {
    if (list) channelList = list;
    const ul = $("#channels");
    ul.replaceChildren(...channelList.map((room) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "#" + room.name;
      a.textContent = "#" + room.name;
      if (room.name === state.channel) a.className = "current";
      li.append(a);
      const count = state.unread[room.name];
      if (count && room.name !== state.channel) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.dataset.testid = "unread-" + room.name;
        badge.textContent = count;
        li.append(badge);
      }
      return li;
    }));
  }

  // Messages of the current channel: a live, paginated query; scrolling up loads older pages.
  function openChannel(name) {
    state.channel = name;
    if (state.unsubscribe) state.unsubscribe();
    $("#messages").replaceChildren();
    state.unsubscribe = client.onPaginatedUpdate_experimental(
      "chat:history", { channel: name }, { initialNumItems: 25 }, renderMessages, showError);
    renderChannels();
    markRead();
  }

  function renderMessages(result) {
    state.loadMore = result.status === "CanLoadMore" ? result.loadMore : null;
    const box = $("#messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const previousHeight = box.scrollHeight;
    const items = [...result.results].reverse();  // the query is newest first
    box.replaceChildren(...items.map(renderMessage));
    if (result.status === "LoadingMore") box.prepend(note("loading older messages…"));
    if (result.status === "Exhausted") box.prepend(note("beginning of #" + state.channel));
    if (state.scrolledUp) {
      box.scrollTop = box.scrollHeight - previousHeight;  // keep the reader's place
      state.scrolledUp = false;
    } else if (atBottom || box.scrollTop === 0) {
      box.scrollTop = box.scrollHeight;
    }
    $("#status").textContent = "live";
    markRead();
  }

  function note(text) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = text;
    return p;
  }

  function renderMessage(message) {
    const row = document.createElement("div");
    row.className = "message";
    row.dataset.id = message._id;
    const who = document.createElement("b");
    who.textContent = message.author_name || "someone";
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = message.body;
    row.append(who, " ", body);
    if (message.edited_at) row.append(" ", small("(edited)"));
    if (message.expires_at) row.append(" ", small("⏳ disappears soon"));
    if (message.author_name === window.CHAT.user) {
      row.append(button("edit", () => {
        const text = prompt("Edit message", message.body);
        if (text !== null) run("mutation", "chat:edit", { id: message._id, body: text });
      }), button("delete", () => run("mutation", "chat:remove", { id: message._id })));
    }
    return row;
  }

  function small(text) {
    const el = document.createElement("small");
    el.textContent = text;
    return el;
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  async function run(kind, name, args) {
    clearError();
    try {
      return await client[kind](name, args);
    } catch (err) {
      showError(err);
      return undefined;
    }
  }

  let markTimer = null;
  function markRead() {
    clearTimeout(markTimer);
    markTimer = setTimeout(() => {
      if (document.visibilityState === "visible") {
        client.mutation("chat:mark_read", { channel: state.channel }).catch(() => {});
      }
    }, 300);
  }

  $("#messages").addEventListener("scroll", () => {
    if ($("#messages").scrollTop < 30 && state.loadMore) {
      state.scrolledUp = true;
      state.loadMore(25);
    }
  });
  $("#composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const args = { channel: state.channel, body: form.body.value };
    if (form.expires_in.value) args.expires_in = Number(form.expires_in.value);
    form.body.value = "";
    await run("mutation", "chat:send", args);
  });
  $("#summarize").addEventListener("click", () => run("action", "chat:summarize",
                                                      { channel: state.channel }));
  $("#new-channel").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = event.target.name.value;
    event.target.reset();
  });
  window.addEventListener("hashchange", () => openChannel(decodeURIComponent(location.hash.slice(1))));
  document.addEventListener("visibilitychange", markRead);
  openChannel(state.channel);
})();
