// The decisions of the Gatehouse owner guard for Directus, as pure functions: no Directus, no
// request, no database. index.js binds them to Directus; tests/e2e/cms-hooks.test.mjs runs them.
//
// An identity is what verify.mjs returns for a valid signature: { auth, user, roles }; null means
// the request is not validly signed by Gatehouse. A decision is null (allow) or the reason for
// refusing.

/** The guard's settings from Directus's env (values may arrive cast: numbers, arrays). */
export function readOptions(env = {}) {
  const str = (v, fallback) => (v === undefined || v === null ? fallback : Array.isArray(v) ? v.join(',') : String(v));
  const list = (v, fallback) => {
    if (v === undefined || v === null) return fallback;
    const items = Array.isArray(v) ? v : String(v).split(',');
    return items.map((s) => String(s).trim()).filter(Boolean);
  };
  const secret = env.UPSTREAM_SIGNING_SECRET;
  const maxAge = Number(env.GATEHOUSE_MAX_AGE ?? 300);
  return {
    // A number or an array here means Directus cast it: prefix the value with `string:`.
    secret: typeof secret === 'string' ? secret : '',
    ownerField: str(env.GATEHOUSE_OWNER_FIELD, 'author').trim() || 'author',
    bypassRoles: list(env.GATEHOUSE_BYPASS_ROLES, ['editor']),
    collections: env.GATEHOUSE_COLLECTIONS === undefined || env.GATEHOUSE_COLLECTIONS === null ? null : list(env.GATEHOUSE_COLLECTIONS, []),
    exempt: list(env.GATEHOUSE_EXEMPT, ['admin']).map((s) => s.toLowerCase()),
    pathPrefix: str(env.GATEHOUSE_PATH_PREFIX, '').replace(/\/+$/, ''),
    maxAgeSeconds: Number.isFinite(maxAge) && maxAge > 0 ? maxAge : 300,
    maxBodyBytes: parseBytes(env.MAX_PAYLOAD_SIZE ?? '1mb'),
  };
}

/** `1mb`, `100kb`, `2048` → bytes (as Directus's MAX_PAYLOAD_SIZE is read by express.json). */
export function parseBytes(value) {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|pb)?\s*$/i.exec(String(value));
  if (!m) return 1024 * 1024;
  const unit = { b: 0, kb: 1, mb: 2, gb: 3, tb: 4, pb: 5 }[(m[2] ?? 'b').toLowerCase()];
  return Math.floor(Number(m[1]) * 1024 ** unit);
}

/** Which requests the middleware reads and verifies: item writes and GraphQL posts. */
export function guardedRequest(method, path) {
  const m = String(method).toUpperCase();
  if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(m)) return null;
  // Express routes case-insensitively and ignores a trailing slash.
  if (/^\/items(\/|$)/i.test(path)) return 'items';
  if (m === 'POST' && /^\/graphql\/?$/i.test(path)) return 'graphql';
  return null;
}

/** The collection of an `/items/<collection>…` path (percent-decoded), or null. */
export function itemsCollection(path) {
  const m = /^\/items\/([^/]+)/i.exec(path);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

export function guardsCollection(options, collection) {
  return typeof collection === 'string' && (options.collections === null || options.collections.includes(collection));
}

/** Unsigned requests of these Directus users are left to Directus's own permissions. */
export function isExempt(accountability, options) {
  if (!accountability) return false;
  return (options.exempt.includes('admin') && accountability.admin === true)
    || (options.exempt.includes('app') && accountability.app === true);
}

export function bypasses(identity, options) {
  const roles = Array.isArray(identity?.roles) ? identity.roles : [];
  return roles.some((r) => options.bypassRoles.includes(r));
}

/**
 * May this item be saved?
 * @param identity  { auth, user, roles } of a valid signature, or null
 * @param stored    the stored item an update changes (null: it does not exist; unused on creates)
 * @param item      the payload: a new item, or an update's changed fields
 * @param isUpdate
 * @param options   { ownerField, bypassRoles }
 * @returns null to allow, or why not
 */
export function ownerDecision(identity, stored, item, isUpdate, options) {
  const field = options.ownerField;
  if (!identity) return 'the request is not signed by Gatehouse';
  const user = identity.user;
  if (typeof user !== 'string' || user === '') return 'an anonymous caller may not save';
  if (bypasses(identity, options)) return null;
  if (!isPlainObject(item)) return 'the item must be an object';
  if (isUpdate) {
    if (!stored) return 'the item to update does not exist';
    if (stored[field] !== user) return `the item belongs to another user (${field})`;
    if (Object.hasOwn(item, field) && item[field] !== user) return `${field} must be the signed user`;
    return null;
  }
  if (item[field] !== user) return `${field} must be the signed user`;
  return null;
}

/**
 * May the items of an update be changed? `storedList` has one entry per key of the update (null
 * where that key does not exist); an empty list (an update by query that matched nothing) checks
 * the caller and the payload only.
 */
export function updateDecision(identity, storedList, item, options) {
  if (storedList.length === 0) {
    const anyOwner = identity?.user ? { [options.ownerField]: identity.user } : null;
    return ownerDecision(identity, anyOwner, item, true, options);
  }
  for (const stored of storedList) {
    const reason = ownerDecision(identity, stored, item, true, options);
    if (reason) return reason;
  }
  return null;
}

/** May these stored items be deleted? One entry per key, null where it does not exist. */
export function deleteDecision(identity, storedList, options) {
  if (storedList.length === 0) return removeDecision(identity, null, options);
  for (const stored of storedList) {
    const reason = removeDecision(identity, stored, options);
    if (reason) return reason;
  }
  return null;
}

/** May this stored item be deleted? `stored` null: it does not exist (nothing to delete). */
export function removeDecision(identity, stored, options) {
  if (!identity) return 'the request is not signed by Gatehouse';
  const user = identity.user;
  if (typeof user !== 'string' || user === '') return 'an anonymous caller may not delete';
  if (bypasses(identity, options)) return null;
  if (stored && stored[options.ownerField] !== user) return `the item belongs to another user (${options.ownerField})`;
  return null;
}

/**
 * What express.json would do with this request's content type: 'json' (parse), 'other' (leave
 * req.body as {}), or a refusal reason (a charset or a content-encoding this guard cannot read).
 */
export function bodyKind(headers) {
  const encoding = String(headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity') return `content-encoding ${encoding} is not supported here`;
  const type = String(headers['content-type'] ?? '');
  const [mime, ...params] = type.split(';');
  if (mime.trim().toLowerCase() !== 'application/json') return 'other';
  for (const p of params) {
    const [k, v = ''] = p.split('=');
    if (k.trim().toLowerCase() === 'charset' && !['utf-8', 'utf8', '"utf-8"'].includes(v.trim().toLowerCase())) {
      return `charset ${v.trim()} is not supported here`;
    }
  }
  return 'json';
}

/** JSON.parse the way express.json (body-parser, strict) does; throws a SyntaxError. */
export function parseJsonBody(bytes) {
  let text = Buffer.from(bytes).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) return {};
  const first = /^[\x20\x09\x0a\x0d]*(.)/s.exec(text)?.[1];
  if (first !== '{' && first !== '[') throw new SyntaxError('the body must be a JSON object or array');
  return JSON.parse(text);
}

function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
