// Helpers shared by the scripts that drive the official npm client from the Python tests.
import { ConvexError, convexToJson } from "convex/values";

export const url = process.env.SERVER_URL;
export const payload = JSON.parse(process.env.PAYLOAD ?? "null") ?? {};

// Poll `condition` every 10 ms until it is truthy; throw naming `what` after `timeoutMs`.
export async function waitFor(condition, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// An error as the tests compare it: was it a ConvexError, its data, its message.
export function describeError(err) {
  return {
    convexError: err instanceof ConvexError,
    data: err instanceof ConvexError ? convexToJson(err.data) : null,
    message: String(err?.message ?? err),
  };
}

// Await `promise`; resolve to {ok, value} or {ok: false, ...describeError}.
export async function outcome(promise) {
  try {
    const value = await promise;
    return { ok: true, value: convexToJson(value === undefined ? null : value) };
  } catch (err) {
    return { ok: false, ...describeError(err) };
  }
}

// One JSON line on stdout: the Python side reads the last one (or each, for event streams).
export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// Run `main`, print its result as the last line and exit; any failure exits 1 with the stack.
export function run(main, timeoutMs = 50000) {
  const timer = setTimeout(() => {
    console.error(`script timed out after ${timeoutMs} ms`);
    process.exit(3);
  }, timeoutMs);
  main().then(
    (result) => { clearTimeout(timer); emit(result); process.exit(0); },
    (err) => { console.error(err?.stack ?? String(err)); process.exit(1); },
  );
}
