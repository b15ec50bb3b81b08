// Stands behind Gatehouse's DB binding (the D1 wrapper module `cloudflare-internal:d1-api`
// talks to it over HTTP, as it talks to Miniflare's D1 object). It counts every storage call and
// answers each query with an empty result, so the bench can show how many calls a case made;
// the exceptions are the liveness read of the bench token's session (`fam_bench`), answered
// as a live session of `usr_bench` holding `user`, and the lookup of the bench API key by its
// hash (the BENCH_KEY_HASH binding), answered as a live key of `usr_bench` for the `members`
// route, last used a second ago (as it is after its first use: no `last_used_at` write).
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
    const rowsOf = (q) => {
      const sql = q?.sql ?? '';
      const first = (q?.params ?? [])[0];
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
