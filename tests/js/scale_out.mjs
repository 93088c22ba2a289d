// Two server processes on one database: subscriptions held on server B see writes made through
// server A (websocket and HTTP), and the other way round. SERVER_URL is A; PAYLOAD:
// {"urlB": ..., "prefix": ...}.
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { payload, run, url, waitFor } from "./lib.mjs";

run(async () => {
  const { prefix } = payload;
  const onA = new ConvexClient(url);
  const onB = new ConvexClient(payload.urlB);
  const seen = { a: undefined, b: undefined };
  onA.onUpdate("testapp/clients:list_bodies", { prefix }, (v) => { seen.a = v; });
  onB.onUpdate("testapp/clients:list_bodies", { prefix }, (v) => { seen.b = v; });
  await waitFor(() => seen.a && seen.b, "first results on both servers");
  const out = { initial: { a: seen.a, b: seen.b } };
  const timed = async (what, body, write) => {
    const started = Date.now();
    const result = await write();
    const resolvedSeen = { a: [...seen.a], b: [...seen.b] };
    await waitFor(() => seen.a.includes(body) && seen.b.includes(body), `${what} on both`);
    out[what] = { result, resolvedSeen, ms: Date.now() - started };
  };
  await timed("wsOnA", `${prefix}ws-a`,
              () => onA.mutation("testapp:add_note", { body: `${prefix}ws-a` }));
  const http = new ConvexHttpClient(url);
  await timed("httpOnA", `${prefix}http-a`,
              () => http.mutation("testapp:add_note", { body: `${prefix}http-a` }));
  await timed("wsOnB", `${prefix}ws-b`,
              () => onB.mutation("testapp:add_note", { body: `${prefix}ws-b` }));
  out.final = { a: seen.a, b: seen.b };
  await Promise.all([onA.close(), onB.close()]);
  return out;
});
