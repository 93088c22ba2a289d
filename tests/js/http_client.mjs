// Runs a list of calls with the official npm ConvexHttpClient and prints the outcomes as JSON.
// PAYLOAD: {"calls": [{"kind": "query"|"mutation"|"action", "path": "...", "args": <convex JSON>}],
//           "auth": "<Authorization token>"?, "admin": "<admin key>"?}
import { ConvexHttpClient } from "convex/browser";
import { ConvexError, convexToJson, jsonToConvex } from "convex/values";

const url = process.env.SERVER_URL;
const payload = JSON.parse(process.env.PAYLOAD);
const client = new ConvexHttpClient(url);
if (payload.admin) client.setAdminAuth(payload.admin);

const outcomes = [];
for (const call of payload.calls) {
  const args = jsonToConvex(call.args ?? {});
  try {
    const value = await client[call.kind](call.path, args);
    outcomes.push({ ok: true, value: convexToJson(value === undefined ? null : value),
                    jsType: typeof value });
  } catch (err) {
    outcomes.push({
      ok: false,
      convexError: err instanceof ConvexError,
      data: err instanceof ConvexError ? convexToJson(err.data) : null,
      message: String(err.message),
    });
  }
}
console.log(JSON.stringify(outcomes));
