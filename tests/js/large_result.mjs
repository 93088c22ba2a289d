// An 8 MiB live result through the npm client, next to a result over the server's limit and a
// small query. Counts the TransitionChunk frames that arrived. PAYLOAD: {"prefix", "size",
// "tooBig"}; prints the results' lengths and SHA-256s after a note write updates them.
import { createHash } from "node:crypto";
import WebSocket from "ws";
import { ConvexClient } from "convex/browser";
import { describeError, payload, run, url, waitFor } from "./lib.mjs";

let chunks = 0;
class Counting extends WebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => {
      if (String(event.data).startsWith('{"type":"TransitionChunk"')) chunks += 1;
    });
  }
}

const digest = (text) => createHash("sha256").update(text).digest("hex");
const summary = (v) => ({ bodies: v.bodies, length: v.blob.length, sha256: digest(v.blob) });

run(async () => {
  const { prefix, size, tooBig } = payload;
  const client = new ConvexClient(url, { webSocketConstructor: Counting });
  const seen = { big: undefined, small: undefined, error: undefined, bigUpdates: 0 };
  client.onUpdate("testapp/clients:sized", { size, prefix }, (v) => {
    seen.big = v; seen.bigUpdates += 1;
  });
  client.onUpdate("testapp/clients:list_bodies", { prefix }, (v) => { seen.small = v; });
  client.onUpdate("testapp/clients:sized", { size: tooBig, prefix }, () => {},
                  (err) => { seen.error = describeError(err); });
  await waitFor(() => seen.big && seen.small && seen.error, "first results", 40000);
  const out = { first: summary(seen.big), error: seen.error };
  await client.mutation("testapp:add_note", { body: `${prefix}after` });
  await waitFor(() => seen.big.bodies.length === 1 && seen.small.length === 1, "the update",
                40000);
  out.updated = summary(seen.big);
  out.small = seen.small;
  out.chunks = chunks;
  await client.close();
  return out;
}, 80000);
