// Reactive pagination with the official npm client: ConvexClient.onPaginatedUpdate_experimental
// (the same PaginatedQueryClient logic usePaginatedQuery's pages follow: first page, loadMore,
// page splits). Mutations move rows in and out of loaded pages; after each step the script
// records the concatenated results and each page's subscription. PAYLOAD: {"prefix", "steps":
// [{"load": n} | {"add": body} | {"remove": body} | {"split": pages} | {"exhaust": n}]}.
import { ConvexClient } from "convex/browser";
import { payload, run, url, waitFor } from "./lib.mjs";

const PATH = "testapp/clients:paginate_notes";

run(async () => {
  const client = new ConvexClient(url);
  let latest;
  let failure;
  client.onPaginatedUpdate_experimental(PATH, { prefix: payload.prefix },
    { initialNumItems: payload.initialNumItems },
    (value) => { latest = value; }, (err) => { failure = String(err); });
  const bodies = () => latest.results.map((n) => n.body);
  // The paginated query's pages as the client holds them: args sent and rows received.
  const pages = () => {
    const [entry] = client.paginatedClient.paginatedQuerySet.values();
    return entry.pageKeys.map((key) => {
      const { queryToken } = entry.pageKeyToQuery.get(key);
      const { args } = JSON.parse(queryToken);
      const result = client.client.localQueryResultByToken(queryToken);
      return { opts: args.paginationOpts, rows: result?.page.map((n) => n.body) ?? null,
               pageStatus: result?.pageStatus ?? null };
    });
  };
  const settled = () => !failure && latest && !latest.status.startsWith("Loading");
  const trace = [];
  const record = (step, extra = {}) => trace.push({ step, status: latest.status,
                                                    bodies: bodies(), pages: pages(), ...extra });

  await waitFor(settled, "the first page");
  record("first");
  let error = null;
  try {
    await steps();
  } catch (err) {
    error = String(err);  // the trace so far tells the test what went wrong
  }
  await client.close();
  return { trace, failure, error };

  async function steps() {
  for (const step of payload.steps) {
    if (step.load) {
      latest.loadMore(step.load);
      await waitFor(settled, "loadMore");
    } else if (step.add) {
      await client.mutation("testapp:add_note", { body: step.add });
    } else if (step.remove) {
      await client.mutation("testapp/clients:remove_note", { body: step.remove });
    } else if (step.split) {
      await waitFor(() => settled() && pages().length === step.split, `${step.split} pages`);
    }
    // For mutations: what the subscription showed when the promise resolved (G4).
    record(step, { failure });
  }
  }
});
