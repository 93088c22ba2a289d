// Small DOM helpers shared by the page's sections: elements, avatars, times, the error line.

// The rule of chat.functions.CHANNEL_NAME (and of the new-channel input's `pattern`).
export const CHANNEL_NAME = /^[a-z0-9_-]{1,50}$/;

export const $ = (selector, root = document) => root.querySelector(selector);

// el("div", {className: "x", dataset: {id: 1}, onclick: fn}, child, "text", ...)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node[key] = value;
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// "grace" -> "GR", "summary-bot" -> "SB", "Ada Lovelace" -> "AL".
export function initials(name) {
  const parts = String(name || "?").split(/[\s._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

// A stable hue per name, so each author keeps their colour.
export function hue(name) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function avatar(name, className = "avatar") {
  const node = el("span", { className, textContent: initials(name), title: name,
                            ariaHidden: "true" });
  node.style.setProperty("--hue", hue(name));
  return node;
}

// Fills every <span class="avatar" data-name="..."> the server rendered.
export function fillAvatars(root = document) {
  for (const node of root.querySelectorAll(".avatar[data-name]")) {
    node.textContent = initials(node.dataset.name);
    node.style.setProperty("--hue", hue(node.dataset.name));
  }
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

// A <time> element: "14:05" today, "Mar 3, 14:05" before; the full date on hover.
export function timestamp(ms) {
  if (typeof ms !== "number") return null;
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  const text = today ? timeFormat.format(date)
                     : `${dayFormat.format(date)}, ${timeFormat.format(date)}`;
  return el("time", { className: "time", dateTime: date.toISOString(), textContent: text,
                      title: fullFormat.format(date) });
}

// The one error line under the messages. The user's next action clears it (notice.clear()),
// and so does time: it never outlives its cause by long.
const ERROR_SECONDS = 12;
let errorTimer = null;
export const notice = {
  show(err) {
    const data = err && err.data;
    const text = (data && (data.message || data.code)) || String((err && err.message) || err);
    const box = $("#error");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => notice.clear(), ERROR_SECONDS * 1000);
  },
  clear() {
    clearTimeout(errorTimer);
    const box = $("#error");
    box.textContent = "";
    box.hidden = true;
  },
};
