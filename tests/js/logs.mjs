// Function logs as the official npm ConvexClient shows them: a recording logger collects the
// console lines the client prints for logLines of queries, mutations and actions.
import { ConvexClient } from "convex/browser";
import { emit, outcome, url, waitFor } from "./lib.mjs";

const seen = [];
const record = (level) => (...args) => { seen.push({ level, text: args.map(String).join(" ") }); };
const logger = { log: record("log"), warn: record("warn"), error: record("error"),
                 logVerbose: () => {} };

const client = new ConvexClient(url, { logger });
let value;
client.onUpdate("testapp/dataio:chatty", { word: "sub", times: 2 }, (v) => { value = v; });
await waitFor(() => value !== undefined, "the query result");
const mutation = await outcome(client.mutation("testapp/dataio:noisy_write", { body: "hello" }));
const failed = await outcome(client.mutation("testapp/dataio:noisy_write", { body: "fail" }));
const action = await outcome(client.action("testapp/dataio:shout", { word: "act" }));
await client.close();
emit({ value, mutation, failed, action, seen });
