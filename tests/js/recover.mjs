// A client of a server whose Reactor loses its database connection: waits for "go" on stdin,
// then subscribes to a new query and runs a mutation; both must be answered.
// PAYLOAD: {"prefix": ...}.
import readline from "node:readline";
import { ConvexClient } from "convex/browser";
import { emit, payload, run, url, waitFor } from "./lib.mjs";

run(async () => {
  const { prefix } = payload;
  const client = new ConvexClient(url);
  let first;
  let second;
  client.onUpdate("testapp/clients:list_bodies", { prefix }, (v) => { first = v; });
  await waitFor(() => first, "the first subscription");
  emit({ event: "ready" });
  const commands = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  await commands.next();
  client.onUpdate("testapp/clients:list_bodies", { prefix: `${prefix}x` }, (v) => { second = v; });
  const id = await client.mutation("testapp:add_note", { body: `${prefix}x1` });
  const atResolve = { first: [...first], second };
  await waitFor(() => second?.length === 1, "the new subscription's result", 20000);
  await client.close();
  return { event: "done", id, atResolve, first, second };
}, 40000);
