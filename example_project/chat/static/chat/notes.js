// Team notes, written schema-free (ctx.db in notes/functions.py): add a note with tags, pin or
// unpin it, delete it. "Pinned" is a live query filtered on pinned=True, newest first: pinning
// a note in one browser moves it there in every other. On phones the panel is a row the Notes
// button opens and closes, like search.

import { $, el, timestamp } from "./ui.js";

// The rules of notes.functions (TAG, MAX_TAGS), checked here too so a slip is caught before
// anything is sent; the server refuses any other client with the same messages.
const TAG = /^[a-z0-9][a-z0-9-]{0,23}$/;
const MAX_TAGS = 5;
const BAD_TAGS = "Up to 5 tags: lowercase letters, digits and -, 24 characters each.";

const PINNED_EMPTY = "Nothing pinned yet: pin a note below.";
const RECENT_EMPTY = "No notes yet. Write the first one.";

export function notesSection(app) {
  const panel = $("[data-section=notes]");
  const form = $("#new-note", panel);
  const pinned = $("[data-testid=pinned-notes]", panel);
  const recent = $("[data-testid=recent-notes]", panel);

  function action(label, onclick) {
    return el("button", { type: "button", className: "link", textContent: label, onclick });
  }

  function card(note) {
    const tags = note.tags || [];
    return el("li", { className: "note-card" + (note.pinned ? " pinned" : ""),
                      dataset: { id: note._id } },
      el("p", { className: "note-body", textContent: note.body }),
      tags.length ? el("span", { className: "tags" },
                       ...tags.map((tag) => el("span", { className: "tag", textContent: tag })))
                  : null,
      el("span", { className: "note-meta" },
         note.author || "", " ", timestamp(note._creationTime),
         el("span", { className: "note-actions" },
            action(note.pinned ? "unpin" : "pin", () => app.run(
              "mutation", "notes:pin", { id: note._id, pinned: !note.pinned })),
            action("delete", () => app.run("mutation", "notes:delete", { id: note._id })))));
  }

  function show(list, empty) {
    return (notes) => list.replaceChildren(...(notes.length ? notes.map(card)
      : [el("li", { className: "notes-empty", textContent: empty })]));
  }

  app.client.onUpdate("notes:pinned", {}, show(pinned, PINNED_EMPTY), app.notice.show);
  app.client.onUpdate("notes:recent", { limit: 5 }, show(recent, RECENT_EMPTY), app.notice.show);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = form.elements.body.value;
    const tags = [...new Set(form.elements.tags.value.split(",")
      .map((tag) => tag.trim().replace(/^#/, "").toLowerCase()).filter(Boolean))];
    if (!body.trim()) return app.notice.show("Write the note first.");
    if (tags.length > MAX_TAGS || !tags.every((tag) => TAG.test(tag))) {
      return app.notice.show(BAD_TAGS);
    }
    const result = await app.run("mutation", "notes:add", { body, tags });
    if (result.ok) form.reset();
  });

  $("#notes-toggle").addEventListener("click", () => {
    document.body.classList.remove("searching");
    document.body.classList.toggle("noting");
  });
  $("#search-toggle").addEventListener("click", () => document.body.classList.remove("noting"));
}
