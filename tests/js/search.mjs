// Live search with the official npm client: a ranked prefix search filtered by tag, a
// nearest-neighbour page, and a paginated search, while mutations add and edit documents.
// Each step records what every subscription shows once the mutation has resolved (G4).
import { ConvexClient } from "convex/browser";
import { run, waitFor } from "./lib.mjs";
import { url } from "./lib.mjs";

run(async () => {
  const client = new ConvexClient(url);
  const seen = { search: null, similar: null, paged: null, searchUpdates: 0 };
  client.onUpdate("testapp/search:documents", { text: "bana", tag: "a" },
    (v) => { seen.search = v; seen.searchUpdates += 1; });
  client.onUpdate("testapp/search:similar", { vector: [1, 0, 0], k: 2 },
    (v) => { seen.similar = v; });
  let paged;
  client.onPaginatedUpdate_experimental("testapp/search:pages", { text: "apple", tag: "a" },
    { initialNumItems: 2 }, (v) => { paged = v; });
  const pagedBodies = () => paged.results.map((d) => d.body);
  await waitFor(() => seen.search && seen.similar && paged && paged.status !== "LoadingFirstPage",
                "first results");
  const trace = [];
  const snap = (step) => trace.push({ step, search: seen.search, similar: seen.similar,
                                      paged: pagedBodies(), status: paged.status });
  snap("initial");
  const steps = [
    ["add", { body: "banana split", tag: "a", embedding: [0, 1, 0] }],
    ["add", { body: "banana bread", tag: "b", embedding: [0, 0, 1] }],
    ["add", { body: "cherry pie", tag: "a", embedding: [1, 0.05, 0] }],
    ["add", { body: "apple crumble", tag: "a", embedding: [0, 1, 1] }],
    ["edit", { body: "banana split", new_body: "cherry split" }],
    ["add", { body: "apple banana", tag: "a", embedding: [0.9, 0.1, 0] }],
  ];
  for (const [name, args] of steps) {
    await client.mutation(`testapp/search:${name}`, args);
    snap([name, args.body]);
  }
  paged.loadMore(5);
  await waitFor(() => paged.status === "Exhausted", "all pages");
  snap("loadMore");
  let badArgs = null;
  try {
    await client.mutation("testapp/search:add", { body: "x", embedding: [1, 2] });
  } catch (err) {
    badArgs = String(err.data?.code ?? err);
  }
  const searchUpdates = seen.searchUpdates;
  await client.close();
  return { trace, badArgs, searchUpdates };
});
