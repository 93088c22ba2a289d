// One npm ConvexClient held across server kills and restarts, driven step by step by the test.
// Events go to stdout as JSON lines ({"event": ...}); commands arrive on stdin, one per line.
// PAYLOAD: {"prefix": "r:", "seconds": <slow_add_note sleep>, "slowSeconds": <slow_count sleep>}.
import readline from "node:readline";
import { ConvexClient } from "convex/browser";
import { emit, payload, run, url, waitFor } from "./lib.mjs";

const commands = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expect(command) {
  const { value, done } = await commands.next();
  if (done || value.trim() !== command) throw new Error(`expected command ${command}, got ${value}`);
}

run(async () => {
  const { prefix } = payload;
  const client = new ConvexClient(url);
  let bodies;
  let paginated;
  let slowCount;
  client.onUpdate("testapp/clients:list_bodies", { prefix }, (v) => { bodies = v; });
  client.onPaginatedUpdate_experimental("testapp/clients:paginate_notes", { prefix },
    { initialNumItems: 2 }, (v) => { paginated = v; });
  const pageBodies = () => paginated.results.map((n) => n.body);
  const state = () => ({ bodies, paginated: pageBodies(), status: paginated.status,
                         connectionCount: client.connectionState().connectionCount });
  await waitFor(() => bodies && paginated?.status === "CanLoadMore", "the first page");
  paginated.loadMore(2);
  await waitFor(() => paginated.status === "Exhausted", "the second page");
  // Page 1 grows past numItems: after a reconnect only its journal keeps its end in place.
  await client.mutation("testapp:add_note", { body: `${prefix}15` });
  emit({ event: "ready", sessionId: client.client._sessionId, ...state() });

  // A: a mutation still running (uncommitted) when the server dies.
  await expect("A");
  const slow = client.mutation("testapp/clients:slow_add_note",
                               { body: `${prefix}slow`, seconds: payload.seconds })
    .then((id) => ({ id, ...state() }));
  emit({ event: "sentA" });
  emit({ event: "resolvedA", ...(await slow) });

  // B: a mutation committed on a server that died before answering it.
  await expect("B");
  client.onUpdate("testapp/clients:slow_count",
                  { prefix: `${prefix}commit`, seconds: payload.slowSeconds },
                  (v) => { slowCount = v; });
  await waitFor(() => slowCount === 0, "slow_count");
  const committed = client.mutation("testapp:add_note", { body: `${prefix}commit` })
    .then((id) => ({ id, slowCount, ...state() }));
  emit({ event: "sentB" });
  emit({ event: "resolvedB", ...(await committed) });

  // Still live afterwards.
  const id = await client.mutation("testapp:add_note", { body: `${prefix}after` });
  const after = { id, ...state() };
  await client.close();
  return { event: "done", ...after };
}, 80000);
