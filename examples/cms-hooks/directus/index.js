// Gatehouse owner guard for Directus 11: a hook extension, plain ESM, no build step.
//
// Directus refuses, with 403 FORBIDDEN and nothing written:
//   - an item write (POST/PATCH/DELETE /items/…) that is not validly signed by Gatehouse, unless
//     the Directus user is exempt (GATEHOUSE_EXEMPT, default: admins, so the Data Studio keeps
//     working for them); a request whose signature is present but wrong, always;
//   - an item created or updated (REST, GraphQL, or any other way Directus's ItemsService is
//     called for an HTTP request) whose owner field (GATEHOUSE_OWNER_FIELD, default `author`) is
//     not the signed user;
//   - an update or delete of items whose stored owner is not the signed user;
//   - saves and deletes of anonymous Gatehouse callers.
// Callers with a bypass role (GATEHOUSE_BYPASS_ROLES, default `editor`) may change any item.
// Writes Directus makes without a user (flows with full access, schedules) are not checked.
//
// How: `init('middlewares.before')` runs before Directus's express.json, so the middleware reads
// the raw body (the signature's Content-Digest covers the exact bytes), verifies the signature
// with verify.mjs, then hands the parsed body on as express.json would (req.body, and req._body,
// which makes express.json skip the request). `init('middlewares.after')` runs after Directus has
// authenticated the token and ties the result to the request's accountability object, which
// Directus passes to every filter the request's services emit. The filters
// `items.create` / `items.update` / `items.delete` decide with owner-check.mjs.
//
// Env: UPSTREAM_SIGNING_SECRET (required), GATEHOUSE_OWNER_FIELD, GATEHOUSE_BYPASS_ROLES,
// GATEHOUSE_COLLECTIONS (default: every collection), GATEHOUSE_EXEMPT (`admin`, `app`, or empty),
// GATEHOUSE_PATH_PREFIX, GATEHOUSE_MAX_AGE. See examples/cms-hooks/README.md.

import { verifyGatehouseRequest } from './verify.mjs';
import {
  bodyKind,
  guardedRequest,
  guardsCollection,
  bypasses,
  deleteDecision,
  isExempt,
  itemsCollection,
  ownerDecision,
  parseJsonBody,
  readOptions,
  updateDecision,
} from './owner-check.mjs';

const NOT_SIGNED = 'the request is not signed by Gatehouse';

/** An error Directus's error handler answers with its status and code (as @directus/errors). */
function directusError(status, code, message) {
  return Object.assign(new Error(message), { name: 'DirectusError', status, code, extensions: {} });
}
const forbidden = (reason) => directusError(403, 'FORBIDDEN', `Gatehouse: ${reason}`);

