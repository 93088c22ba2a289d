// Many live queries on one npm client while the server's database connections are terminated
// mid-round: on "expect <n>" on stdin, waits until every napping_count shows n and reports
// whether any query was left in an error. PAYLOAD: {"prefix", "count", "seconds"}.
import readline from "node:readline";
import { ConvexClient } from "convex/browser";
import { emit, payload, run, url, waitFor } from "./lib.mjs";

run(async () => {
  const { prefix, count, seconds } = payload;
  const client = new ConvexClient(url);
  const state = new Array(count).fill(null);
  const errorsSeen = [];
  for (let index = 0; index < count; index += 1) {
    client.onUpdate("testapp/clients:napping_count", { prefix, index, seconds },
      (value) => { state[index] = { value }; },
      (err) => { state[index] = { error: String(err?.message ?? err) }; errorsSeen.push(index); });
  }
  let castError;
  client.onUpdate("testapp/clients:bad_cast", { prefix }, () => { castError = "no error"; },
    (err) => { castError = String(err?.message ?? err); });
  await waitFor(() => state.every((s) => s) && castError, "every first result", 30000);
  emit({ event: "ready" });
  const commands = readline.createInterface({ input: process.stdin });
  for await (const line of commands) {
    const [verb, arg] = line.trim().split(" ");
    if (verb === "quit") break;
    const expected = Number(arg);
    try {
      await waitFor(() => state.every((s) => s.value === expected), `all at ${expected}`, 40000);
      emit({ event: "converged", expected, errorsSeen: errorsSeen.length, castError,
             stillInError: state.filter((s) => s.error).length });
    } catch {
      emit({ event: "stuck", expected, state, castError });
    }
  }
  await client.close();
  return { event: "done" };
}, 240000);
