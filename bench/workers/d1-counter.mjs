// Stands behind Gatehouse's DB binding (the D1 wrapper module `cloudflare-internal:d1-api`
// talks to it over HTTP, as it talks to Miniflare's D1 object). It counts every storage call and
// answers each query with an empty result, so the bench can show how many calls a case made;
// the exceptions are the liveness read of the bench token's session (`fam_bench`), answered
// as a live session of `usr_bench` holding `user`, and the lookup of the bench API key by its
// hash (the BENCH_KEY_HASH binding), answered as a live key of `usr_bench` for the `members`
// route, last used a second ago (as it is after its first use: no `last_used_at` write). For
// the login and refresh probes: every rate-limit counter answers a first hit; the bench user
// (`bench@example.com`, the BENCH_PASSWORD_PHC binding) is found by email; a refresh of the bench
// refresh token (its hash in BENCH_REFRESH_HASH) reads back the state of a rotation this very
// batch won (the successor it wrote), in session `fam_bench`, and the bench user. Nothing is
// stored: every refresh of that token wins again.
// The bench reads and resets the count through this worker's own socket:
//   GET /__count -> {"calls": n, "queries": n}      POST /__reset
let calls = 0;
let queries = 0;

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname === '/__count') return Response.json({ calls, queries });
    if (url.pathname === '/__reset') {
      calls = 0;
      queries = 0;
      return Response.json({ calls, queries });
    }
    // /query or /execute from the D1 wrapper: one statement or a batch.
    calls += 1;
    let body;
    try {
      body = await req.json();
    } catch {
      body = [];
    }
    const list = Array.isArray(body) ? body : [body];
    queries += list.length;
    const rowsAndColumns = url.searchParams.get('resultsFormat') === 'ROWS_AND_COLUMNS';
    const now = Date.now();
    const benchUser = () => ({
      id: 'usr_bench', email: 'bench@example.com', name: null, password_hash: env.BENCH_PASSWORD_PHC,
      roles: '["user"]', disabled: 0, created_at: 0, updated_at: 0, totp: 0,
    });
    const rotation = list.find((q) => /^UPDATE refresh_tokens SET rotated_at/.test(q?.sql ?? ''));
    const rowsOf = (q) => {
      const sql = q?.sql ?? '';
      const first = (q?.params ?? [])[0];
      if (/^INSERT INTO rate_limits/.test(sql)) return [{ count: 1, window_start: now - (now % 60_000) }];
      if (/FROM users WHERE email = \?1/.test(sql) && first === 'bench@example.com') return [benchUser()];
      if (first === env.BENCH_REFRESH_HASH && rotation && /FROM refresh_tokens t JOIN refresh_families f/.test(sql)) {
        if (/FROM users WHERE id =/.test(sql)) return [benchUser()];
        const [, rotatedAt, successorHash, sealed] = rotation.params;
        return [{
          generation: 0, rotated_at: rotatedAt, successor_hash: successorHash, successor_sealed: sealed,
          id: 'fam_bench', user_id: 'usr_bench', created_at: 0, last_used_at: rotatedAt, expires_at: 8_000_000_000_000,
          revoked_at: null, revoke_reason: null, user_agent: null, console: 0, api_key_id: null,
        }];
      }
      if (/FROM refresh_families f JOIN users u/.test(sql) && first === 'fam_bench') {
        return [{ user_id: 'usr_bench', revoked_at: null, expires_at: 8_000_000_000_000, user_disabled: 0, user_roles: '["user"]' }];
      }
      if (/FROM api_keys k JOIN users u/.test(sql) && first === env.BENCH_KEY_HASH) {
        return [{
          id: 'key_bench', key_hash: env.BENCH_KEY_HASH, label: 'bench', owner_user_id: 'usr_bench', created_by: null,
          role: 'user', scopes: '["members"]', created_at: 0, expires_at: null, last_used_at: Date.now() - 1000,
          revoked_at: null, owner_roles: '["user"]', owner_disabled: 0,
        }];
      }
      return [];
    };
    const one = (q) => {
      const rows = rowsOf(q);
      const columns = rows.length ? Object.keys(rows[0]) : [];
      return {
        success: true,
        results: rowsAndColumns ? { columns, rows: rows.map((r) => columns.map((c) => r[c])) } : rows,
        meta: { served_by: 'bench-d1-counter', duration: 0, changes: 0, last_row_id: 0, changed_db: false, size_after: 0, rows_read: rows.length, rows_written: 0 },
      };
    };
    return Response.json(list.map(one));
  },
};
