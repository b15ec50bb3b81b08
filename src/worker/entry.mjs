// The worker's entry module: the class worker-build generates (over the wasm-bindgen exports),
// with `fetch` trying the fast path first (src/routes/fast.rs). A proxied request without a body
// that the isolate can decide from memory is decided by one synchronous call into the wasm, sent upstream here, and
// its answer's head filtered by a second call: no Rust future, no executor. Everything else
// goes to the wasm as before; every decision is the wasm's. scripts/build.sh bundles this file as
// build/worker/shim.mjs.
import Generated from '../index.js';
import { errorName, headersFlat, headersOf, upstreamFetch } from './glue.js';

// The fast path's calls, taken off the class so that they are not RPC methods of the worker.
const calls = Generated.prototype;
const fastRequest = calls.gatehouseFastRequest;
const fastAnswer = calls.gatehouseFastAnswer;
const fastFailed = calls.gatehouseFastFailed;
delete calls.gatehouseFastRequest;
delete calls.gatehouseFastAnswer;
delete calls.gatehouseFastFailed;

/** The first `n` lines of `text` and the rest. */
function lines(text, n) {
  const out = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const end = text.indexOf('\n', at);
    out.push(text.slice(at, end));
    at = end + 1;
  }
  out.push(text.slice(at));
  return out;
}

/** A response of Gatehouse's own: `R\n{status}\n{header count}\n{headers}{body}`. */
function local(answer) {
  const [, status, count, rest] = lines(answer, 3);
  let at = 0;
  for (let i = 0; i < 2 * Number(count); i++) at = rest.indexOf('\n', at) + 1;
  const body = rest.slice(at);
  return new Response(body === '' ? null : body, {
    status: Number(status),
    headers: headersOf(rest.slice(0, at)),
  });
}

/** Sends a decision (`F\n…`) upstream and answers with what comes back. */
async function forward(env, decision, origin) {
  const [, route, authenticated, timeout, method, url, flat] = lines(decision, 6);
  let answer;
  try {
    answer = await upstreamFetch(url, method, flat, null, Number(timeout));
  } catch (err) {
    return local(fastFailed(env, Number(route), origin, errorName(err), String(err)));
  }
  const head = fastAnswer(env, Number(route), authenticated === '1', origin, answer.status, headersFlat(answer.headers));
  if (!head.startsWith('H\n')) {
    await answer.body?.cancel();
    return local(head);
  }
  return new Response(answer.body, { status: answer.status, headers: headersOf(head.slice(2)) });
}

// Without the three calls (a worker-build that no longer puts exports on its class), every
// request takes the usual path.
const fast = [fastRequest, fastAnswer, fastFailed].every((f) => typeof f === 'function');

export default class Gatehouse extends Generated {
  fetch(request) {
    const decision = fast
      ? fastRequest(this.env, request.method, request.url, headersFlat(request.headers), request.body !== null)
      : undefined;
    if (decision === undefined) return super.fetch(request);
    if (decision.startsWith('R\n')) return local(decision);
    return forward(this.env, decision, request.headers.get('origin') ?? undefined);
  }
}
