// Schema-free documents (ctx.db) with the official npm client: a pinned-notes subscription, a
// tag filter and a paginated feed follow inserts, patches and deletes; each step records what
// every subscription shows once its mutation has resolved (G4). Bad input gets ConvexError data.
import { ConvexClient } from "convex/browser";
import { run, url, waitFor } from "./lib.mjs";

const P = "testapp/documents";

run(async () => {
  const client = new ConvexClient(url);
  const seen = { pinned: null, tagged: null };
  client.onUpdate(`${P}:pinned`, {}, (v) => { seen.pinned = v; });
  client.onUpdate(`${P}:tagged`, { tag: "x" }, (v) => { seen.tagged = v; });
  let paged;
  client.onPaginatedUpdate_experimental(`${P}:page`, {}, { initialNumItems: 2 },
    (v) => { paged = v; });
  await waitFor(() => seen.pinned && seen.tagged && paged && paged.status !== "LoadingFirstPage",
                "first results");
  const bodies = (docs) => docs.map((d) => d.body);
  const trace = [];
  const snap = (step) => trace.push({ step, pinned: bodies(seen.pinned),
    tagged: bodies(seen.tagged), paged: bodies(paged.results), status: paged.status });
  snap("initial");
  const a = await client.mutation(`${P}:add_note`, { body: "a", tags: ["x"], pinned: false });
  snap("add a");
  const b = await client.mutation(`${P}:add_note`, { body: "b", tags: ["y"], pinned: true });
  snap("add b");
  await client.mutation(`${P}:patch`, { id: a, fields: { pinned: true } });
  snap("pin a");
  await client.mutation(`${P}:delete`, { id: b });
  snap("delete b");
  paged.loadMore(5);
  await waitFor(() => paged.status === "Exhausted", "all pages");
  snap("loadMore");
  const errors = {};
  for (const [name, args] of [["insert", { table: "no such!", doc: {} }],
                              ["insert", { table: "notes", doc: { _secret: 1 } }],
                              ["get", { id: "nope" }]]) {
    try {
      await (name === "get" ? client.query(`${P}:${name}`, args)
                            : client.mutation(`${P}:${name}`, args));
    } catch (err) {
      errors[`${name}:${JSON.stringify(args)}`] = err.data?.code ?? String(err);
    }
  }
  await client.close();
  return { trace, errors, a };
});
