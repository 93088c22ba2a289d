// One npm ConvexClient whose identity ends while it is connected: a Django session cookie
// (sent on the websocket handshake, as a browser would) or a JWT from setAuth. Emits each
// whoami and list_bodies update with the time it arrived, and setAuth's onChange; "quit" on
// stdin ends it. PAYLOAD: {"cookie"?, "token"?, "prefix"}.
import readline from "node:readline";
import WebSocket from "ws";
import { ConvexClient } from "convex/browser";
import { emit, payload, run, url } from "./lib.mjs";

const now = () => Date.now() / 1000;

class CookieSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, payload.cookie ? { headers: { Cookie: payload.cookie } } : {});
  }
}

run(async () => {
  const client = new ConvexClient(url, { webSocketConstructor: CookieSocket });
  if (payload.token) {
    client.setAuth(async () => payload.token, (ok) => emit({ event: "auth", ok, t: now() }));
  }
  client.onUpdate("testapp:whoami", {}, (who) => emit({ event: "who", who, t: now() }));
  client.onUpdate("testapp/clients:list_bodies", { prefix: payload.prefix },
    (bodies) => emit({ event: "bodies", n: bodies.length, t: now() }));
  const commands = readline.createInterface({ input: process.stdin });
  for await (const line of commands) {
    if (line.trim() === "quit") break;
  }
  await client.close();
  return { event: "done" };
}, 120000);
