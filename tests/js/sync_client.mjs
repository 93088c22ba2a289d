// Drives the official npm ConvexClient (convex/browser, websocket sync protocol) through one
// scenario and prints what it saw as JSON. PAYLOAD: {"scenario": <name below>, ...}.
import { ConvexClient } from "convex/browser";
import { jsonToConvex } from "convex/values";
import { describeError, outcome, payload, run, url, waitFor } from "./lib.mjs";

const scenarios = {
  // Subscribe, mutate (one by one, then a burst), and record what onUpdate had delivered at
  // the moment each mutation promise resolved (read-your-writes). A second client sees it too.
  async readYourWrites() {
    const client = new ConvexClient(url);
    const other = new ConvexClient(url);
    let latest;
    let otherLatest;
    let updates = 0;
    client.onUpdate("testapp:list_notes", { limit: 1000 }, (v) => { latest = v; updates += 1; });
    other.onUpdate("testapp:list_notes", { limit: 1000 }, (v) => { otherLatest = v; });
    await waitFor(() => latest !== undefined && otherLatest !== undefined, "first results");
    const initial = latest.map((n) => n.body);
    const ids = (notes) => notes.map((n) => n._id);

    const sequential = [];
    for (const body of payload.bodies) {
      const id = await client.mutation("testapp:add_note", { body });
      sequential.push({ id, seen: ids(latest) });
    }
    // A burst: all sent before any resolves; each must resolve with its write visible.
    const burst = await Promise.all(payload.burst.map((body) =>
      client.mutation("testapp:add_note", { body }).then((id) => ({ id, seen: ids(latest) }))));
    const total = payload.bodies.length + payload.burst.length;
    await waitFor(() => otherLatest.length === initial.length + total, "the other client");
    // A write by the other client reaches the first one.
    const fromOther = await other.mutation("testapp:add_note", { body: "from the other" });
    await waitFor(() => ids(latest).includes(fromOther), "the other client's write");
    await Promise.all([client.close(), other.close()]);
    return { initial, sequential, burst, fromOther, updates,
             final: latest.map((n) => n.body), otherFinal: otherLatest.map((n) => n.body) };
  },

  // Failures as the client presents them; the connection keeps working after each.
  async errors() {
    const client = new ConvexClient(url);
    let latest;
    client.onUpdate("testapp:list_notes", {}, (v) => { latest = v; });
    const out = {};
    out.convexError = await outcome(client.mutation("testapp:add_note", { body: "  " }));
    out.internalMutation = await outcome(client.mutation("testapp:internal_add", { body: "x" }));
    out.internalQuery = await outcome(client.query("testapp:secret", {}));
    out.unknown = await outcome(client.mutation("testapp:no_such_function", {}));
    out.badArgs = await outcome(client.mutation("testapp:add_note", { body: 5 }));
    out.crash = await outcome(client.query("testapp:crash", {}));
    out.actionError = await outcome(client.action("testapp:fail_action", { code: "NOPE" }));
    out.badCursor = await outcome(client.query("testapp/clients:paginate_notes",
      { paginationOpts: { numItems: 2, cursor: "not-a-cursor" } }));
    let subscriptionError;
    client.onUpdate("testapp:secret", {}, () => {}, (err) => { subscriptionError = describeError(err); });
    await waitFor(() => subscriptionError, "the internal query's onError");
    out.internalSubscription = subscriptionError;
    // Still alive: a good mutation resolves and shows up.
    const id = await client.mutation("testapp:add_note", { body: "after the errors" });
    out.after = { id, seen: latest.map((n) => n._id) };
    await client.close();
    return out;
  },

  // One-shot queries (Add, result, Remove) and values that need the special encodings.
  async oneShot() {
    const client = new ConvexClient(url);
    const out = {};
    out.notes = await outcome(client.query("testapp:list_notes", {}));
    out.bigInt = await outcome(client.query("testapp:big_int", {}));
    out.bigIntType = typeof (await client.query("testapp:big_int", {}));
    out.floats = await outcome(client.query("testapp:special_floats", {}));
    out.echo = await outcome(client.query("testapp:echo", { value: jsonToConvex(payload.echo) }));
    out.nested = await outcome(client.query("testapp/rooms:hello", { name: "npm" }));
    out.action = await outcome(client.action("testapp:summarize", { prefix: "one-shot " }));
    // A deployment URL with a trailing slash gives the socket path //api/<version>/sync.
    const slashed = new ConvexClient(`${url}/`);
    out.trailingSlash = await outcome(slashed.query("testapp/rooms:hello", { name: "slash" }));
    await Promise.all([client.close(), slashed.close()]);
    return out;
  },

  // payload.clients sessions subscribe, stay idle for payload.idleMs (nothing sent by the
  // clients; the server may Ping), then one of them writes: every session must see the write
  // on the connection it opened first (connectionCount stays 1: none was closed meanwhile).
  async idleThenUpdate() {
    const clients = Array.from({ length: payload.clients }, () => new ConvexClient(url));
    const latest = clients.map(() => undefined);
    clients.forEach((client, i) => client.onUpdate("testapp:list_notes", { limit: 1000 },
      (v) => { latest[i] = v; }));
    await waitFor(() => latest.every((v) => v !== undefined), "first results");
    await new Promise((resolve) => setTimeout(resolve, payload.idleMs));
    const afterIdle = clients.map((c) => c.connectionState());
    await clients[0].mutation("testapp:add_note", { body: payload.body });
    const seen = (i) => latest[i].some((n) => n.body === payload.body);
    await waitFor(() => latest.every((_, i) => seen(i)), "the write on every session", 30000);
    const final = clients.map((c) => c.connectionState());
    await Promise.all(clients.map((c) => c.close()));
    const counts = (states) => states.map((s) => ({ count: s.connectionCount,
                                                    retries: s.connectionRetries }));
    return { afterIdle: counts(afterIdle), final: counts(final) };
  },
};

run(async () => {
  const scenario = scenarios[payload.scenario];
  if (!scenario) throw new Error(`unknown scenario ${payload.scenario}`);
  return await scenario();
}, (payload.idleMs ?? 0) + 50000);
