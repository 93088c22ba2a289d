// The channel list (with unread counts, both live queries) and the new-channel form.

import { $, CHANNEL_NAME, el } from "./ui.js";

export function channelsSection(app) {
  let rooms = [];
  let unread = {};

  app.client.onUpdate("chat:channels", {}, (list) => { rooms = list; render(); },
                      app.notice.show);
  app.client.onUpdate("chat:unread", {}, (counts) => { unread = counts; render(); },
                      app.notice.show);
  app.onChannel(render);

  function render() {
    $("#channels").replaceChildren(...rooms.map((room) => {
      const current = room.name === app.channel;
      const count = unread[room.name];
      return el("li", {},
        el("a", { href: "#" + room.name, className: current ? "current" : "",
                  ariaCurrent: current ? "page" : null },
           el("span", { className: "hash", textContent: "#" }), room.name,
           count && !current ? el("span", { className: "badge", textContent: count,
                                            dataset: { testid: "unread-" + room.name } })
                             : null));
    }));
    // On phones the list is a strip that scrolls sideways: keep the open channel in view.
    const current = $("#channels a.current");
    if (current) current.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  const form = $("#new-channel");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.elements.name;
    const name = input.value.trim();
    input.setAttribute("aria-invalid", "false");
    // The input's `pattern` and the same rule in JS (and on the server: chat:create_channel).
    if (!input.checkValidity() || !CHANNEL_NAME.test(name)) {
      input.setAttribute("aria-invalid", "true");
      app.notice.show("Channel names are lowercase letters, digits, - and _ (no spaces).");
      input.focus();
      return;
    }
    const result = await app.run("mutation", "chat:create_channel", { name });
    if (result.ok) {
      form.reset();
      location.hash = result.value;
    }
  });
  form.elements.name.addEventListener("input", (event) => {
    event.target.setAttribute("aria-invalid", "false");
  });
}
