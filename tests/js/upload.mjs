// Convex's upload flow with the official npm client, as a browser app does it:
// mutation(generate_upload_url) -> fetch(url, {method: "POST", body}) -> {storageId} ->
// mutation(attach) -> a live subscription to the list sees the file's URL -> fetch it.
// PAYLOAD: {"text": "...", "caption": "..."}
import { ConvexClient } from "convex/browser";
import { anyApi } from "convex/server";
import { emit, payload, url, waitFor } from "./lib.mjs";

const client = new ConvexClient(url);
let latest = null;
const stop = client.onUpdate(anyApi["testapp/files"].photos, {}, (rows) => { latest = rows; });

const uploadUrl = await client.mutation(anyApi["testapp/files"].generate_upload_url, {});
const blob = new Blob([payload.text], { type: "text/plain" });
const uploaded = await fetch(uploadUrl, {
  method: "POST", headers: { "Content-Type": blob.type }, body: blob,
});
const { storageId } = await uploaded.json();
await client.mutation(anyApi["testapp/files"].attach, { storage_id: storageId,
                                                         caption: payload.caption });
const row = await waitFor(
  () => latest && latest.find((r) => r.caption === payload.caption), "the attached photo",
);
const served = await fetch(row.url);
emit({
  uploadStatus: uploaded.status, storageId, uploadUrl, url: row.url,
  status: served.status, contentType: served.headers.get("content-type"),
  text: await served.text(),
});
stop();
await client.close();