export default ({ init, filter }, { env, logger }) => {
  const options = readOptions(env);
  if (!options.secret) {
    logger?.warn?.('gatehouse: UPSTREAM_SIGNING_SECRET is not set (or not a string): every guarded write will be refused');
  }
  const verdicts = new WeakMap(); // req → verdict, then accountability → verdict

  init('middlewares.before', ({ app }) => {
    app.use((req, res, next) => {
      const kind = guardedRequest(req.method, req.path);
      if (!kind) return next();
      readAndVerify(req, options).then(
        (verdict) => {
          verdict.kind = kind;
          verdicts.set(req, verdict);
          if (verdict.present && !verdict.signed) return next(forbidden(verdict.reason));
          next();
        },
        (err) => next(err),
      );
    });
  });

  init('middlewares.after', ({ app }) => {
    app.use((req, res, next) => {
      const verdict = verdicts.get(req);
      if (!verdict) return next();
      if (req.accountability) verdicts.set(req.accountability, verdict);
      if (verdict.kind === 'items' && !verdict.signed && !isExempt(req.accountability, options)
        && (options.collections === null || guardsCollection(options, itemsCollection(req.path)))) {
        return next(forbidden(verdict.reason));
      }
      next();
    });
  });

  /** The signed identity behind a service call, `undefined` when nothing is to be checked. */
  function identityFor(collection, context) {
    if (!guardsCollection(options, collection)) return undefined;
    const accountability = context?.accountability ?? null;
    if (!accountability) return undefined; // Directus itself, not a request
    const verdict = verdicts.get(accountability);
    if (verdict?.signed) return verdict.identity;
    if (!verdict?.present && isExempt(accountability, options)) return undefined;
    throw forbidden(verdict?.reason ?? NOT_SIGNED);
  }

  /** The stored owners of `keys` in `collection`: Map(String(key) → row). */
  async function storedItems(collection, keys, identity, context) {
    if (keys.length === 0 || !identity.user) return new Map(); // nothing to load, or refused anyway
    const info = context?.schema?.collections?.[collection];
    if (!info?.fields?.[options.ownerField]) throw forbidden(`${collection} has no ${options.ownerField} field`);
    const rows = await context.database
      .select(info.primary, options.ownerField)
      .from(collection)
      .whereIn(info.primary, keys);
    return new Map(rows.map((row) => [String(row[info.primary]), row]));
  }

  filter('items.create', async (payload, meta, context) => {
    const identity = identityFor(meta?.collection, context);
    if (identity === undefined) return payload;
    const reason = ownerDecision(identity, null, payload, false, options);
    if (reason) throw forbidden(reason);
    return payload;
  });

  filter('items.update', async (payload, meta, context) => {
    const identity = identityFor(meta?.collection, context);
    if (identity === undefined || bypasses(identity, options)) return payload;
    const keys = Array.isArray(meta?.keys) ? meta.keys : [];
    const stored = await storedItems(meta.collection, keys, identity, context);
    const reason = updateDecision(identity, keys.map((k) => stored.get(String(k)) ?? null), payload, options);
    if (reason) throw forbidden(reason);
    return payload;
  });

  filter('items.delete', async (keys, meta, context) => {
    const identity = identityFor(meta?.collection, context);
    if (identity === undefined || bypasses(identity, options)) return keys;
    const list = Array.isArray(keys) ? keys : [];
    const stored = await storedItems(meta.collection, list, identity, context);
    const reason = deleteDecision(identity, list.map((k) => stored.get(String(k)) ?? null), options);
    if (reason) throw forbidden(reason);
    return keys;
  });
};

/**
 * Reads the raw body, verifies the signature, and leaves the parsed body where express.json
 * would. Resolves to { present, signed, identity, reason }.
 */
async function readAndVerify(req, options) {
  const kind = bodyKind(req.headers);
  if (kind !== 'json' && kind !== 'other') throw directusError(415, 'UNSUPPORTED_MEDIA_TYPE', `Gatehouse: ${kind}`);
  const body = await readBody(req, options.maxBodyBytes);
  // express.json (body-parser) skips a request whose req._body is set.
  req._body = true;
  req.body = {};
  if (kind === 'json' && body.length > 0) {
    try {
      req.body = parseJsonBody(body);
    } catch (err) {
      throw directusError(400, 'INVALID_PAYLOAD', `Invalid payload. ${err.message}.`);
    }
    req.rawBody = body; // as newer Directus 11 releases keep it
  }

  const present = req.headers['signature'] !== undefined || req.headers['signature-input'] !== undefined;
  if (!present) return { present: false, signed: false, identity: null, reason: NOT_SIGNED };
  const result = await verifyGatehouseRequest({
    method: req.method,
    // Only the path and query are used: as received, behind any prefix a reverse proxy strips.
    url: `http://directus.invalid${options.pathPrefix}${req.originalUrl ?? req.url}`,
    headers: req.headers,
    body,
    secret: options.secret,
    maxAgeSeconds: options.maxAgeSeconds,
  });
  if (!result.ok) return { present: true, signed: false, identity: null, reason: `bad signature (${result.reason})` };
  return { present: true, signed: true, identity: { auth: result.auth, user: result.user, roles: result.roles }, reason: null };
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(directusError(413, 'CONTENT_TOO_LARGE', 'Gatehouse: the body is too large'));
      return;
    }
    const chunks = [];
    let size = 0;
    const onData = (chunk) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume(); // drain and drop the rest
        reject(directusError(413, 'CONTENT_TOO_LARGE', 'Gatehouse: the body is too large'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
