// The open channel's messages: a live, paginated query; scrolling up loads older pages.
// Each message shows its author's initials, the time, the text and an attached image.

import { $, avatar, el, timestamp } from "./ui.js";

const PAGE = 25;

export function messagesSection(app) {
  const box = $("#messages");
  let unsubscribe = null;
  let loadMore = null;
  let scrolledUp = false;

  app.onChannel((name) => {
    if (unsubscribe) unsubscribe();
    loadMore = null;
    box.replaceChildren(note("loading…"));
    $("#channel-title").textContent = "#" + name;
    $("#composer").elements.body.placeholder = "Message #" + name;
    unsubscribe = app.client.onPaginatedUpdate_experimental(
      "chat:history", { channel: name }, { initialNumItems: PAGE }, render, app.notice.show);
    markRead();
  });

  function render(result) {
    loadMore = result.status === "CanLoadMore" ? result.loadMore : null;
    const atBottom = nearBottom();
    const previousHeight = box.scrollHeight;
    const items = [...result.results].reverse();  // the query is newest first
    box.replaceChildren(...items.map(renderMessage));
    if (result.status === "LoadingMore") box.prepend(note("loading older messages…"));
    if (result.status === "Exhausted") {
      box.prepend(note(items.length ? `beginning of #${app.channel}`
                                    : `#${app.channel} is empty: say hello`));
    }
    if (scrolledUp) {
      box.scrollTop = box.scrollHeight - previousHeight;  // keep the reader's place
      scrolledUp = false;
    } else if (atBottom || box.scrollTop === 0) {
      box.scrollTop = box.scrollHeight;
    }
    markRead();
  }

  function renderMessage(message) {
    const name = message.author_name || "someone";
    const mine = name === app.user;
    const meta = el("div", { className: "meta" },
      el("b", { className: "author", textContent: name }),
      timestamp(message._creationTime),
      message.edited_at ? el("small", { textContent: "(edited)" }) : null,
      message.expires_at ? el("small", { className: "expiring", textContent: "disappears soon" })
                         : null,
      mine ? actions(message) : null);
    const content = el("div", { className: "content" }, meta,
      message.body ? el("p", { className: "body", textContent: message.body }) : null,
      message.image_url ? image(message.image_url, name) : null);
    return el("article", { className: "message" + (mine ? " mine" : ""),
                           dataset: { id: message._id } }, avatar(name), content);
  }

  function image(url, author) {
    const img = el("img", { src: url, alt: `Image from ${author}`, className: "attachment",
                            decoding: "async" });
    // The image's height is known only once it loads: stay at the bottom if we were there.
    img.addEventListener("load", () => {
      if (box.scrollHeight - box.scrollTop - box.clientHeight < img.clientHeight + 80) {
        box.scrollTop = box.scrollHeight;
      }
    });
    return el("a", { href: url, target: "_blank", rel: "noopener", className: "attachment-link" },
              img);
  }

  function actions(message) {
    return el("span", { className: "actions" },
      el("button", { type: "button", className: "link", textContent: "edit",
                     onclick: () => {
                       const text = prompt("Edit message", message.body);
                       if (text !== null) app.run("mutation", "chat:edit",
                                                  { id: message._id, body: text });
                     } }),
      el("button", { type: "button", className: "link", textContent: "delete",
                     onclick: () => app.run("mutation", "chat:remove", { id: message._id }) }));
  }

  const nearBottom = () => box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const note = (text) => el("p", { className: "note", textContent: text });

  let markTimer = null;
  function markRead() {
    clearTimeout(markTimer);
    markTimer = setTimeout(() => {
      if (document.visibilityState === "visible" && app.connection.online && app.channel) {
        app.client.mutation("chat:mark_read", { channel: app.channel }).catch(() => {});
      }
    }, 300);
  }

  box.addEventListener("scroll", () => {
    if (box.scrollTop < 30 && loadMore) {
      scrolledUp = true;
      loadMore(PAGE);
    }
  });
  document.addEventListener("visibilitychange", markRead);
  app.connection.onChange((state) => { if (state === "live") markRead(); });
}
