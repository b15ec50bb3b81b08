// A content API that behaves like Cockpit v2 (Cockpit-HQ/Cockpit, 2026-01) on the points that
// matter behind a key-holding proxy, for the quick start and the tests. Its behaviour was
// reimplemented from reading Cockpit's source (modules/App/api.php, modules/Content/api.php,
// modules/Content/bootstrap.php, modules/Content/graphql/*, lib/Lime, lib/MongoLite); where a real
// Cockpit would answer 500 (an uncaught PHP exception or TypeError) the demo answers 400 with the
// header `x-demo-cms-cockpit-status: 500`, so no request can crash it.
//
// Credentials (modules/App/api.php): the `api_key` request parameter wins over the `api-key`
// header (`api_key` header too: PHP maps both to HTTP_API_KEY), which wins over
// `Authorization: Bearer <key>`. Request parameters are PHP's: the query string (names decoded
// like PHP: `api.key`, `api key`, `api+key`, ` api_key`, `api[key` all become `api_key`, a name is
// cut at `%00`, `api[key]` is an array `api`), a POSTed form body, cookies only when
// `requestOrder` includes "C" (PHP without php.ini), and the members of a JSON body (any method,
// any Content-Type containing application/json) merged over them. No key, an empty one or "0"
// means the `public` key: 412 {"error":"Authentication failed"} unless a public role is
// configured. An unknown key: 412 too; a `USR-…` key: 412 (no Cockpit users here); a JWT-shaped
// key (a.b.c): accepted with no role (Cockpit's unfinished JWT branch), so every check is 403.
// A key is a role: per-model permissions read, create, update, delete, publish (or 'admin').
//
//   GET    /api/content/items/{model}       published items only (`_state` = 1 is forced for every
//          key: no permission lists drafts). Query: filter (JSON5, MongoLite operators incl.
//          $where), fields (projection), sort, limit, skip (skip needs limit; both given →
//          {data, meta: {total}}), populate (resolves {_id, _model} links WITHOUT the _state
//          check: a linked draft is revealed). 403 without read, 404 unknown model.
//   GET    /api/content/items?models={...}  several models at once (unreadable ones left out).
//   GET    /api/content/item/{model}        the first published item matching `filter`.
//   GET    /api/content/item/{model}/{id}   one published item; a draft or missing id: 404 with
//          an empty body (Cockpit returns `false`).
//   POST   /api/content/item/{model}        {"data": {...}}. Keeps only `_id`, `_state` and the
//          model's fields (unknown fields silently dropped); create needs create, `_state`
//          defaults to 1 (published), `_cby`/`_mby` are null for an API key. `data._id` makes it
//          an UPDATE of whatever matches that id (update permission only; operators such as
//          {"$ne": ""} or `true` match every item); `_state` is removed on update without
//          publish, but `"_state": null` is not (isset) and unpublishes. An update answers with
//          the sent fields plus `_modified` and `_mby`, and stores nothing when no item matches.
//          404 unknown model (checked first), 412 {"error":"Item data is missing"}, 403.
//   DELETE /api/content/item/{model}/{id}   delete permission; {"success": true} even if absent.
//   GET    /api/content/aggregate/{model}?pipeline=[...]   read permission only. MongoLite
//          aggregation after a forced {$match: {_state: 1}}: $match $sort $limit $skip $project
//          $unset $addFields $count $lookup (literal `from`) $unwind, and the writing stages
//          $out (drop and recreate any collection of the content database, e.g.
//          `collections_posts` is model posts) and $merge (into any collection, whenMatched /
//          whenNotMatched / on). Both answer []. They are recorded in `dangerous`.
//   GET    /api/content/tree/{model}        400 (no tree models here).
//   *      /api/gql                          GraphQL: `query` and `variables` parameters only (a
//          JSON `data` member is ignored). Queries `{ postsModel { _id title } }` (one
//          `{model}Model` per model; args _id limit skip sort filter populate), `content(model:)`;
//          mutations `saveContentItem(model:, data:) { item error }` — like the REST POST but
//          Cockpit's bug is kept: `_state` is applied on update without publish — and
//          `deleteContentItem(model:, id:) { success error }`. Errors as GraphQL `errors` (HTTP
//          200) unless a resolver sets a status (412 no read permission, 403, 404).
//   GET    /api/system/healthcheck           {"status":"ok"}, no key needed.
//   OPTIONS /api/*                           200 with Cockpit's CORS headers (on every /api/ answer).
//   anything else                            404 with an empty body.
//
// Models: posts (title, body, author, tags), comments (post: link, body, author), pages
// (title, body). CLI: node scripts/demo-cms.mjs --port 8789 --read-key K1 --write-key K2
// [--editor-key K3] [--signing-secret S] [--host H]; it prints one "listening" line.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parse as parseToml } from 'smol-toml';
import { pathToFileURL } from 'node:url';
import { verifyGatehouseRequest } from '../examples/verify-signature/verify.mjs';

/** The collection models and their fields (Cockpit field types). */
export const MODELS = {
  posts: [
    { name: 'title', type: 'text' },
    { name: 'body', type: 'wysiwyg' },
    { name: 'author', type: 'text' },
    { name: 'tags', type: 'tags' },
  ],
  comments: [
    { name: 'post', type: 'contentItemLink' },
    { name: 'body', type: 'text' },
    { name: 'author', type: 'text' },
  ],
  pages: [
    { name: 'title', type: 'text' },
    { name: 'body', type: 'wysiwyg' },
  ],
};
export const PERMISSIONS = ['read', 'create', 'update', 'delete', 'publish'];
const ADMIN = 'admin';
const MAX_BODY = 1024 * 1024;
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-credentials': 'true',
  'access-control-max-age': '1000',
  'access-control-allow-headers': 'X-Requested-With, Content-Type, Origin, Cache-Control, Pragma, Authorization, Accept, Accept-Encoding, API-KEY',
  'access-control-allow-methods': 'PUT, POST, GET, OPTIONS, DELETE',
  'access-control-expose-headers': 'false',
};

/** Where Cockpit would fail with an uncaught PHP exception (HTTP 500); the demo answers 400. */
class PhpFailure extends Error {}
const fail = (message) => {
  throw new PhpFailure(message);
};
/** A feature real Cockpit has but the demo does not implement (400). */
class DemoLimit extends Error {}

// ---------------------------------------------------------------------------------------------
// PHP values: JSON arrays and objects both stand for PHP arrays.

