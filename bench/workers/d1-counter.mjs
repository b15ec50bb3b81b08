// Stands behind Gatehouse's DB binding (the D1 wrapper module `cloudflare-internal:d1-api`
// talks to it over HTTP, as it talks to Miniflare's D1 object). It counts every storage call and
// answers each query with an empty result, so the bench can show how many calls a case made;
// the one exception is the liveness read of the bench token's session (`fam_bench`), answered
// as a live session of `usr_bench` holding `user`.
// The bench reads and resets the count through this worker's own socket:
//   GET /__count -> {"calls": n, "queries": n}      POST /__reset
let calls = 0;
let queries = 0;

export default {
  async fetch(req) {
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
    const rowsOf = (q) =>
      /FROM refresh_families f JOIN users u/.test(q?.sql ?? '') && (q.params ?? [])[0] === 'fam_bench'
        ? [{ user_id: 'usr_bench', revoked_at: null, expires_at: 8_000_000_000_000, user_disabled: 0, user_roles: '["user"]' }]
        : [];
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
