// The ceiling for any gateway: forwards the request to the upstream unchanged and returns its
// answer. Runs in the same workerd process as Gatehouse and the peer (see bench/workerd.mjs).
export default {
  fetch(req, env) {
    const u = new URL(req.url);
    return fetch(env.UP + u.pathname + u.search, { method: req.method, headers: req.headers, body: req.body });
  },
};