const isArr = (v) => v !== null && typeof v === 'object';
const own = (o, k) => (isArr(o) && Object.hasOwn(o, k) ? o[k] : undefined);
const isset = (o, k) => {
  const v = own(o, k);
  return v !== undefined && v !== null;
};
function put(o, k, v) {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  return o;
}
const count = (v) => Object.keys(v).length;
const values = (v) => Object.values(v);
const isIntKey = (k) => /^(0|-?[1-9][0-9]{0,17})$/.test(k);
/** PHP array_is_list: keys 0..n-1 in order. */
const isList = (v) => Array.isArray(v) || Object.keys(v).every((k, i) => k === String(i));
function copyArr(v) {
  const out = {};
  for (const [k, x] of Object.entries(v)) put(out, k, x);
  return out;
}
const clone = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));
function nextIndex(o) {
  let n = 0;
  for (const k of Object.keys(o)) if (isIntKey(k) && Number(k) >= n) n = Number(k) + 1;
  return n;
}
/** PHP array_merge: string keys overwrite, integer keys are appended and renumbered. */
function arrayMerge(a, b) {
  const out = {};
  let n = 0;
  for (const src of [a, b]) {
    for (const [k, v] of Object.entries(src)) {
      if (isIntKey(k)) put(out, String(n++), v);
      else put(out, k, v);
    }
  }
  return out;
}
function truthy(v) {
  if (v === null || v === undefined || v === false) return false;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v !== '' && v !== '0';
  if (isArr(v)) return count(v) > 0;
  return true;
}
const NUMERIC = /^[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[ \t\n\r\v\f]*$/;
const isNumericString = (s) => typeof s === 'string' && NUMERIC.test(s);
const isNumeric = (v) => typeof v === 'number' || isNumericString(v);
const num = (s) => Number(s.trim());
function str(v) {
  if (v === null || v === undefined || v === false) return '';
  if (v === true) return '1';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NAN';
    if (!Number.isFinite(v)) return v > 0 ? 'INF' : '-INF';
    return String(v);
  }
  if (isArr(v)) return 'Array';
  return String(v);
}
function toInt(v) {
  if (v === null || v === undefined || v === false) return 0;
  if (v === true) return 1;
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : 0;
  if (typeof v === 'string') {
    const m = /^[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/.exec(v);
    const n = m ? Number(m[0].trim()) : 0;
    return Number.isFinite(n) ? Math.trunc(n) : 0;
  }
  return count(v) ? 1 : 0;
}
/** PHP 8 `==`. */
function looseEq(a, b) {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (a === null && b === null) return true;
  if (typeof a === 'boolean' || typeof b === 'boolean') return truthy(a) === truthy(b);
  if (a === null) return typeof b === 'string' ? b === '' : !truthy(b);
  if (b === null) return typeof a === 'string' ? a === '' : !truthy(a);
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (typeof a === 'string' && typeof b === 'string') {
    return isNumericString(a) && isNumericString(b) ? num(a) === num(b) : a === b;
  }
  if (typeof a === 'number' && typeof b === 'string') return isNumericString(b) ? a === num(b) : str(a) === b;
  if (typeof a === 'string' && typeof b === 'number') return looseEq(b, a);
  if (isArr(a) && isArr(b)) {
    const ka = Object.keys(a);
    return ka.length === count(b) && ka.every((k) => Object.hasOwn(b, k) && looseEq(a[k], b[k]));
  }
  return false;
}
/** PHP 8 `<=>`. */
function cmp(a, b) {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  const sign = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  if (a === null && typeof b === 'string') return sign('', b);
  if (b === null && typeof a === 'string') return sign(a, '');
  if (typeof a === 'boolean' || typeof b === 'boolean' || a === null || b === null) return Number(truthy(a)) - Number(truthy(b));
  if (typeof a === 'number' && typeof b === 'number') return sign(a, b);
  if (typeof a === 'string' && typeof b === 'string') {
    return isNumericString(a) && isNumericString(b) ? sign(num(a), num(b)) : sign(a, b);
  }
  if (typeof a === 'number' && typeof b === 'string') return isNumericString(b) ? sign(a, num(b)) : sign(str(a), b);
  if (typeof a === 'string' && typeof b === 'number') return -cmp(b, a);
  if (isArr(a) && isArr(b)) {
    if (count(a) !== count(b)) return sign(count(a), count(b));
    for (const [k, v] of Object.entries(a)) {
      if (!Object.hasOwn(b, k)) return 1;
      const c = cmp(v, b[k]);
      if (c) return c;
    }
    return 0;
  }
  return isArr(a) ? 1 : -1;
}
const inArray = (needle, hay) => values(hay).some((v) => looseEq(v, needle));
/** count(array_intersect($a, $b)): elements of a whose string form is in b. */
const intersectCount = (a, b) => values(a).filter((x) => values(b).some((y) => str(x) === str(y))).length;

/** PHP json_encode: sequential arrays as lists, `/` and non-ASCII escaped. */
function phpJsonValue(v) {
  if (v === undefined) return null;
  if (typeof v === 'number' && !Number.isFinite(v)) return null;
  if (!isArr(v)) return v;
  const keys = Object.keys(v);
  if (keys.every((k, i) => k === String(i))) return keys.map((k) => phpJsonValue(v[k]));
  const out = {};
  for (const k of keys) put(out, k, phpJsonValue(v[k]));
  return out;
}
function phpJson(v) {
  return JSON.stringify(phpJsonValue(v))
    .replace(/\//g, '\\/')
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// ---------------------------------------------------------------------------------------------
// PHP request variables: php_default_treat_data + php_register_variable_ex, reimplemented.

function urlDecode(s, plus) {
  const bytes = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c === 0x2b && plus) bytes.push(0x20);
    else if (c < 0x100) bytes.push(c);
    else bytes.push(...Buffer.from(s[i], 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

function phpRegister(target, rawName, value, cookie) {
  let name = rawName;
  const nul = name.indexOf('\0');
  if (nul >= 0) name = name.slice(0, nul);
  name = name.replace(/^ +/, '');
  let base = '';
  let i = 0;
  for (; i < name.length; i++) {
    const c = name[i];
    if (c === ' ' || c === '.') base += '_';
    else if (c === '[') break;
    else base += c;
  }
  if (base.startsWith('__Host-') && !name.startsWith('__Host-')) return;
  if (base.startsWith('__Secure-') && !name.startsWith('__Secure-')) return;
  if (base === '') return;
  const setPlain = (container, index) => {
    if (index === null) put(container, String(nextIndex(container)), value);
    else if (!(cookie && container === target && Object.hasOwn(container, index))) put(container, index, value);
  };
  if (i === name.length) return setPlain(target, base);
  let container = target;
  let index = base;
  let pos = i;
  for (let level = 1; ; level++) {
    if (level > 64) {
      delete target[base];
      return;
    }
    let p = pos + 1;
    const indexStart = p;
    if (/[ \t\n\v\f\r]/.test(name[p] ?? '')) p++;
    let key;
    let next;
    if (name[p] === ']') {
      key = null;
      next = p + 1;
    } else {
      const close = name.indexOf(']', p);
      if (close < 0) {
        if (level === 1) index = `${base}_${name.slice(indexStart).replace(/[ .[]/g, '_')}`;
        return setPlain(container, index);
      }
      key = name.slice(indexStart, close);
      next = close + 1;
    }
    let child;
    if (index === null) {
      child = {};
      put(container, String(nextIndex(container)), child);
    } else {
      child = own(container, index);
      if (!isArr(child)) {
        child = {};
        put(container, index, child);
      }
    }
    container = child;
    index = key;
    if (name[next] === '[') {
      pos = next;
      continue;
    }
    return setPlain(container, index);
  }
}

function parsePhpVars(input, { separator = '&', cookie = false } = {}) {
  const out = {};
  if (!input) return out;
  let n = 0;
  for (let part of input.split(separator)) {
    if (part === '') continue;
    if (cookie) {
      const trimmed = part.replace(/^[ \t\n\v\f\r]+/, '');
      if (trimmed === '' || trimmed[0] === '=') continue;
      part = trimmed;
    }
    if (++n > 1000) break;
    const at = part.indexOf('=');
    const name = at < 0 ? part : part.slice(0, at);
    const raw = at < 0 ? '' : part.slice(at + 1);
    phpRegister(out, cookie ? name : urlDecode(name, true), urlDecode(raw, !cookie), cookie);
  }
  return out;
}

/** php_autoglobal_merge: nested arrays merge, anything else overwrites. */
function mergeGlobals(dest, src) {
  for (const [k, v] of Object.entries(src)) {
    const d = own(dest, k);
    if (isArr(d) && isArr(v)) mergeGlobals(d, v);
    else put(dest, k, v);
  }
}

function depthOf(v) {
  let max = 0;
  const stack = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop();
    if (!isArr(x)) continue;
    if (d > max) max = d;
    for (const c of values(x)) stack.push([c, d + 1]);
  }
  return max;
}

/** $_REQUEST (request_order) with a JSON body merged over it, as Lime\Request builds it. */
function requestParams(req, rawQuery, body, requestOrder) {
  const ctype = String(req.headers['content-type'] ?? '');
  const get = parsePhpVars(rawQuery);
  const post = req.method === 'POST' && /^\s*application\/x-www-form-urlencoded\s*(;|$)/i.test(ctype) ? parsePhpVars(body.toString('latin1')) : {};
  const cookies = /C/i.test(requestOrder) ? parsePhpVars(String(req.headers.cookie ?? ''), { separator: ';', cookie: true }) : {};
  const request = {};
  const sources = {};
  for (const c of requestOrder.toUpperCase()) {
    const [src, label] = c === 'G' ? [get, 'query'] : c === 'P' ? [post, 'form body'] : c === 'C' ? [cookies, 'cookie'] : [null];
    if (!src) continue;
    mergeGlobals(request, src);
    for (const k of Object.keys(src)) sources[k] = label;
  }
  let params = request;
  if (/application\/json/i.test(ctype)) {
    let json = null;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
      if (depthOf(json) > 512) json = null;
    } catch {
      json = null;
    }
    if (truthy(json)) {
      if (!isArr(json)) fail(`array_merge(): Argument #2 must be of type array, ${typeof json} given`);
      params = arrayMerge(request, json);
      for (const k of Object.keys(json)) if (!isIntKey(k)) sources[k] = 'JSON body';
    }
  }
  return {
    request: params,
    sources,
    raw: (name) => own(params, name) ?? null,
    str(name) {
      const v = own(params, name);
      if (v === undefined || v === null) return null;
      return isArr(v) ? phpJson(v) : str(v);
    },
    int(name) {
      const v = own(params, name);
      return v === undefined || v === null ? null : toInt(v);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// JSON5 (Cockpit decodes filter, fields, sort, pipeline and models with json5_decode): strict
// JSON first, then JSON5 (comments, single quotes, unquoted keys incl. \u escapes, trailing
// commas, hex, Infinity/NaN).

function json5Decode(text) {
  if (typeof text !== 'string') throw new SyntaxError('not a string');
  try {
    return JSON.parse(text);
  } catch {
    // fall through to JSON5
  }
  const s = text;
  let i = 0;
  let depth = 0;
  const bad = () => {
    throw new SyntaxError(`JSON5: syntax error at ${i}`);
  };
  const ws = () => {
    for (;;) {
      const c = s[i];
      if (c === undefined) return;
      if (/[\t\n\v\f\r \u00a0\u2028\u2029\ufeff]/.test(c) || /\p{Zs}/u.test(c)) i++;
      else if (c === '/' && s[i + 1] === '/') {
        while (i < s.length && !/[\n\r\u2028\u2029]/.test(s[i])) i++;
      } else if (c === '/' && s[i + 1] === '*') {
        const end = s.indexOf('*/', i + 2);
        if (end < 0) bad();
        i = end + 2;
      } else return;
    }
  };
  const hex = (n) => {
    const h = s.slice(i, i + n);
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) bad();
    i += n;
    return String.fromCharCode(parseInt(h, 16));
  };
  const string = () => {
    const q = s[i++];
    let out = '';
    for (;;) {
      const c = s[i++];
      if (c === undefined || c === '\n' || c === '\r') bad();
      if (c === q) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = s[i++];
      const simple = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
      if (e === undefined) bad();
      else if (e in simple) out += simple[e];
      else if (e === '0') {
        if (/[0-9]/.test(s[i] ?? '')) bad();
        out += '\0';
      } else if (e === 'x') out += hex(2);
      else if (e === 'u') out += hex(4);
      else if (e === '\r') {
        if (s[i] === '\n') i++;
      } else if (/[\n\u2028\u2029]/.test(e)) {
        // line continuation
      } else if (/[1-9]/.test(e)) bad();
      else out += e;
    }
  };
  const ID_START = /[$_\p{ID_Start}]/u;
  const ID_PART = /[$_\p{ID_Continue}\u200c\u200d]/u;
  const identifier = () => {
    let out = '';
    for (;;) {
      let c;
      if (s[i] === '\\') {
        if (s[i + 1] !== 'u') bad();
        i += 2;
        c = hex(4);
        if (!(out ? ID_PART : ID_START).test(c)) bad();
      } else {
        c = s[i];
        if (c === undefined || !(out ? ID_PART : ID_START).test(c)) break;
        i++;
      }
      out += c;
    }
    if (!out) bad();
    return out;
  };
  const number = () => {
    const re = /[+-]?(?:Infinity|NaN|0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/y;
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) bad();
    i = re.lastIndex;
    const t = m[0];
    const sign = t[0] === '-' ? -1 : 1;
    const body = t.replace(/^[+-]/, '');
    if (/^0[xX]/.test(body)) return sign * parseInt(body, 16);
    return sign * Number(body);
  };
  const value = () => {
    ws();
    const c = s[i];
    if (c === '{' || c === '[') {
      if (++depth > 512) bad();
      const isObj = c === '{';
      const out = isObj ? {} : [];
      i++;
      for (;;) {
        ws();
        if (s[i] === (isObj ? '}' : ']')) {
          i++;
          break;
        }
        if (isObj) {
          const k = s[i] === '"' || s[i] === "'" ? string() : identifier();
          ws();
          if (s[i++] !== ':') bad();
          put(out, k, value());
        } else out.push(value());
        ws();
        if (s[i] === ',') i++;
        else if (s[i] !== (isObj ? '}' : ']')) bad();
      }
      depth--;
      return out;
    }
    if (c === '"' || c === "'") return string();
    if (c !== undefined && /[-+.0-9IN]/.test(c)) return number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (s.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return bad();
  };
  const result = value();
  ws();
  if (i < s.length) bad();
  return result;
}

// ---------------------------------------------------------------------------------------------
// MongoLite queries (UtilArrayQuery), projections and sorting, reimplemented.

const TOP_LEVEL = ['$and', '$or', '$where', '$nor', '$expr'];

function nestedLookup(doc, key) {
  if (!key.includes('.')) return Object.hasOwn(doc, key) ? [doc[key]] : [];
  let current = [doc];
  for (const k of key.split('.')) {
    const next = [];
    for (const v of current) {
      if (!isArr(v)) continue;
      if (!Object.hasOwn(v, k) && isList(v)) {
        for (const el of values(v)) if (isArr(el) && Object.hasOwn(el, k)) next.push(el[k]);
      } else if (Object.hasOwn(v, k)) next.push(v[k]);
    }
    if (!next.length) return [];
    current = next;
  }
  return current;
}
function getNested(doc, key) {
  if (/[("']/.test(key)) fail('Unallowed characters used in filter keys');
  const found = nestedLookup(doc, key);
  if (!found.length) return null;
  return found.length === 1 ? (found[0] ?? null) : found;
}
const existsNested = (doc, key) => nestedLookup(doc, key).length > 0;

/** PHP's is_callable on a JSON value: only a [class, method] pair of names can be callable. */
function phpCallable(v) {
  if (!isArr(v) || count(v) !== 2 || !Object.hasOwn(v, '0') || !Object.hasOwn(v, '1')) return false;
  return typeof v[0] === 'string' && /^\\?[A-Za-z_\x80-\uffff][\w\x80-\uffff]*(\\[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)*$/.test(v[0])
    && typeof v[1] === 'string' && /^[A-Za-z_\x80-\uffff][\w\x80-\uffff]*$/.test(v[1]);
}

function matches(doc, criteria, ctx) {
  if (!isArr(criteria)) fail('evaluateCondition(): Argument #2 ($criteria) must be of type array');
  for (const [key, value] of Object.entries(criteria)) {
    if (key[0] === '$' && TOP_LEVEL.includes(key)) {
      if (key === '$where') {
        if (typeof value === 'string' || !phpCallable(value)) fail('$where Function should be callable');
        ctx.danger('$where', `MongoLite calls the PHP function ${value[0]}::${value[1]}(document) for every document (the demo treats its answer as false)`, value);
        return false;
      }
      if (!isArr(value)) return false;
      const subs = values(value);
      if (key === '$and' && !subs.every((c) => matches(doc, c, ctx))) return false;
      if (key === '$or' && !subs.some((c) => matches(doc, c, ctx))) return false;
      if (key === '$nor' && subs.some((c) => matches(doc, c, ctx))) return false;
      if (key === '$expr' && !truthy(evalExpression(value, doc))) return false;
      continue;
    }
    const fv = getNested(doc, key);
    const operators = isArr(value) && count(value) > 0 && Object.keys(value)[0].startsWith('$');
    if (operators && key[0] !== '$' && isset(value, '$exists')) {
      const exists = existsNested(doc, key);
      if (exists !== truthy(value.$exists)) return false;
      const other = copyArr(value);
      delete other.$exists;
      if (count(other) && (!exists || !check(fv, other, ctx))) return false;
    } else if (operators && key[0] !== '$' && isset(value, '$elemMatch') && isArr(fv)) {
      if (!values(fv).some((el) => isArr(el) && matches(el, value.$elemMatch, ctx))) return false;
    } else if (operators) {
      if (!check(fv, value, ctx)) return false;
    } else if (value === null) {
      if (existsNested(doc, key) && fv !== null) return false;
    } else {
      if (!existsNested(doc, key)) return false;
      if (isArr(fv) && !isArr(value)) {
        if (!arrayContains(fv, value)) return false;
      } else if (isArr(value) && !isArr(fv)) {
        if (!inArray(fv, value)) return false;
      } else if (!looseEq(fv, value)) return false;
    }
  }
  return true;
}
function arrayContains(arr, value) {
  return values(arr).some((item) => (isArr(item) ? arrayContains(item, value) : looseEq(item, value)));
}
function check(value, condition, ctx) {
  const geo = ['$geoWithin', '$geoIntersects', '$near'].some((k) => Object.hasOwn(condition, k));
  const all = (v) => Object.entries(condition).every(([k, cv]) => k === '$options' || evaluate(k, v, cv, ctx));
  if (isArr(value) && !geo) {
    const walk = (arr) => values(arr).some((item) => (isArr(item) ? walk(item) : all(item)));
    return walk(value);
  }
  return all(value);
}
function mlCompare(a, b) {
  if ((isNumeric(a) && isNumeric(b)) || (typeof a === 'string' && typeof b === 'string')) return cmp(a, b);
  return cmp(str(a), str(b));
}
function evaluate(func, a, b, ctx) {
  if ((a === null || a === undefined) && func !== '$exists') return false;
  const decoded = (v) => {
    if (isArr(v)) return v;
    let d = null;
    try {
      d = JSON.parse(str(v));
    } catch {
      d = null;
    }
    if (!truthy(d)) return [];
    if (!isArr(d)) fail('Argument must be of type array');
    return d;
  };
  switch (func) {
    case '$type': {
      const t = a === null ? 'null' : Array.isArray(a) || (isArr(a) && isList(a)) ? 'array' : isArr(a) ? 'object' : typeof a === 'boolean' ? 'bool' : typeof a;
      return t === b || (b === 'number' && typeof a === 'number') || (b === 'boolean' && t === 'bool');
    }
    case '$not':
      if (typeof b === 'string') return typeof a === 'string' ? !regexMatch(b, a, ctx) : false;
      return isArr(b) ? !check(a, b, ctx) : false;
    case '$eq':
      return looseEq(a, b);
    case '$ne':
      return !looseEq(a, b);
    case '$gte':
      return mlCompare(a, b) >= 0;
    case '$gt':
      return mlCompare(a, b) > 0;
    case '$lte':
      return mlCompare(a, b) <= 0;
    case '$lt':
      return mlCompare(a, b) < 0;
    case '$in':
      if (isArr(a)) return isArr(b) && intersectCount(a, b) > 0;
      return isArr(b) && inArray(a, b);
    case '$nin':
      if (isArr(a)) return isArr(b) && intersectCount(a, b) === 0;
      return isArr(b) && !inArray(a, b);
    case '$has':
      if (isArr(b)) fail('Invalid argument for $has array not supported');
      return inArray(b, decoded(a));
    case '$all':
      if (!isArr(b)) fail('Invalid argument for $all option must be array');
      return intersectCount(b, decoded(a)) === count(b);
    case '$regex':
      if (typeof b !== 'string') return false;
      if (typeof a === 'string') return Boolean(regexMatch(b, a, ctx));
      if (isArr(a)) return Boolean(regexMatch(b, values(a).map(str).join(' '), ctx));
      return false;
    case '$exists':
      return truthy(b) ? a !== null && a !== undefined : a === null || a === undefined;
    case '$size':
      return toInt(b) === count(decoded(a));
    case '$mod': {
      if (!isArr(b)) fail('Invalid argument for $mod option must be array');
      const d = toInt(own(b, '0'));
      if (d === 0) fail('Modulo by zero');
      return looseEq(toInt(a) % d, own(b, '1') ?? 0);
    }
    case '$near':
    case '$geoWithin':
    case '$geoIntersects':
      return false;
    case '$text': {
      const needle = str(isArr(b) ? own(b, '$search') : b).toLowerCase();
      return str(a).toLowerCase().includes(needle);
    }
    case '$elemMatch':
      if (!isArr(a)) return false;
      if (!isArr(b)) fail('Invalid argument for $elemMatch - must be an array/object');
      return values(a).some((el) => isArr(el) && matches(el, b, ctx));
    default:
      return fail(`Condition not valid ... Use ${func} for custom operations`);
  }
}
function operand(op, doc) {
  if (typeof op === 'string' && op.length > 1 && op[0] === '$') return getNested(doc, op.slice(1));
  if (isArr(op) && count(op) > 0 && Object.keys(op)[0][0] === '$') return evalExpression(op, doc);
  return op;
}
function evalExpression(expr, doc) {
  const pair = (k) => {
    const v = own(expr, k);
    return [operand(own(v, '0'), doc), operand(own(v, '1'), doc)];
  };
  if (isset(expr, '$eq')) {
    const [x, y] = pair('$eq');
    return JSON.stringify(x) === JSON.stringify(y);
  }
  for (const [k, f] of [['$gt', (c) => c > 0], ['$gte', (c) => c >= 0], ['$lt', (c) => c < 0], ['$lte', (c) => c <= 0]]) {
    if (isset(expr, k)) return f(cmp(...pair(k)));
  }
  if (isset(expr, '$ne')) return !looseEq(...pair('$ne'));
  if (isset(expr, '$and')) return values(expr.$and).every((e) => truthy(evalExpression(e, doc)));
  if (isset(expr, '$or')) return values(expr.$or).some((e) => truthy(evalExpression(e, doc)));
  if (isset(expr, '$not')) return !truthy(evalExpression(expr.$not, doc));
  const arith = { $add: (x, y) => x + y, $multiply: (x, y) => x * y };
  for (const [k, f] of Object.entries(arith)) {
    if (isset(expr, k)) return values(expr[k]).map((o) => Number(operand(o, doc)) || 0).reduce(f, k === '$add' ? 0 : 1);
  }
  if (isset(expr, '$subtract') || isset(expr, '$divide')) {
    const k = isset(expr, '$subtract') ? '$subtract' : '$divide';
    if (count(expr[k]) !== 2) fail(`${k} requires exactly 2 operands`);
    const [x, y] = pair(k).map((v) => Number(v) || 0);
    if (k === '$subtract') return x - y;
    return y === 0 ? null : x / y;
  }
  if (isset(expr, '$cond')) {
    const c = expr.$cond;
    const [cond, then, otherwise] = isArr(c) && !Object.hasOwn(c, '0') ? [own(c, 'if'), own(c, 'then'), own(c, 'else')] : [own(c, '0'), own(c, '1'), own(c, '2')];
    if (!isArr(cond)) fail('evaluateExpression(): Argument #1 ($expr) must be of type array');
    return truthy(evalExpression(cond, doc)) ? operand(then, doc) : operand(otherwise, doc);
  }
  if (count(expr) === 1 && Object.hasOwn(expr, '0')) return operand(expr[0], doc);
  return fail(`Unrecognized expression operator: ${phpJson(expr)}`);
}

/** Cockpit's regex: `/…/flags` used as written, anything else becomes `/…/iu` (PCRE). */
function regexMatch(pattern, subject, ctx) {
  const src = pattern[0] === '/' ? pattern : `/${pattern}/iu`;
  const re = compilePcre(src, ctx);
  if (!re) return false; // preg_match() failed: a warning and `false`
  return re.test(subject) ? 1 : 0;
}
function compilePcre(src, ctx) {
  const open = src[0];
  if (!open || /[A-Za-z0-9\\\s]/.test(open)) return null;
  const close = { '(': ')', '[': ']', '{': '}', '<': '>' }[open] ?? open;
  let i = 1;
  while (i < src.length && src[i] !== close) i += src[i] === '\\' ? 2 : 1;
  if (i >= src.length) return null;
  let body = src.slice(1, i);
  let flags = '';
  for (const m of src.slice(i + 1)) {
    if (m === 'i' || m === 'm' || m === 's' || m === 'u') flags += flags.includes(m) ? '' : m;
    else if (m === 'x') body = body.replace(/\\#/g, '\u0000').replace(/#[^\n]*/g, '').replace(/\s+/g, '').replace(/\u0000/g, '\\#');
    else if (!'ADSUXJn \n\r'.includes(m)) return null;
  }
  // PCRE gives up after pcre.backtrack_limit steps (preg_match returns false); JavaScript would
  // hang, so patterns with nested or overlapping quantifiers are treated as that failure.
  if (body.length > 1000 || /\((?:[^()\\]|\\.)*(?:[+*}]|\|)(?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,)/.test(body)) {
    ctx.danger('$regex', 'a pattern that can backtrack catastrophically (ReDoS); PCRE stops at its backtrack limit', src);
    return null;
  }
  for (const f of [flags, flags.replace('u', '')]) {
    try {
      return new RegExp(body, f);
    } catch {
      // try without the unicode flag, then give up
    }
  }
  return null;
}

function hasInclusion(fields) {
  let inclusion = false;
  let conflict = false;
  const stack = [fields];
  while (stack.length) {
    for (const [k, v] of Object.entries(stack.pop())) {
      if (isArr(v)) stack.push(v);
      else if (truthy(v)) inclusion = true;
      else if (k !== '_id') conflict = true;
      if (inclusion && conflict) fail('Projection cannot have a mix of inclusion and exclusion.');
    }
  }
  return inclusion;
}
function projectDoc(doc, fields, inclusion) {
  if (isList(doc) && count(doc) > 0) return values(doc).map((v) => (isArr(v) ? projectDoc(v, fields, inclusion) : v));
  const out = {};
  for (const [f, v] of Object.entries(doc)) {
    const spec = own(fields, f);
    if (isArr(v) && isArr(spec)) put(out, f, projectDoc(v, spec, inclusion));
    else if (inclusion && spec !== undefined && spec !== null && looseEq(spec, 1)) put(out, f, v);
    else if (!inclusion && (spec === undefined || spec === null || !looseEq(spec, 0))) put(out, f, v);
  }
  return out;
}
function project(docs, fields) {
  if (!isArr(fields)) fail('Projection::onDocuments(): Argument #2 ($fields) must be of type array');
  const inclusion = hasInclusion(fields);
  const normalized = {};
  for (const [f, v] of Object.entries(fields)) {
    if (!f.includes('.')) {
      put(normalized, f, v);
      continue;
    }
    let node = normalized;
    const parts = f.split('.');
    parts.forEach((part, idx) => {
      if (idx === parts.length - 1) put(node, part, v);
      else {
        if (!isArr(own(node, part))) put(node, part, {});
        node = node[part];
      }
    });
  }
  return docs.map((doc) => {
    if (!isArr(doc)) return doc;
    const id = own(doc, '_id');
    const out = projectDoc(doc, normalized, inclusion);
    if (!truthy(id) || !truthy(own(fields, '_id') ?? true)) return out;
    const withId = put({}, '_id', id);
    for (const [k, v] of Object.entries(out)) if (k !== '_id') put(withId, k, v);
    return withId;
  });
}
/** SQLite's ORDER BY on MongoLite's document_key(): NULL < numbers < text. */
function sqlSort(docs, sort) {
  const rank = (v) => (v === null || v === undefined ? 0 : typeof v === 'number' || typeof v === 'boolean' ? 1 : 2);
  const key = (doc, field) => {
    const found = nestedLookup(doc, field);
    const v = found.length ? found[0] : null;
    return isArr(v) ? JSON.stringify(v) : v;
  };
  return [...docs].sort((a, b) => {
    for (const [field, direction] of Object.entries(sort)) {
      const x = key(a, field);
      const y = key(b, field);
      let c = rank(x) - rank(y);
      if (!c && rank(x) === 1) c = Number(x) - Number(y);
      if (!c && rank(x) === 2) c = x < y ? -1 : x > y ? 1 : 0;
      if (c) return looseEq(direction, -1) ? -c : c;
    }
    return 0;
  });
}
/** PHP array_slice. */
function slice(arr, offset, length) {
  const n = arr.length;
  let start = offset < 0 ? Math.max(n + offset, 0) : Math.min(offset, n);
  let end = length === undefined ? n : length < 0 ? n + length : start + length;
  if (end < start) end = start;
  return arr.slice(start, end);
}
function setPath(doc, path, value) {
  const parts = path.split('.');
  let node = doc;
  parts.forEach((part, i) => {
    if (i === parts.length - 1) put(node, part, value);
    else {
      if (!isArr(own(node, part))) put(node, part, {});
      node = node[part];
    }
  });
}
function unsetPath(doc, path) {
  const parts = path.split('.');
  let node = doc;
  for (const part of parts.slice(0, -1)) {
    node = own(node, part);
    if (!isArr(node)) return;
  }
  if (isArr(node)) delete node[parts.at(-1)];
}
/** MongoLite _fixForMongo: `_id` strings lose a leading @ or #. */
function fixIds(data, infinite) {
  if (!isArr(data)) return data;
  const strip = (v) => (typeof v === 'string' && (v[0] === '@' || v[0] === '#') ? v.slice(1) : v);
  for (const [k, v] of Object.entries(data)) {
    if (isArr(v) && infinite) fixIds(v, infinite);
    if (k !== '_id' && !k.endsWith('._id')) continue;
    if (typeof v === 'string') put(data, k, strip(v));
    else if (isArr(v)) {
      for (const op of ['$in', '$nin']) if (isArr(own(v, op))) for (const [i, x] of Object.entries(v[op])) put(v[op], i, strip(x));
      if (typeof own(v, '$ne') === 'string') put(v, '$ne', strip(v.$ne));
    }
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// The content database (Cockpit's `content` MongoLite database).

const newId = () => randomBytes(12).toString('hex');
const collectionOf = (model) => `collections_${model}`;
const SAFE_COLLECTION = (name) => (typeof name === 'string' && name && name.length <= 64 && !/[^a-zA-Z0-9_-]/.test(name) ? name : null);

function defaultItem(model) {
  const item = {};
  for (const f of MODELS[model]) put(item, f.name, null);
  return item;
}

function seed() {
  const at = Math.floor(Date.UTC(2026, 0, 1) / 1000);
  const item = (model, fields, state) => {
    const doc = { ...defaultItem(model), ...fields };
    Object.assign(doc, { _state: state, _modified: at, _mby: null, _created: at, _cby: null, _id: newId() });
    return doc;
  };
  const welcome = item('posts', { title: 'Welcome to the demo', body: 'Read anonymously through Gatehouse.', author: 'usr_seed_alice', tags: ['welcome'] }, 1);
  const second = item('posts', { title: 'Second post', body: 'Also published.', author: 'usr_seed_bob', tags: [] }, 1);
  const draft = item('posts', { title: 'A draft', body: 'Drafts are never listed through the API.', author: 'usr_seed_alice', tags: [] }, 0);
  return {
    collections_posts: [welcome, second, draft],
    collections_comments: [
      item('comments', { post: { _id: welcome._id, _model: 'posts' }, body: 'Nice post!', author: 'usr_seed_bob' }, 1),
      item('comments', { post: { _id: draft._id, _model: 'posts' }, body: 'Looking forward to this one.', author: 'usr_seed_bob' }, 1),
    ],
    collections_pages: [item('pages', { title: 'About', body: 'A page.' }, 1)],
    singletons: [],
  };
}

function insert(collection, doc) {
  const stored = clone(doc);
  if (!isset(stored, '_id')) put(stored, '_id', newId());
  collection.push(stored);
  return stored._id;
}
/** MongoLite Collection::update: every matching document, `$set` merge (or replace), `_id` kept. */
function updateWhere(collection, criteria, data, merge, ctx) {
  const hits = collection.filter((d) => matches(d, criteria, ctx));
  for (const doc of hits) {
    const id = doc._id;
    if (merge) {
      for (const [k, v] of Object.entries(data)) setPath(doc, k, clone(v));
    } else {
      for (const k of Object.keys(doc)) delete doc[k];
      for (const [k, v] of Object.entries(data)) put(doc, k, clone(v));
    }
    put(doc, '_id', id);
  }
  return hits.length;
}

function find(db, model, { filter = {}, fields = null, sort = null, limit = null, skip = null } = {}, ctx) {
  const criteria = fixIds(isArr(filter) ? filter : {}, true);
  let docs = db[collectionOf(model)].filter((d) => matches(d, criteria, ctx));
  if (sort !== null && sort !== undefined && !isArr(sort)) fail('Cursor::sort(): Argument #1 ($sorts) must be of type ?array');
  if (truthy(sort)) docs = sqlSort(docs, sort);
  if (truthy(limit)) {
    // SQL `LIMIT n [OFFSET m]`: the offset only comes with a limit; a negative limit is no limit.
    const offset = truthy(skip) && skip > 0 ? skip : 0;
    docs = limit > 0 ? docs.slice(offset, offset + limit) : docs.slice(offset);
  }
  docs = docs.map(clone);
  if (truthy(fields)) docs = project(docs, fields);
  return docs;
}

function allowedModels(ctx, role) {
  return Object.keys(MODELS).filter((m) => roleAllows(role, `content/${m}/read`));
}
/** Content::populate: replaces {_id, _model} links by the linked item — drafts included. */
function populate(value, maxlevel, level, process, ctx, cache = new Map()) {
  if (!isArr(value)) return value;
  if ((maxlevel > -1 && level > maxlevel + 1) || level > 32) return value;
  const out = Array.isArray(value) ? [...value] : copyArr(value);
  for (const [k, v] of Object.entries(out)) {
    if (!isArr(v)) continue;
    put(out, k, populate(v, maxlevel, level + 1, process, ctx, cache));
    if (!isset(v, '_id') || !isset(v, '_model')) continue;
    const model = str(v._model);
    if (process.role !== undefined && process.role !== null && !allowedModels(ctx, process.role).includes(model)) {
      put(out, k, null);
      continue;
    }
    if (!MODELS[model]) fail(`Try to access unknown model "${model}"`);
    const ref = `${model}/${str(v._id)}`;
    if (!cache.has(ref)) {
      const found = find(ctx.db, model, { filter: { _id: str(v._id) } }, ctx)[0];
      cache.set(ref, found ?? false);
      if (found && !looseEq(found._state, 1)) ctx.danger('populate', `populate revealed the unpublished ${model} item ${found._id} (_state ${phpJson(found._state)})`, ref);
    }
    let resolved = clone(cache.get(ref));
    if (resolved) {
      resolved = populate(resolved, maxlevel, level + 1, process, ctx, cache);
      put(resolved, '_model', model);
    }
    put(out, k, resolved);
  }
  return out;
}

/** Content::saveItem for a collection model. */
function saveItem(ctx, model, input) {
  let item = copyArr(input);
  if (isset(item, '_state') && !isNumeric(item._state)) delete item._state;
  const isUpdate = isset(item, '_id');
  if (!isUpdate) item = arrayMerge(defaultItem(model), item);
  const now = Math.floor(Date.now() / 1000);
  put(item, '_modified', now);
  put(item, '_mby', null);
  if (!isUpdate) {
    put(item, '_created', now);
    put(item, '_state', own(item, '_state') ?? 0);
    put(item, '_cby', null);
  }
  fixIds(item, false);
  const collection = ctx.db[collectionOf(model)];
  if (isset(item, '_id')) {
    const n = updateWhere(collection, { _id: item._id }, item, true, ctx);
    if (n > 1) ctx.danger('update', `one save with data._id ${phpJson(item._id)} updated ${n} items`, item._id);
  } else put(item, '_id', insert(collection, item));
  return item;
}

/** Content::items, with Cockpit's populate. */
function contentItems(ctx, model, options, process) {
  const docs = find(ctx.db, model, options, ctx);
  return process.populate ? populate(docs, process.populate, 0, process, ctx) : docs;
}

// ---------------------------------------------------------------------------------------------
// MongoLite aggregation.

const KEEP_GOING = ['$lookup', '$group', '$facet', '$bucket', '$sortByCount', '$count', '$out', '$merge'];

function aggregate(ctx, model, pipeline) {
  const stages = [...pipeline];
  let filter = {};
  if (isArr(stages[0]) && isset(stages[0], '$match')) filter = stages.shift().$match;
  let data = ctx.db[collectionOf(model)].filter((d) => matches(d, filter, ctx)).map(clone);
  for (const stage of stages) {
    if (!isArr(stage)) fail('array_key_first(): Argument #1 ($array) must be of type array');
    const op = Object.keys(stage)[0];
    if (!op || !op.startsWith('$')) continue;
    const def = stage[op];
    const needArray = () => {
      if (!isArr(def)) fail(`${op} stage: argument must be of type array`);
    };
    switch (op) {
      case '$match':
        needArray();
        data = data.filter((d) => matches(d, def, ctx));
        break;
      case '$skip':
        data = slice(data, toInt(def));
        break;
      case '$limit':
        data = slice(data, 0, toInt(def));
        break;
      case '$project':
        data = project(data, def);
        break;
      case '$unset':
        if (typeof def !== 'string') needArray();
        data = data.map((d) => {
          const doc = clone(d);
          for (const f of typeof def === 'string' ? [def] : values(def)) {
            const path = str(f).replace(/^\$+/, '');
            if (path) unsetPath(doc, path);
          }
          return doc;
        });
        break;
      case '$sort':
        needArray();
        data = [...data].sort((a, b) => {
          for (const [field, order] of Object.entries(def)) {
            const direction = order === -1 || (typeof order === 'string' && order.toLowerCase() === 'desc') ? -1 : 1;
            const c = cmp(getNested(a, field), getNested(b, field));
            if (c) return c * direction;
          }
          return 0;
        });
        break;
      case '$addFields':
        needArray();
        data = data.map((d) => {
          const doc = clone(d);
          for (const [field, expr] of Object.entries(def)) setPath(doc, field, clone(operand(expr, d)));
          return doc;
        });
        break;
      case '$count':
        if (typeof def !== 'string' || !def) fail('$count needs non-empty string output field name.');
        data = [put({}, def, data.length)];
        break;
      case '$lookup': {
        needArray();
        for (const f of ['from', 'localField', 'foreignField', 'as']) if (!isset(def, f)) fail(`$lookup needs '${f}'.`);
        if (!isArr(def.from)) fail("'from' must be an array.");
        const foreign = values(def.from);
        data = data.map((d) => {
          const local = getNested(d, str(def.localField));
          const hits = local === null ? [] : foreign.filter((f) => isArr(f) && JSON.stringify(getNested(f, str(def.foreignField))) === JSON.stringify(local));
          return put(clone(d), str(def.as), hits);
        });
        break;
      }
      case '$unwind': {
        const spec = typeof def === 'string' ? { path: def } : def;
        if (!isArr(spec) || typeof own(spec, 'path') !== 'string') fail('$unwind requires a path');
        const path = spec.path.replace(/^\$/, '');
        const keepEmpty = truthy(own(spec, 'preserveNullAndEmptyArrays'));
        data = data.flatMap((d) => {
          const v = getNested(d, path);
          if (!isArr(v) || count(v) === 0) return keepEmpty || (v !== null && !isArr(v)) ? [d] : [];
          return values(v).map((x) => {
            const doc = clone(d);
            setPath(doc, path, x);
            return doc;
          });
        });
        break;
      }
      case '$out': {
        if (typeof def !== 'string') fail('out(): Argument #2 ($outputCollection) must be of type string');
        if (!def) fail('$out requires a valid collection name');
        const name = SAFE_COLLECTION(def) ?? fail(`Invalid collection name for $out: ${def}`);
        ctx.danger('$out', `dropped and recreated the collection ${name} with ${data.length} documents`, name);
        if (!ctx.db[name]) ctx.db[name] = [];
        ctx.db[name].length = 0;
        for (const d of data) insert(ctx.db[name], d);
        data = [];
        break;
      }
      case '$merge': {
        needArray();
        if (!Object.hasOwn(def, 'into')) fail('$merge requires "into" field specifying target collection');
        const name = SAFE_COLLECTION(def.into) ?? fail(`Invalid collection name for $merge: ${str(def.into)}`);
        const whenMatched = own(def, 'whenMatched') ?? 'merge';
        const whenNotMatched = own(def, 'whenNotMatched') ?? 'insert';
        const on = own(def, 'on') ?? '_id';
        ctx.danger('$merge', `merged ${data.length} documents into the collection ${name}`, name);
        if (!ctx.db[name]) ctx.db[name] = [];
        const target = ctx.db[name];
        for (const d of data) {
          const criteria = {};
          for (const f of isArr(on) ? values(on) : [on]) if (isset(d, str(f))) put(criteria, str(f), d[str(f)]);
          const existing = target.find((t) => matches(t, criteria, ctx));
          if (existing) {
            if (whenMatched === 'merge') updateWhere(target, criteria, d, true, ctx);
            else if (whenMatched === 'replace') updateWhere(target, criteria, d, false, ctx);
            else if (whenMatched === 'fail') fail('$merge failed: duplicate key violation');
            else if (whenMatched !== 'keepExisting') fail(`Unsupported whenMatched option: ${str(whenMatched)}`);
          } else if (whenNotMatched === 'insert') insert(target, d);
          else if (whenNotMatched === 'fail') fail('$merge failed: insert into non-existent document');
          else if (whenNotMatched !== 'discard') fail(`Unsupported whenNotMatched option: ${str(whenNotMatched)}`);
        }
        data = [];
        break;
      }
      case '$group':
      case '$sample':
      case '$facet':
      case '$bucket':
      case '$sortByCount':
      case '$geoNear':
        throw new DemoLimit(`The demo CMS does not implement the ${op} stage (MongoLite does)`);
      default:
        fail(`Unsupported aggregation stage: ${op}`);
    }
    if (data.length === 0 && !KEEP_GOING.includes(op)) break;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Roles and keys.

function roleAllows(role, permission) {
  return role === ADMIN || (role instanceof Set && role.has(permission));
}
function makeRole(spec, label) {
  if (spec === ADMIN) return ADMIN;
  if (!isArr(spec) || Array.isArray(spec)) throw new Error(`startDemoCms: ${label} must be 'admin' or { model: [permission…] }`);
  const role = new Set();
  for (const [model, list] of Object.entries(spec)) {
    const names = Array.isArray(list) ? list : isArr(list) ? Object.keys(list).filter((k) => list[k]) : null;
    if (!names) throw new Error(`startDemoCms: ${label}.${model} must list permissions`);
    for (const p of names) {
      if (!PERMISSIONS.includes(p)) throw new Error(`startDemoCms: unknown permission ${p} (use ${PERMISSIONS.join(', ')})`);
      for (const m of model === '*' ? Object.keys(MODELS) : [model]) role.add(`content/${m}/${p}`);
    }
  }
  return role;
}
function buildKeys({ readKey, writeKey, editorKey, keys = {}, publicPermissions }) {
  const table = new Map();
  const add = (key, spec, label) => {
    if (typeof key !== 'string' || !key) throw new Error(`startDemoCms: ${label} must be a non-empty string`);
    if (table.has(key)) throw new Error(`startDemoCms: the key ${label} is configured twice`);
    table.set(key, makeRole(spec, label));
  };
  if (readKey !== undefined) add(readKey, { '*': ['read'] }, 'readKey');
  if (writeKey !== undefined) add(writeKey, { '*': ['read', 'create', 'update'] }, 'writeKey');
  if (editorKey !== undefined) add(editorKey, { '*': PERMISSIONS }, 'editorKey');
  for (const [key, spec] of Object.entries(keys)) add(key, spec, `keys[${key}]`);
  if (publicPermissions !== undefined && publicPermissions !== null) add('public', publicPermissions, 'publicPermissions');
  return table;
}

// ---------------------------------------------------------------------------------------------
// REST endpoints (modules/Content/api.php).

const notFound = Symbol('false');
/** An answer with a status other than 200. */
class Reply {
  constructor(code, body) {
    this.status = code;
    this.body = body;
  }
}
const status = (code, body) => new Reply(code, body);

function modelMissing(name) {
  return status(404, { error: `Model <${name}> not found` });
}
function decodeOption(value, label) {
  try {
    return { value: json5Decode(value) };
  } catch {
    return { error: status(400, { error: `<${label}> is not valid json` }) };
  }
}
function restProcess(ctx, P) {
  const populate = P.int('populate');
  return truthy(populate) ? { populate, role: ctx.role } : {};
}

const ENDPOINTS = [
  ['/content/item/{model}', {
    GET(ctx, P, { model }) {
      if (!MODELS[model]) return modelMissing(model);
      if (!ctx.allowed(`content/${model}/read`)) return status(403, { error: 'Permission denied' });
      let filter = P.str('filter');
      const fieldsRaw = P.str('fields');
      let fields = null;
      if (truthy(filter)) {
        const d = decodeOption(filter, 'filter');
        if (d.error) return d.error;
        filter = d.value;
      }
      if (truthy(fieldsRaw)) {
        const d = decodeOption(fieldsRaw, 'fields');
        if (d.error) return d.error;
        fields = d.value;
      }
      if (!isArr(filter)) filter = {};
      else filter = copyArr(filter);
      put(filter, '_state', 1);
      const item = contentItems(ctx, model, { filter, fields, limit: 1 }, restProcess(ctx, P))[0];
      return item ?? notFound;
    },
    POST(ctx, P, { model: name }) {
      const model = MODELS[name] ? name : null;
      const data = P.raw('data');
      if (!model) return modelMissing(name);
      if (!truthy(data) || !isArr(data)) return status(412, { error: 'Item data is missing' });
      const defaults = put(defaultItem(model), '_state', 1);
      let item = copyArr(data);
      if (!isset(item, '_id')) {
        if (!ctx.allowed(`content/${model}/create`)) return status(403, { error: 'Permission denied' });
        item = arrayMerge(defaults, item);
      } else {
        if (!ctx.allowed(`content/${model}/update`)) return status(403, { error: 'Permission denied' });
        if (isset(item, '_state') && !ctx.allowed(`content/${model}/publish`)) delete item._state;
      }
      const allowedKeys = ['_id', ...Object.keys(defaults)];
      for (const k of Object.keys(item)) if (!allowedKeys.includes(k)) delete item[k];
      return saveItem(ctx, model, item);
    },
  }],
  ['/content/item/{model}/{id}', {
    GET(ctx, P, { model, id }) {
      if (!MODELS[model]) return modelMissing(model);
      if (!ctx.allowed(`content/${model}/read`)) return status(403, { error: 'Permission denied' });
      const fieldsRaw = P.str('fields');
      let fields = null;
      if (truthy(fieldsRaw)) {
        const d = decodeOption(fieldsRaw, 'fields');
        if (d.error) return d.error;
        fields = d.value;
      }
      const item = contentItems(ctx, model, { filter: { _id: id, _state: 1 }, fields, limit: 1 }, restProcess(ctx, P))[0];
      return item ?? notFound;
    },
    DELETE(ctx, P, { model: name, id }) {
      if (!MODELS[name]) return modelMissing(name);
      if (!ctx.allowed(`content/${name}/delete`)) return status(403, { error: 'Permission denied' });
      const collection = ctx.db[collectionOf(name)];
      const keep = collection.filter((d) => !matches(d, { _id: id }, ctx));
      collection.length = 0;
      collection.push(...keep);
      return { success: true };
    },
  }],
  ['/content/items/{model}', {
    GET(ctx, P, { model }) {
      if (!MODELS[model]) return modelMissing(model);
      if (!ctx.allowed(`content/${model}/read`)) return status(403, { error: 'Permission denied' });
      const options = {};
      for (const [k, v] of [['limit', P.int('limit')], ['skip', P.int('skip')], ['filter', P.str('filter')], ['sort', P.str('sort')], ['fields', P.str('fields')]]) {
        if (v !== null) options[k] = v;
      }
      for (const prop of ['filter', 'fields', 'sort']) {
        if (!(prop in options)) continue;
        const d = decodeOption(options[prop], prop);
        if (d.error) return d.error;
        options[prop] = d.value;
      }
      options.filter = isArr(options.filter) ? copyArr(options.filter) : {};
      put(options.filter, '_state', 1);
      const items = contentItems(ctx, model, options, restProcess(ctx, P));
      if ('skip' in options && 'limit' in options) {
        return { data: items, meta: { total: find(ctx.db, model, { filter: options.filter }, ctx).length } };
      }
      return items;
    },
  }],
  ['/content/items', {
    GET(ctx, P) {
      const raw = P.str('models');
      if (!truthy(raw)) return status(412, { error: '<models> parameter is missing' });
      let models;
      try {
        models = json5Decode(raw);
      } catch {
        return status(412, { error: '<models> is not valid json' });
      }
      if (!isArr(models)) fail('foreach() argument must be of type array|object');
      const out = {};
      const populateParam = P.int('populate');
      for (const [key, opts] of Object.entries(models)) {
        if (!isArr(opts)) fail('Cannot access offset of type string on string');
        const m = str(own(opts, 'model') ?? key);
        if (!MODELS[m] || !ctx.allowed(`content/${m}/read`)) continue;
        const options = {};
        for (const k of ['filter', 'sort', 'fields', 'limit', 'skip']) if (isset(opts, k)) options[k] = opts[k];
        for (const k of ['limit', 'skip']) {
          if (k in options && !isNumeric(options[k])) fail(`Cursor::${k}(): Argument #1 must be of type ?int`);
          if (k in options) options[k] = toInt(options[k]);
        }
        const process = truthy(populateParam) || isset(opts, 'populate') ? { populate: toInt(own(opts, 'populate') ?? populateParam), role: ctx.role } : {};
        options.filter = isArr(options.filter) ? copyArr(options.filter) : {};
        put(options.filter, '_state', 1);
        const items = contentItems(ctx, m, options, process);
        put(out, key, 'skip' in options && 'limit' in options
          ? { data: items, meta: { total: find(ctx.db, m, { filter: options.filter }, ctx).length } }
          : items);
      }
      return out;
    },
  }],
  ['/content/aggregate/{model}', {
    GET(ctx, P, { model: name }) {
      const model = MODELS[name] ? name : null;
      const raw = P.str('pipeline');
      if (!model) return modelMissing(name);
      if (!ctx.allowed(`content/${name}/read`)) return status(403, { error: 'Permission denied' });
      let pipeline;
      try {
        pipeline = json5Decode(raw);
      } catch {
        return status(400, { error: 'Pipeline is not valid json' });
      }
      if (!isArr(pipeline) || !isList(pipeline)) return status(400, { error: 'Pipeline is not valid list format' });
      const items = aggregate(ctx, model, [{ $match: { _state: 1 } }, ...values(pipeline)]);
      const process = restProcess(ctx, P);
      return process.populate ? populate(items, process.populate, 0, process, ctx) : items;
    },
  }],
  ['/content/tree/{model}', {
    GET(ctx, P, { model }) {
      if (!MODELS[model]) return modelMissing(model);
      if (!ctx.allowed(`content/${model}/read`)) return status(403, { error: 'Permission denied' });
      return status(400, { error: 'Permission denied' });
    },
  }],
];
const ENDPOINT_PATTERNS = ENDPOINTS.map(([pattern, methods]) => [
  new RegExp(`^${pattern.replace(/\{([a-zA-Z0-9_-]+)\}/g, '(?<$1>[a-zA-Z0-9_-]+)')}$`),
  methods,
]);

function restRoute(ctx, P, path, method) {
  for (const [re, methods] of ENDPOINT_PATTERNS) {
    const m = re.exec(path);
    if (methods[method] && m) return methods[method](ctx, P, { ...m.groups });
  }
  return notFound;
}

// ---------------------------------------------------------------------------------------------
// GraphQL (a small hand-written parser and executor for Cockpit's schema).

class GqlError extends Error {
  constructor(message, loc) {
    super(message);
    this.loc = loc;
  }
}
const located = (e, path) => ({ message: e.message, ...(e.loc ? { locations: [e.loc] } : {}), ...(path ? { path } : {}) });

function gqlLex(src) {
  const tokens = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const loc = (at) => ({ line, column: at - lineStart + 1 });
  for (;;) {
    while (i < src.length) {
      const c = src[i];
      if (c === '\ufeff' || c === ' ' || c === '\t' || c === ',') i++;
      else if (c === '\n' || c === '\r') {
        i += c === '\r' && src[i + 1] === '\n' ? 2 : 1;
        line++;
        lineStart = i;
      } else if (c === '#') {
        while (i < src.length && src[i] !== '\n' && src[i] !== '\r') i++;
      } else break;
    }
    if (i >= src.length) {
      tokens.push({ kind: 'EOF', value: '<EOF>', loc: loc(i) });
      return tokens;
    }
    const c = src[i];
    const l = loc(i);
    if ('!$&()[]{}:=@|'.includes(c)) {
      tokens.push({ kind: 'punct', value: c, loc: l });
      i++;
    } else if (c === '.') {
      if (!src.startsWith('...', i)) throw new GqlError('Syntax Error: Unexpected character: ".".', l);
      tokens.push({ kind: 'punct', value: '...', loc: l });
      i += 3;
    } else if (/[_A-Za-z]/.test(c)) {
      const re = /[_0-9A-Za-z]*/y;
      re.lastIndex = i + 1;
      re.exec(src);
      tokens.push({ kind: 'name', value: src.slice(i, re.lastIndex), loc: l });
      i = re.lastIndex;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const re = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
      re.lastIndex = i;
      const m = re.exec(src);
      if (!m || /[_A-Za-z.0-9]/.test(src[re.lastIndex] ?? '')) throw new GqlError('Syntax Error: Invalid number.', l);
      tokens.push({ kind: m[2] || m[3] ? 'float' : 'int', value: m[0], loc: l });
      i = re.lastIndex;
    } else if (src.startsWith('"""', i)) {
      let j = i + 3;
      let raw = '';
      for (;;) {
        if (j >= src.length) throw new GqlError('Syntax Error: Unterminated string.', l);
        if (src.startsWith('"""', j)) break;
        if (src.startsWith('\\"""', j)) {
          raw += '"""';
          j += 4;
          continue;
        }
        if (src[j] === '\n') {
          line++;
          lineStart = j + 1;
        }
        raw += src[j++];
      }
      const lines = raw.split(/\r\n|\n|\r/);
      const indents = lines.slice(1).filter((x) => x.trim()).map((x) => x.match(/^[ \t]*/)[0].length);
      const indent = indents.length ? Math.min(...indents) : 0;
      const trimmed = lines.map((x, k) => (k ? x.slice(indent) : x));
      while (trimmed.length && !trimmed[0].trim()) trimmed.shift();
      while (trimmed.length && !trimmed.at(-1).trim()) trimmed.pop();
      tokens.push({ kind: 'string', value: trimmed.join('\n'), loc: l });
      i = j + 3;
    } else if (c === '"') {
      let j = i + 1;
      let v = '';
      for (;;) {
        const ch = src[j];
        if (ch === undefined || ch === '\n' || ch === '\r') throw new GqlError('Syntax Error: Unterminated string.', l);
        j++;
        if (ch === '"') break;
        if (ch !== '\\') {
          v += ch;
          continue;
        }
        const e = src[j++];
        const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in simple) v += simple[e];
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(j, j + 4))) {
          v += String.fromCharCode(parseInt(src.slice(j, j + 4), 16));
          j += 4;
        } else throw new GqlError(`Syntax Error: Invalid character escape sequence: \\${e ?? ''}.`, l);
      }
      tokens.push({ kind: 'string', value: v, loc: l });
      i = j;
    } else throw new GqlError(`Syntax Error: Unexpected character: "${c}".`, l);
  }
}

function gqlParse(src) {
  const t = gqlLex(src);
  let p = 0;
  const describe = (tok) => (tok.kind === 'EOF' ? '<EOF>' : tok.kind === 'punct' ? `"${tok.value}"` : `${{ name: 'Name', int: 'Int', float: 'Float', string: 'String' }[tok.kind]} "${tok.value}"`);
  const at = (kind, value) => t[p].kind === kind && (value === undefined || t[p].value === value);
  const unexpected = (tok = t[p]) => new GqlError(`Syntax Error: Unexpected ${describe(tok)}.`, tok.loc);
  const expect = (kind, value) => {
    if (!at(kind, value)) throw new GqlError(`Syntax Error: Expected ${value ? `"${value}"` : 'Name'}, found ${describe(t[p])}.`, t[p].loc);
    return t[p++];
  };
  const name = () => expect('name').value;
  const value = (isConst) => {
    const tok = t[p];
    if (at('punct', '$')) {
      if (isConst) throw unexpected();
      p++;
      return { kind: 'var', name: name(), loc: tok.loc };
    }
    if (at('punct', '[')) {
      p++;
      const items = [];
      while (!at('punct', ']')) {
        if (at('EOF')) throw unexpected();
        items.push(value(isConst));
      }
      p++;
      return { kind: 'list', values: items, loc: tok.loc };
    }
    if (at('punct', '{')) {
      p++;
      const fields = [];
      while (!at('punct', '}')) {
        const n = name();
        expect('punct', ':');
        fields.push({ name: n, value: value(isConst) });
      }
      p++;
      return { kind: 'object', fields, loc: tok.loc };
    }
    if (['int', 'float', 'string'].includes(tok.kind)) {
      p++;
      return { kind: tok.kind, value: tok.value, loc: tok.loc };
    }
    if (tok.kind === 'name') {
      p++;
      if (tok.value === 'true' || tok.value === 'false') return { kind: 'bool', value: tok.value === 'true', loc: tok.loc };
      if (tok.value === 'null') return { kind: 'null', loc: tok.loc };
      return { kind: 'enum', value: tok.value, loc: tok.loc };
    }
    throw unexpected();
  };
  const args = (isConst) => {
    if (!at('punct', '(')) return [];
    p++;
    const list = [];
    do {
      const loc = t[p].loc;
      const n = name();
      expect('punct', ':');
      list.push({ name: n, value: value(isConst), loc });
    } while (!at('punct', ')'));
    p++;
    return list;
  };
  const directives = (isConst) => {
    const list = [];
    while (at('punct', '@')) {
      const loc = t[p++].loc;
      list.push({ name: name(), args: args(isConst), loc });
    }
    return list;
  };
  const type = () => {
    let ty;
    if (at('punct', '[')) {
      p++;
      ty = { kind: 'list', of: type() };
      expect('punct', ']');
    } else ty = { kind: 'named', name: name() };
    if (at('punct', '!')) {
      p++;
      ty = { kind: 'nonnull', of: ty };
    }
    return ty;
  };
  const selectionSet = () => {
    expect('punct', '{');
    const list = [];
    do list.push(selection());
    while (!at('punct', '}'));
    p++;
    return list;
  };
  const selection = () => {
    const loc = t[p].loc;
    if (at('punct', '...')) {
      p++;
      if (at('name') && t[p].value !== 'on') return { kind: 'spread', name: name(), directives: directives(false), loc };
      let typeCondition = null;
      if (at('name', 'on')) {
        p++;
        typeCondition = name();
      }
      return { kind: 'inline', typeCondition, directives: directives(false), selectionSet: selectionSet(), loc };
    }
    let alias = null;
    let fieldName = name();
    if (at('punct', ':')) {
      p++;
      alias = fieldName;
      fieldName = name();
    }
    return { kind: 'field', alias, name: fieldName, args: args(false), directives: directives(false), selectionSet: at('punct', '{') ? selectionSet() : null, loc };
  };
  const definitions = [];
  do {
    const loc = t[p].loc;
    if (at('punct', '{')) {
      definitions.push({ kind: 'op', operation: 'query', name: null, vars: [], selectionSet: selectionSet(), loc });
    } else if (at('name') && ['query', 'mutation', 'subscription'].includes(t[p].value)) {
      const operation = t[p++].value;
      const opName = at('name') ? name() : null;
      const vars = [];
      if (at('punct', '(')) {
        p++;
        do {
          const vloc = t[p].loc;
          expect('punct', '$');
          const n = name();
          expect('punct', ':');
          const ty = type();
          let defaultValue;
          if (at('punct', '=')) {
            p++;
            defaultValue = value(true);
          }
          directives(true);
          vars.push({ name: n, type: ty, defaultValue, loc: vloc });
        } while (!at('punct', ')'));
        p++;
      }
      directives(false);
      definitions.push({ kind: 'op', operation, name: opName, vars, selectionSet: selectionSet(), loc });
    } else if (at('name', 'fragment')) {
      p++;
      if (at('name', 'on')) throw unexpected();
      const n = name();
      expect('name', 'on');
      const typeCondition = name();
      directives(false);
      definitions.push({ kind: 'frag', name: n, typeCondition, selectionSet: selectionSet(), loc });
    } else throw unexpected();
  } while (!at('EOF'));
  return definitions;
}

const scalar = (n) => ({ kind: 'scalar', name: n });
const STRING = scalar('String');
const INT = scalar('Int');
const FLOAT = scalar('Float');
const BOOLEAN = scalar('Boolean');
const ID = scalar('ID');
const JSON_TYPE = scalar('JsonType');
const INPUT_TYPES = { String: STRING, Int: INT, Float: FLOAT, Boolean: BOOLEAN, ID, JsonType: JSON_TYPE };
const nonNull = (of) => ({ kind: 'nonnull', of });
const listOf = (of) => ({ kind: 'list', of });
const typeName = (ty) => (ty.kind === 'nonnull' ? `${typeName(ty.of)}!` : ty.kind === 'list' ? `[${typeName(ty.of)}]` : ty.name);
const unwrap = (ty) => (ty.kind === 'nonnull' || ty.kind === 'list' ? unwrap(ty.of) : ty);

function buildSchema() {
  const modelTypes = {};
  const query = { kind: 'object', name: 'Query', fields: {} };
  for (const [model, fields] of Object.entries(MODELS)) {
    const type = {
      kind: 'object',
      name: `${model}Model`,
      fields: {
        _id: { type: nonNull(STRING) },
        _state: { type: nonNull(INT) },
        _cby: { type: nonNull(STRING) },
        _created: { type: nonNull(INT) },
        _mby: { type: nonNull(STRING) },
        _modified: { type: nonNull(INT) },
      },
    };
    for (const f of fields) {
      type.fields[f.name] = { type: ['text', 'wysiwyg', 'code', 'color', 'date', 'datetime', 'time'].includes(f.type) ? STRING : f.type === 'tags' ? listOf(STRING) : JSON_TYPE };
    }
    modelTypes[model] = type;
    query.fields[`${model}Model`] = {
      type: listOf(type),
      args: {
        _id: { type: STRING }, limit: { type: INT }, skip: { type: INT }, sort: { type: JSON_TYPE },
        locale: { type: STRING, default: 'default' }, populate: { type: INT, default: 0 },
        projection: { type: STRING, default: '' }, filter: { type: JSON_TYPE, default: '' },
      },
      resolve: (args, ctx) => {
        if (!ctx.allowed(`content/${model}/read`)) {
          ctx.status = 412;
          return [];
        }
        const options = {};
        if (isset(args, 'limit')) options.limit = args.limit;
        if (isset(args, 'skip')) options.skip = args.skip;
        if (isset(args, 'sort')) options.sort = args.sort;
        if (truthy(own(args, '_id'))) options.filter = { _id: args._id };
        else if (truthy(own(args, 'filter'))) options.filter = args.filter;
        options.filter = isArr(options.filter) ? copyArr(options.filter) : {};
        put(options.filter, '_state', 1);
        return contentItems(ctx, model, options, truthy(args.populate) ? { populate: args.populate } : {});
      },
    };
  }
  query.fields.content = {
    type: listOf(JSON_TYPE),
    args: {
      model: { type: nonNull(STRING) }, limit: { type: INT }, skip: { type: INT }, sort: { type: JSON_TYPE },
      locale: { type: STRING, default: 'default' }, populate: { type: INT, default: 0 },
      fields: { type: JSON_TYPE, default: null }, filter: { type: JSON_TYPE, default: [] },
    },
    resolve: (args, ctx) => {
      const model = args.model;
      if (!MODELS[model]) return [];
      if (!ctx.allowed(`content/${model}/read`)) {
        ctx.status = 412;
        return [];
      }
      const options = {};
      for (const k of ['limit', 'skip', 'fields', 'sort', 'filter']) if (isset(args, k)) options[k] = args[k];
      options.filter = isArr(options.filter) ? copyArr(options.filter) : {};
      put(options.filter, '_state', 1);
      return contentItems(ctx, model, options, truthy(args.populate) ? { populate: args.populate } : {});
    },
  };
  query.fields.contentTree = {
    type: listOf(JSON_TYPE),
    args: { model: { type: nonNull(STRING) }, parent: { type: STRING, default: null }, locale: { type: STRING, default: 'default' }, populate: { type: INT, default: 0 }, fields: { type: JSON_TYPE, default: null } },
    resolve: (args, ctx) => {
      if (!MODELS[args.model]) return [];
      ctx.status = ctx.allowed(`content/${args.model}/read`) ? 400 : 412;
      return [];
    },
  };
  const saveOutput = { kind: 'object', name: 'saveContentItemOutput', fields: { item: { type: JSON_TYPE }, error: { type: STRING } } };
  const deleteOutput = { kind: 'object', name: 'deleteContentItemOutput', fields: { success: { type: BOOLEAN }, error: { type: STRING } } };
  const mutation = {
    kind: 'object',
    name: 'Mutation',
    fields: {
      saveContentItem: {
        type: saveOutput,
        args: { model: { type: nonNull(STRING) }, data: { type: nonNull(JSON_TYPE) } },
        resolve: (args, ctx) => {
          const model = MODELS[args.model] ? args.model : null;
          let data = args.data;
          if (!model) {
            ctx.status = 404;
            return { error: `Model <${args.model}> not found` };
          }
          if (!truthy(data) || !isArr(data)) {
            ctx.status = 412;
            return { error: 'Item data is missing' };
          }
          const defaults = put(defaultItem(model), '_state', 1);
          data = copyArr(data);
          if (!isset(data, '_id')) {
            if (!ctx.allowed(`content/${model}/create`)) {
              ctx.status = 403;
              return { error: 'Permission denied' };
            }
            data = arrayMerge(defaults, data);
          } else if (!ctx.allowed(`content/${model}/update`)) {
            ctx.status = 403;
            return { error: 'Permission denied' };
          }
          // Cockpit checks the publish permission here but unsets `$item['_state']`, a variable
          // that does not exist: `_state` stays in `$data` and is applied.
          const allowedKeys = ['_id', ...Object.keys(defaults)];
          for (const k of Object.keys(data)) if (!allowedKeys.includes(k)) delete data[k];
          return { item: saveItem(ctx, model, data) };
        },
      },
      deleteContentItem: {
        type: deleteOutput,
        args: { model: { type: nonNull(STRING) }, id: { type: nonNull(STRING) } },
        resolve: (args, ctx) => {
          if (!MODELS[args.model]) {
            ctx.status = 404;
            return { error: `Model <${args.model}> not found` };
          }
          if (!ctx.allowed(`content/${args.model}/delete`)) {
            ctx.status = 403;
            return { error: 'Permission denied' };
          }
          const collection = ctx.db[collectionOf(args.model)];
          const keep = collection.filter((d) => !matches(d, fixIds({ _id: args.id }), ctx));
          collection.length = 0;
          collection.push(...keep);
          return { success: true };
        },
      },
    },
  };
  const types = { Query: query, Mutation: mutation, saveContentItemOutput: saveOutput, deleteContentItemOutput: deleteOutput };
  for (const ty of Object.values(modelTypes)) types[ty.name] = ty;
  return { query, mutation, types };
}
const SCHEMA = buildSchema();

function printValue(node) {
  switch (node.kind) {
    case 'var': return `$${node.name}`;
    case 'string': return JSON.stringify(node.value);
    case 'null': return 'null';
    case 'list': return `[${node.values.map(printValue).join(', ')}]`;
    case 'object': return `{${node.fields.map((f) => `${f.name}: ${printValue(f.value)}`).join(', ')}}`;
    default: return String(node.value);
  }
}

/** Why a literal does not fit an input type (null when it fits). */
function literalProblem(node, ty, defined) {
  if (node.kind === 'var') return defined.has(node.name) ? null : `Variable "$${node.name}" is not defined.`;
  const varsIn = (n) => (n.kind === 'var' ? [n] : n.kind === 'list' ? n.values.flatMap(varsIn) : n.kind === 'object' ? n.fields.flatMap((f) => varsIn(f.value)) : []);
  const undefinedVar = varsIn(node).find((v) => !defined.has(v.name));
  if (undefinedVar) return `Variable "$${undefinedVar.name}" is not defined.`;
  const wrong = `Expected value of type "${typeName(ty)}", found ${printValue(node)}.`;
  if (ty.kind === 'nonnull') return node.kind === 'null' ? wrong : literalProblem(node, ty.of, defined);
  if (node.kind === 'null') return null;
  if (ty.kind === 'list') return node.kind === 'list' ? node.values.map((v) => literalProblem(v, ty.of, defined)).find(Boolean) ?? null : literalProblem(node, ty.of, defined);
  const ok = {
    String: node.kind === 'string',
    ID: node.kind === 'string' || node.kind === 'int',
    Int: node.kind === 'int' && Math.abs(Number(node.value)) <= 2147483647,
    Float: node.kind === 'int' || node.kind === 'float',
    Boolean: node.kind === 'bool',
    JsonType: true,
  }[ty.name];
  return ok ? null : wrong;
}

/** A literal's value; JsonType literals follow Cockpit's parseLiteral (numbers as floats, variables inside as null). */
function literalValue(node, ty, vars) {
  if (node.kind === 'var') return Object.hasOwn(vars, node.name) ? vars[node.name] : undefined;
  if (ty.kind === 'nonnull') return literalValue(node, ty.of, vars);
  if (node.kind === 'null') return null;
  if (ty.kind === 'list') return node.kind === 'list' ? node.values.map((v) => literalValue(v, ty.of, vars) ?? null) : [literalValue(node, ty.of, vars)];
  if (ty.name === 'JsonType') {
    const parse = (n) => {
      if (n.kind === 'string' || n.kind === 'bool') return n.value;
      if (n.kind === 'int' || n.kind === 'float') return parseFloat(n.value);
      if (n.kind === 'object') {
        const o = {};
        for (const f of n.fields) put(o, f.name, parse(f.value));
        return o;
      }
      if (n.kind === 'list') return n.values.map(parse);
      return null;
    };
    return parse(node);
  }
  if (ty.name === 'Int') return parseInt(node.value, 10);
  if (ty.name === 'Float') return parseFloat(node.value);
  return node.value;
}

function coerceVariable(v, ty) {
  if (ty.kind === 'nonnull') {
    if (v === null) throw new Error(`Expected non-nullable type "${typeName(ty)}" not to be null.`);
    return coerceVariable(v, ty.of);
  }
  if (v === null) return null;
  if (ty.kind === 'list') return Array.isArray(v) ? v.map((x) => coerceVariable(x, ty.of)) : [coerceVariable(v, ty.of)];
  switch (ty.name) {
    case 'String':
      if (typeof v !== 'string') throw new Error(`String cannot represent a non string value: ${phpJson(v)}`);
      return v;
    case 'ID':
      if (typeof v !== 'string' && !Number.isInteger(v)) throw new Error(`ID cannot represent value: ${phpJson(v)}`);
      return String(v);
    case 'Int':
      if (!Number.isInteger(v) || Math.abs(v) > 2147483647) throw new Error(`Int cannot represent non-integer value: ${phpJson(v)}`);
      return v;
    case 'Float':
      if (typeof v !== 'number') throw new Error(`Float cannot represent non numeric value: ${phpJson(v)}`);
      return v;
    case 'Boolean':
      if (typeof v !== 'boolean') throw new Error(`Boolean cannot represent a non boolean value: ${phpJson(v)}`);
      return v;
    default:
      return v;
  }
}

function serialize(ty, v) {
  switch (ty.name) {
    case 'String':
      if (isArr(v)) throw new GqlError(`String cannot represent value: ${phpJson(v)}`);
      return str(v);
    case 'Int': {
      const n = typeof v === 'boolean' ? Number(v) : isNumericString(v) ? num(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new GqlError(`Int cannot represent non-integer value: ${phpJson(v)}`);
      return n;
    }
    case 'Boolean':
      return truthy(v);
    default:
      return v;
  }
}

const PROPAGATE = Symbol('null with an error');

function executeGraphql(query, variables, ctx) {
  let definitions;
  try {
    definitions = gqlParse(query);
  } catch (e) {
    if (e instanceof GqlError) return { errors: [located(e)] };
    throw e;
  }
  const operations = definitions.filter((d) => d.kind === 'op');
  const fragments = Object.fromEntries(definitions.filter((d) => d.kind === 'frag').map((f) => [f.name, f]));
  if (operations.length === 0) return { errors: [{ message: 'Must provide an operation.' }] };
  // Cockpit passes no operation name to GraphQL::executeQuery.
  if (operations.length > 1) return { errors: [{ message: 'Must provide operation name if query contains multiple operations.' }] };
  const op = operations[0];
  const root = op.operation === 'query' ? SCHEMA.query : op.operation === 'mutation' ? SCHEMA.mutation : null;
  if (!root) return { errors: [located(new GqlError('Schema is not configured to execute subscription operation.', op.loc))] };

  // Validation.
  const errors = [];
  const defined = new Set(op.vars.map((v) => v.name));
  for (const v of op.vars) {
    if (!INPUT_TYPES[unwrap(v.type).name]) errors.push(located(new GqlError(`Unknown type "${unwrap(v.type).name}".`, v.loc)));
  }
  const seen = new Set();
  const validate = (selections, type) => {
    for (const sel of selections) {
      for (const d of sel.directives ?? []) {
        if (d.name !== 'skip' && d.name !== 'include') errors.push(located(new GqlError(`Unknown directive "@${d.name}".`, d.loc)));
      }
      if (sel.kind === 'spread' || sel.kind === 'inline') {
        const frag = sel.kind === 'spread' ? fragments[sel.name] : sel;
        if (!frag) {
          errors.push(located(new GqlError(`Unknown fragment "${sel.name}".`, sel.loc)));
          continue;
        }
        if (frag.typeCondition && !SCHEMA.types[frag.typeCondition]) errors.push(located(new GqlError(`Unknown type "${frag.typeCondition}".`, sel.loc)));
        else if (frag.typeCondition && frag.typeCondition !== type.name) {
          errors.push(located(new GqlError(`Fragment cannot be spread here as objects of type "${type.name}" can never be of type "${frag.typeCondition}".`, sel.loc)));
        } else if (sel.kind === 'inline' || !seen.has(sel.name)) {
          if (sel.kind === 'spread') seen.add(sel.name);
          validate(frag.selectionSet, type);
        }
        continue;
      }
      if (sel.name === '__typename') {
        if (sel.selectionSet) errors.push(located(new GqlError('Field "__typename" must not have a selection since type "String!" has no subfields.', sel.loc)));
        continue;
      }
      const def = type.fields[sel.name];
      if (!def) {
        errors.push(located(new GqlError(`Cannot query field "${sel.name}" on type "${type.name}".`, sel.loc)));
        continue;
      }
      for (const a of sel.args) {
        const ad = def.args?.[a.name];
        if (!ad) errors.push(located(new GqlError(`Unknown argument "${a.name}" on field "${type.name}.${sel.name}".`, a.loc)));
        else {
          const problem = literalProblem(a.value, ad.type, defined);
          if (problem) errors.push(located(new GqlError(problem, a.loc)));
        }
      }
      for (const [an, ad] of Object.entries(def.args ?? {})) {
        if (ad.type.kind === 'nonnull' && ad.default === undefined && !sel.args.some((a) => a.name === an)) {
          errors.push(located(new GqlError(`Field "${sel.name}" argument "${an}" of type "${typeName(ad.type)}" is required, but it was not provided.`, sel.loc)));
        }
      }
      const named = unwrap(def.type);
      if (named.kind === 'object' && !sel.selectionSet) {
        errors.push(located(new GqlError(`Field "${sel.name}" of type "${typeName(def.type)}" must have a selection of subfields. Did you mean "${sel.name} { ... }"?`, sel.loc)));
      } else if (named.kind !== 'object' && sel.selectionSet) {
        errors.push(located(new GqlError(`Field "${sel.name}" must not have a selection since type "${typeName(def.type)}" has no subfields.`, sel.loc)));
      } else if (sel.selectionSet) validate(sel.selectionSet, named);
    }
  };
  validate(op.selectionSet, root);
  if (errors.length) return { errors };

  // Variables.
  const vars = {};
  for (const v of op.vars) {
    const given = isArr(variables) && !Array.isArray(variables) && Object.hasOwn(variables, v.name);
    if (!given) {
      if (v.defaultValue !== undefined) vars[v.name] = literalValue(v.defaultValue, v.type, {});
      else if (v.type.kind === 'nonnull') errors.push(located(new GqlError(`Variable "$${v.name}" of required type "${typeName(v.type)}" was not provided.`, v.loc)));
      continue;
    }
    try {
      vars[v.name] = coerceVariable(variables[v.name], v.type);
    } catch (e) {
      errors.push(located(new GqlError(`Variable "$${v.name}" got invalid value ${phpJson(variables[v.name])}; ${e.message}`, v.loc)));
    }
  }
  if (errors.length) return { errors };

  const included = (sel) => (sel.directives ?? []).every((d) => {
    const ifArg = d.args.find((a) => a.name === 'if');
    const on = ifArg ? Boolean(literalValue(ifArg.value, BOOLEAN, vars)) : true;
    return d.name === 'skip' ? !on : d.name === 'include' ? on : true;
  });
  const collect = (selections, type, out = new Map()) => {
    for (const sel of selections) {
      if (!included(sel)) continue;
      if (sel.kind === 'field') {
        const key = sel.alias ?? sel.name;
        if (!out.has(key)) out.set(key, []);
        out.get(key).push(sel);
      } else {
        const frag = sel.kind === 'spread' ? fragments[sel.name] : sel;
        if (!frag.typeCondition || frag.typeCondition === type.name) collect(frag.selectionSet, type, out);
      }
    }
    return out;
  };
  const runErrors = [];
  const complete = (ty, value, nodes, info) => {
    if (ty.kind === 'nonnull') {
      const r = completeNullable(ty.of, value, nodes, info);
      if (r === PROPAGATE) return PROPAGATE;
      if (r === null) {
        runErrors.push({ message: `Cannot return null for non-nullable field "${info.parent}.${info.field}".`, locations: [nodes[0].loc], path: info.path });
        return PROPAGATE;
      }
      return r;
    }
    const r = completeNullable(ty, value, nodes, info);
    return r === PROPAGATE ? null : r;
  };
  const completeNullable = (ty, value, nodes, info) => {
    if (value === null || value === undefined) return null;
    if (ty.kind === 'list') {
      if (!isArr(value)) {
        runErrors.push({ message: `Expected field ${info.parent}.${info.field} to return iterable, but got: ${phpJson(value)}.`, locations: [nodes[0].loc], path: info.path });
        return PROPAGATE;
      }
      const out = [];
      for (const [i, v] of values(value).entries()) {
        const r = complete(ty.of, v, nodes, { ...info, path: [...info.path, i] });
        if (r === PROPAGATE) return PROPAGATE;
        out.push(r);
      }
      return out;
    }
    if (ty.kind === 'scalar') {
      try {
        return serialize(ty, value);
      } catch (e) {
        runErrors.push({ message: e.message, locations: [nodes[0].loc], path: info.path });
        return PROPAGATE;
      }
    }
    return execute(nodes.flatMap((n) => n.selectionSet ?? []), ty, value, info.path);
  };
  const execute = (selections, type, source, path) => {
    const out = {};
    for (const [key, nodes] of collect(selections, type)) {
      const node = nodes[0];
      if (node.name === '__typename') {
        put(out, key, type.name);
        continue;
      }
      const def = type.fields[node.name];
      const fieldPath = [...path, key];
      let r;
      try {
        let value;
        if (def.resolve) {
          const args = {};
          for (const [an, ad] of Object.entries(def.args ?? {})) {
            const given = node.args.find((a) => a.name === an);
            const v = given ? literalValue(given.value, ad.type, vars) : undefined;
            if (v !== undefined) args[an] = v;
            else if (ad.default !== undefined) args[an] = ad.default;
          }
          value = def.resolve(args, ctx);
        } else value = own(source, node.name) ?? null;
        r = complete(def.type, value, nodes, { parent: type.name, field: node.name, path: fieldPath });
      } catch (e) {
        if (!(e instanceof PhpFailure || e instanceof DemoLimit || e instanceof GqlError)) throw e;
        // webonyx hides the message of a non-client-safe exception.
        runErrors.push({ message: e instanceof GqlError ? e.message : 'Internal server error', locations: [node.loc], path: fieldPath });
        r = def.type.kind === 'nonnull' ? PROPAGATE : null;
      }
      if (r === PROPAGATE) return PROPAGATE;
      put(out, key, r);
    }
    return out;
  };
  const data = execute(op.selectionSet, root, {}, []);
  return runErrors.length ? { errors: runErrors, data: data === PROPAGATE ? null : data } : { data };
}

// ---------------------------------------------------------------------------------------------
// The server.

function rawParts(url) {
  if (url.startsWith('/')) {
    const q = url.indexOf('?');
    return q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
  }
  try {
    const u = new URL(url);
    return [u.pathname, u.search.slice(1)];
  } catch {
    return [url, ''];
  }
}
function lastHeader(req, pattern) {
  let value;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (pattern.test(req.rawHeaders[i])) value = req.rawHeaders[i + 1];
  return value;
}

/**
 * Starts the demo CMS. Options: port (0 = any), host, readKey (read on every model), writeKey
 * (read, create, update), editorKey (read, create, update, delete, publish), keys
 * ({ [key]: 'admin' | { [model or '*']: [permission…] } }), publicPermissions (the role used
 * without a key; default none: 412), requestOrder (PHP request_order, 'GP'; 'GPC' adds cookies),
 * signingSecret (verify Gatehouse's signature first). Returns { url, port, requests, items, db,
 * dangerous, close }: `requests` records every request ({ method, url, path, query, headers,
 * body, verified, credential, dangerous }), `items.posts` etc. are the live stored items (the same
 * arrays as `db.collections_posts`…), `db` every collection of the content database, `dangerous`
 * the $out/$merge/$where/populate/… events seen.
 */
export async function startDemoCms(options = {}) {
  const { port = 0, host = '127.0.0.1', signingSecret, requestOrder = 'GP' } = options;
  const keyTable = buildKeys(options);
  if (keyTable.size === 0) throw new Error('startDemoCms needs at least one key (readKey, writeKey, editorKey, keys or publicPermissions)');
  const db = Object.assign(Object.create(null), seed());
  const items = {};
  for (const model of Object.keys(MODELS)) items[model] = db[collectionOf(model)];
  const requests = [];
  const dangerous = [];

  const server = http.createServer((req, res) => {
    const [path, query] = rawParts(req.url ?? '/');
    const record = { method: req.method, url: req.url, path, query: query ? `?${query}` : '', headers: req.headers, body: '', verified: null, credential: null, dangerous: [] };
    requests.push(record);
    handle(req, res, record, path, query).catch((err) => {
      const php = err instanceof PhpFailure;
      const limit = err instanceof DemoLimit;
      if (!res.headersSent) {
        res.writeHead(400, { 'content-type': 'application/json', ...(path.startsWith('/api/') ? CORS : {}), ...(php ? { 'x-demo-cms-cockpit-status': '500' } : {}) });
      }
      res.end(JSON.stringify({ error: php || limit ? err.message : 'Bad request' }));
    });
  });

  async function handle(req, res, record, path, rawQuery) {
    const chunks = [];
    let size = 0;
    for await (const chunk of req) {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    record.body = body.toString('utf8');
    const api = path.startsWith('/api/');
    const send = (code, value, headers = {}) => {
      const empty = value === notFound;
      res.writeHead(code, { 'content-type': empty ? 'text/html' : 'application/json', ...(api ? CORS : {}), ...headers });
      res.end(empty ? '' : phpJson(value));
    };
    if (size > MAX_BODY) return send(413, { error: 'Request body too large' });
    if (signingSecret) {
      try {
        record.verified = await verifyGatehouseRequest({
          method: req.method,
          url: new URL(req.url, `http://${req.headers.host ?? host}`).href,
          headers: req.headers,
          body,
          secret: signingSecret,
        });
      } catch {
        record.verified = { ok: false, reason: 'unreadable signature' };
        return send(401, { error: 'signature: unreadable' });
      }
      if (!record.verified.ok) return send(403, { error: `signature: ${record.verified.reason}` });
    }
    if (!api) return send(404, notFound);
    if (req.method === 'OPTIONS') return send(200, notFound, { 'content-type': 'application/json; charset=UTF-8' });
    if (path === '/api/system/healthcheck') return send(200, { status: 'ok' });

    const P = requestParams(req, rawQuery, body, requestOrder);
    // modules/App/api.php: the api_key parameter, else the api-key header, else a Bearer token.
    let token = P.raw('api_key');
    let source = token === null ? null : `api_key (${P.sources.api_key ?? 'request'})`;
    if (token === null) {
      const header = lastHeader(req, /^api[-_]key$/i);
      if (header !== undefined) {
        token = header;
        source = 'api-key header';
      } else {
        const m = /Bearer\s(\S+)/.exec(String(req.headers.authorization ?? '').trim());
        token = m ? m[1] : null;
        source = m ? 'Authorization: Bearer' : null;
      }
    }
    if (isArr(token)) fail('preg_match(): Argument #2 ($subject) must be of type string, array given');
    if (!truthy(token)) token = 'public';
    else token = str(token);
    record.credential = { source: token === 'public' && source === null ? null : source, key: token };

    let role;
    if (token !== 'public' && /^USR-/.test(token)) return send(412, { error: 'Authentication failed' });
    if (token !== 'public' && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\n?$/.test(token)) role = null;
    else if (keyTable.has(token)) role = keyTable.get(token);
    else return send(412, { error: 'Authentication failed' });

    const ctx = {
      db,
      role,
      status: 200,
      allowed: (permission) => roleAllows(role, permission),
      danger(kind, detail, value) {
        const key = `${kind} ${JSON.stringify(value)}`;
        if (record.dangerous.some((d) => d.key === key)) return;
        const event = { kind, detail, value: clone(value), method: req.method, path, key };
        record.dangerous.push(event);
        dangerous.push(event);
      },
    };
    if (path === '/api/gql') {
      let gqlQuery = P.raw('query') ?? '{}';
      const variables = P.raw('variables');
      if (typeof gqlQuery === 'number') gqlQuery = str(gqlQuery);
      if (typeof gqlQuery !== 'string') fail('GraphQL::executeQuery(): Argument #2 ($source) must be of type GraphQL\\Language\\Source|string');
      if (variables !== null && !isArr(variables)) fail('GraphQL::executeQuery(): Argument #5 ($variableValues) must be of type ?array');
      const result = executeGraphql(gqlQuery, variables, ctx);
      return send(ctx.status, result);
    }
    const answer = restRoute(ctx, P, `/${path.slice('/api/'.length)}`, req.method);
    if (answer === notFound) return send(404, notFound);
    if (answer instanceof Reply) return send(answer.status, answer.body);
    return send(200, answer);
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    port: actual,
    requests,
    items,
    db,
    dangerous,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections?.();
    }),
  };
}

/**
 * The `ROUTES` value of a recipe in docs/proxy.md (the TOML block after `<!-- recipe: name -->`),
 * as wrangler would bind it, with its upstream pointed at `upstreamBase` (e.g. the demo CMS's
 * `…/api/`).
 */
export function recipeRoutes(name, upstreamBase) {
  const doc = readFileSync(new URL('../docs/proxy.md', import.meta.url), 'utf8');
  const m = new RegExp(`<!-- recipe: ${name} -->\\s*\`\`\`toml\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/proxy.md has no ${name} recipe`);
  const routes = parseToml(m[1]).vars.ROUTES;
  for (const route of Object.values(routes)) route.upstream = upstreamBase;
  return routes;
}

/** The `ROUTES` value the quick start uses: the Cockpit recipe of docs/proxy.md, on this CMS. */
export function demoRoutes(upstreamUrl) {
  return recipeRoutes('cockpit', `${upstreamUrl}/api/`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const cms = await startDemoCms({
    port: Number(opt('port') ?? 8789),
    host: opt('host') ?? '127.0.0.1',
    readKey: opt('read-key') ?? process.env.CMS_READ_KEY,
    writeKey: opt('write-key') ?? process.env.CMS_WRITE_KEY,
    editorKey: opt('editor-key') ?? process.env.CMS_EDITOR_KEY,
    signingSecret: opt('signing-secret') ?? process.env.UPSTREAM_SIGNING_SECRET,
  });
  console.log(`demo CMS listening on ${cms.url}`);
  const stop = () => cms.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
