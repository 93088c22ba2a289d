// The composer: send a message (optionally expiring), attach an image with Convex's upload
// flow (generate_upload_url -> POST the bytes -> send_image with the storageId), summarize.

import { $ } from "./ui.js";

const MAX_IMAGE_BYTES = 5 * 1024 * 1024;  // REACTIVE["STORAGE_MAX_UPLOAD_BYTES"] in settings

export function composerSection(app) {
  const form = $("#composer");
  const { body, expires_in: expiresIn, image } = form.elements;
  const send = form.querySelector("button[type=submit]");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = body.value;
    if (!text.trim()) {
      app.notice.show("Write something first.");
      body.focus();
      return;
    }
    const args = { channel: app.channel, body: text };
    if (expiresIn.value) args.expires_in = Number(expiresIn.value);
    busy(true);
    const result = await app.run("mutation", "chat:send", args);
    busy(false);
    if (result.ok && body.value === text) body.value = "";  // kept when it was not sent
    body.focus();
  });

  image.addEventListener("change", async () => {
    const file = image.files[0];
    image.value = "";
    if (!file) return;
    if (!file.type.startsWith("image/")) return app.notice.show("Only images can be attached.");
    if (file.size > MAX_IMAGE_BYTES) return app.notice.show("Images can be 5 MB at most.");
    busy(true, "Uploading…");
    try {
      await attach(file);
    } finally {
      busy(false);
    }
  });

  async function attach(file) {
    const issued = await app.run("mutation", "chat:generate_upload_url");
    if (!issued.ok) return;
    let answer;
    try {
      const response = await fetch(issued.value, {
        method: "POST", headers: { "Content-Type": file.type }, body: file,
      });
      answer = await response.json();
      if (!response.ok) throw new Error(answer.message || `upload refused (${response.status})`);
    } catch (err) {
      return app.notice.show(`The upload failed: ${err.message}`);
    }
    const caption = body.value;
    const sent = await app.run("mutation", "chat:send_image",
                               { channel: app.channel, storage_id: answer.storageId,
                                 body: caption });
    if (sent.ok && body.value === caption) body.value = "";
  }

  function busy(on, label = "Sending…") {
    send.disabled = on;
    send.textContent = on ? label : "Send";
  }

  body.addEventListener("input", () => app.notice.clear());
  $("#summarize").addEventListener("click", () =>
    app.run("action", "chat:summarize", { channel: app.channel }));
  app.connection.onChange((state) => {
    form.classList.toggle("offline", state !== "live");
    send.title = state === "live" ? "" : "Offline: messages cannot be sent until it reconnects";
  });
}
