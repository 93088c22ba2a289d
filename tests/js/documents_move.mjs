// Live subscriptions on schema-free `notes` held while the table moves into a model.
// Subscriber clients hold pinned / tagged / all-notes subscriptions; a writer client keeps
// adding notes and pinning earlier ones (ids from before the move too) until told "stop".
// Commands on stdin (one JSON line each): "stop", then {"expect": {pinned, tagged, all}}: every
// client's views must equal it (keys compared sorted). Events on stdout: ready, stopped,
// converged (or the script fails naming the view that did not).
import readline from "node:readline";
import { ConvexClient } from "convex/browser";
import { convexToJson } from "convex/values";
import { emit, payload, run, url, waitFor } from "./lib.mjs";

const P = "testapp/documents";
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => JSON.parse((await lines.next()).value);

// JSON with object keys sorted: views compare whatever order the client decoded them in.
const canon = (v) => JSON.stringify(v, (_, x) => (x && typeof x === "object" && !Array.isArray(x)
  ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x));

function subscriber() {
  const client = new ConvexClient(url);
  const view = { pinned: null, tagged: null, all: null, errors: {} };
  const failed = (name) => (err) => {
    const code = err?.data?.code ?? String(err?.message ?? err);
    view.errors[code] = (view.errors[code] ?? 0) + 1;
  };
  const keep = (name) => (value) => { view[name] = convexToJson(value); };
  client.onUpdate(`${P}:pinned`, {}, keep("pinned"), failed("pinned"));
  client.onUpdate(`${P}:tagged`, { tag: "x" }, keep("tagged"), failed("tagged"));
  client.onUpdate(`${P}:all_of`, { table: "notes" }, keep("all"), failed("all"));
  return { client, view };
}

run(async () => {
  const subscribers = Array.from({ length: payload.subscribers ?? 2 }, subscriber);
  await waitFor(() => subscribers.every(({ view }) => view.pinned && view.tagged && view.all),
                "first results", 30000);
  const writer = new ConvexClient(url);
  const ids = [...payload.seeded];
  const outcome = { inserted: [], pinned: 0, errors: {} };
  let stop = false;
  const writing = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        if (i % 4 === 3) {  // pin an earlier note, possibly one written before the move
          await writer.mutation(`${P}:patch`, { id: ids[(i * 7) % ids.length],
                                                fields: { pinned: true } });
          outcome.pinned++;
        } else {
          const id = await writer.mutation(`${P}:add_note`, {
            body: `w${i}`, tags: i % 3 === 0 ? ["x"] : ["y"], pinned: i % 5 === 0 });
          ids.push(id);
          outcome.inserted.push(id);
        }
      } catch (err) {
        const code = err?.data?.code ?? String(err?.message ?? err);
        outcome.errors[code] = (outcome.errors[code] ?? 0) + 1;
      }
      await new Promise((resolve) => setTimeout(resolve, payload.pauseMs ?? 20));
    }
  })();
  emit({ event: "ready" });
  const command = await next();
  if (command !== "stop") throw new Error(`expected "stop", got ${JSON.stringify(command)}`);
  stop = true;
  await writing;
  emit({ event: "stopped", ...outcome });
  const { expect } = await next();
  const wanted = Object.fromEntries(Object.entries(expect).map(([k, v]) => [k, canon(v)]));
  const differs = () => subscribers.flatMap(({ view }, n) => Object.keys(wanted)
    .filter((k) => canon(view[k]) !== wanted[k]).map((k) => `client ${n} ${k}`));
  try {
    await waitFor(() => differs().length === 0, "every view to converge", 30000);
  } catch (err) {
    throw new Error(`${err.message}: ${differs().join(", ")}\n` +
                    JSON.stringify(subscribers.map(({ view }) => view)).slice(0, 3000));
  }
  const errors = subscribers.map(({ view }) => view.errors);
  await Promise.all([writer.close(), ...subscribers.map(({ client }) => client.close())]);
  return { event: "converged", errors };
}, 170000);
