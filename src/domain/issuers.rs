//! Trusted external issuers (`TRUSTED_ISSUERS`): sign-in services whose tokens Gatehouse takes
//! on proxied routes and `/auth/me`, checked against the issuer's public keys.
//!
//! This module holds the pure parts: the configuration, reading a token before its signature
//! is checked, the claim checks, and the isolate's cache of each issuer's keys (what to do at
//! what time is decided here, with the time handed in; `services::issuers` fetches and
//! verifies through what it is handed).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::domain::vars::{get, valid_role, Lookup};
use crate::primitives::encoding::{b64url_decode, sha256};
use crate::primitives::error::{ConfigError, Error, TokenRejection};
use crate::primitives::jws::{JwsAlg, PublicKey};

/// The variable.
pub const VAR: &str = "TRUSTED_ISSUERS";
/// The development-only variable that lets a `jwks_uri` be `http://127.0.0.1:<port>/…`.
pub const DEV_HTTP_VAR: &str = "DEV_ALLOW_HTTP_LOOPBACK_JWKS";
/// Largest JWKS read, in bytes; a larger answer is refused without being read on.
pub const JWKS_BODY_LIMIT: usize = 65_536;
/// How long a JWKS fetch may take for its answer's headers, in milliseconds.
pub const JWKS_TIMEOUT_MS: u32 = 5_000;
/// How long fetched keys are used when the answer has no `Cache-Control: max-age`, in seconds.
pub const DEFAULT_KEYS_TTL_SECS: i64 = 300;
/// The longest fetched keys are used before they are fetched again, in seconds.
pub const MAX_KEYS_TTL_SECS: i64 = 86_400;
/// Most keys read from one JWKS.
const MAX_KEYS: usize = 32;
/// Longest accepted user id claim, in bytes.
const MAX_USER_CLAIM: usize = 255;

/// Where an issuer's tokens are taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Bearer`.
    Bearer,
    /// The issuer's named cookie.
    Cookie,
}

/// Where an issuer's keys come from.
#[derive(Debug)]
pub enum Keys {
    /// Listed in the configuration.
    Inline(Vec<PublicKey>),
    /// Fetched from `jwks_uri`, kept in the isolate's cache.
    Remote {
        /// The JWKS URL.
        uri: String,
        /// What this isolate fetched.
        cache: KeyCache,
    },
}

/// One trusted issuer.
#[derive(Debug)]
pub struct Issuer {
    /// Its key in `TRUSTED_ISSUERS` (signed to the CMS as `X-Gatehouse-Issuer`).
    pub name: String,
    /// Its tokens' `iss`.
    pub iss: String,
    /// Its keys.
    pub keys: Keys,
    /// Accepted `alg`s.
    pub algorithms: Vec<JwsAlg>,
    /// Accepted `aud`s: a token must name one.
    pub audiences: Vec<String>,
    /// Whether its tokens are taken from `Authorization: Bearer`.
    pub bearer: bool,
    /// The cookie its tokens are taken from, if any.
    pub cookie: Option<String>,
    /// The claim holding the user id (default `sub`).
    pub user_claim: String,
    /// The claim holding the user's roles, if any.
    pub roles_claim: Option<String>,
    /// Foreign role → local role; only mapped roles count.
    pub role_map: BTreeMap<String, String>,
    /// Roles every user of this issuer has.
    pub default_roles: Vec<String>,
    /// Only users known to the local database (by the user claim as the user id, or by
    /// `email_claim`), with their local roles.
    pub known_users_only: bool,
    /// The claim holding the email that names the local user (with `known_users_only`).
    pub email_claim: Option<String>,
    /// Fewest seconds between two fetches of the JWKS (a refetch for an unknown `kid` waits
    /// this long after the last fetch).
    pub refetch_secs: i64,
    verified: VerifiedCache,
}

/// The trusted issuers, in the order configured (sorted by name).
#[derive(Debug, Default)]
pub struct TrustedIssuers {
    issuers: Vec<Issuer>,
}

/// One issuer as written in `TRUSTED_ISSUERS`. Read by hand from the JSON object rather than
/// with a serde derive: the same checks (known fields only, types named by field) for far less
/// wasm.
struct RawIssuer {
    iss: String,
    jwks_uri: Option<String>,
    jwks: Option<Value>,
    algorithms: Option<Vec<String>>,
    audience: Vec<String>,
    bearer: Option<bool>,
    cookie: Option<String>,
    user_claim: Option<String>,
    roles_claim: Option<String>,
    role_map: Option<BTreeMap<String, String>>,
    default_roles: Option<Vec<String>>,
    known_users_only: Option<bool>,
    email_claim: Option<String>,
    jwks_refetch_seconds: Option<i64>,
}

const FIELDS: [&str; 14] = [
    "iss",
    "jwks_uri",
    "jwks",
    "algorithms",
    "audience",
    "bearer",
    "cookie",
    "user_claim",
    "roles_claim",
    "role_map",
    "default_roles",
    "known_users_only",
    "email_claim",
    "jwks_refetch_seconds",
];

impl RawIssuer {
    fn read(value: Value) -> Result<Self, String> {
        let Value::Object(mut map) = value else {
            return Err("expected a table of fields".into());
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "unknown field {unknown:?} (known: {})",
                FIELDS.join(", ")
            ));
        }
        let mut take = |name: &str| map.remove(name).filter(|v| !v.is_null());
        let wrong = |name: &str, what: &str| format!("field {name}: expected {what}");
        let string = |name: &str, v: Option<Value>| match v {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong(name, "a string")),
        };
        let boolean = |name: &str, v: Option<Value>| match v {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(wrong(name, "true or false")),
        };
        let strings = |name: &str, v: Option<Value>| match v {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s),
                    _ => Err(wrong(name, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong(name, "a list of strings")),
        };
        let iss = string("iss", take("iss"))?.ok_or_else(|| "field iss: missing".to_string())?;
        let audience = match take("audience") {
            Some(Value::String(a)) => vec![a],
            Some(list @ Value::Array(_)) => strings("audience", Some(list))?.unwrap_or_default(),
            Some(_) => return Err(wrong("audience", "a string or a list of strings")),
            None => return Err("field audience: missing".into()),
        };
        let role_map = match take("role_map") {
            None => None,
            Some(Value::Object(m)) => Some(
                m.into_iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k, s)),
                        _ => Err(wrong("role_map", "a table of role names")),
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()?,
            ),
            Some(_) => return Err(wrong("role_map", "a table of role names")),
        };
        let jwks_refetch_seconds = match take("jwks_refetch_seconds") {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| wrong("jwks_refetch_seconds", "a whole number"))?,
            ),
        };
        Ok(Self {
            iss,
            jwks_uri: string("jwks_uri", take("jwks_uri"))?,
            jwks: take("jwks"),
            algorithms: strings("algorithms", take("algorithms"))?,
            audience,
            bearer: boolean("bearer", take("bearer"))?,
            cookie: string("cookie", take("cookie"))?,
            user_claim: string("user_claim", take("user_claim"))?,
            roles_claim: string("roles_claim", take("roles_claim"))?,
            role_map,
            default_roles: strings("default_roles", take("default_roles"))?,
            known_users_only: boolean("known_users_only", take("known_users_only"))?,
            email_claim: string("email_claim", take("email_claim"))?,
            jwks_refetch_seconds,
        })
    }
}

impl TrustedIssuers {
    /// `TRUSTED_ISSUERS` (JSON text; a TOML table in `wrangler.toml` arrives as one), checked
    /// against `local_issuer` (`JWT_ISSUER`, which no trusted issuer may claim).
    pub fn parse(lookup: Lookup<'_>, local_issuer: &str) -> Result<Self, ConfigError> {
        let Some(raw) = get(lookup, VAR) else {
            return Ok(Self::default());
        };
        let dev_http = match get(lookup, DEV_HTTP_VAR).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    DEV_HTTP_VAR,
                    format!("expected true or false, got {other:?}"),
                ))
            }
        };
        let table: Map<String, Value> = serde_json::from_str(&raw).map_err(|e| {
            ConfigError::new(VAR, format!("not a table of issuers (JSON object): {e}"))
        })?;
        let mut issuers = Vec::new();
        for (name, value) in table {
            let issuer = Issuer::parse(&name, value, dev_http)
                .map_err(|why| ConfigError::new(VAR, format!("issuer {name:?}: {why}")))?;
            if issuer.iss == local_issuer {
                return Err(ConfigError::new(
                    VAR,
                    format!("issuer {name:?}: iss is JWT_ISSUER, Gatehouse's own"),
                ));
            }
            if let Some(other) = issuers.iter().find(|o: &&Issuer| o.iss == issuer.iss) {
                return Err(ConfigError::new(
                    VAR,
                    format!("issuers {:?} and {name:?} have the same iss", other.name),
                ));
            }
            issuers.push(issuer);
        }
        Ok(Self { issuers })
    }

    /// Whether no issuer is trusted.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The issuers, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Issuer> {
        self.issuers.iter()
    }

    /// The issuer whose tokens carry `iss`.
    pub fn by_iss(&self, iss: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.iss == iss)
    }

    /// The issuer named `name` in `TRUSTED_ISSUERS`.
    pub fn by_name(&self, name: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.name == name)
    }

    /// The issuers that take tokens from a cookie, with its name.
    pub fn cookies(&self) -> impl Iterator<Item = (&Issuer, &str)> {
        self.issuers
            .iter()
            .filter_map(|i| i.cookie.as_deref().map(|c| (i, c)))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_claim_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control)
}

/// Whether `uri` may serve keys: `https://host…`, or with the development flag
/// `http://127.0.0.1[:port]/…`.
fn check_jwks_uri(uri: &str, dev_http: bool) -> Result<(), String> {
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) || uri.len() > 2048 {
        return Err("jwks_uri: not a URL".into());
    }
    if let Some(rest) = uri.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || host.contains('@') {
            return Err("jwks_uri: no host, or user info in it".into());
        }
        return Ok(());
    }
    if let Some(rest) = uri.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let loopback = host == "127.0.0.1"
            || host
                .strip_prefix("127.0.0.1:")
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        return match (loopback, dev_http) {
            (true, true) => Ok(()),
            (true, false) => Err(format!(
                "jwks_uri: http:// only with {DEV_HTTP_VAR}=true (local development); use https://"
            )),
            (false, _) => {
                Err("jwks_uri: must be https:// (http only for 127.0.0.1 in development)".into())
            }
        };
    }
    Err("jwks_uri: must be https://".into())
}

impl Issuer {
    fn parse(name: &str, value: Value, dev_http: bool) -> Result<Self, String> {
        if !valid_name(name) {
            return Err("the name must be 1-32 of a-z, 0-9, _ and -".into());
        }
        let raw = RawIssuer::read(value)?;
        if raw.iss.trim().is_empty() || raw.iss.len() > 256 {
            return Err("iss: must be 1-256 characters".into());
        }
        let keys = match (raw.jwks_uri, raw.jwks) {
            (Some(uri), None) => {
                check_jwks_uri(&uri, dev_http)?;
                Keys::Remote {
                    uri,
                    cache: KeyCache::default(),
                }
            }
            (None, Some(jwks)) => {
                let keys = parse_jwks_value(&jwks).map_err(|why| format!("jwks: {why}"))?;
                Keys::Inline(keys)
            }
            _ => return Err("give exactly one of jwks_uri and jwks".into()),
        };
        let algorithms = match raw.algorithms {
            None => vec![JwsAlg::Rs256],
            Some(list) if list.is_empty() => return Err("algorithms: empty".into()),
            Some(list) => list
                .iter()
                .map(|a| {
                    JwsAlg::parse(a).ok_or_else(|| {
                        format!("algorithms: {a:?} is not accepted (RS256, ES256 or EdDSA; never none or HMAC)")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if let Keys::Inline(keys) = &keys {
            if !keys.iter().any(|k| algorithms.contains(&k.alg)) {
                return Err("jwks: no key for the accepted algorithms".into());
            }
        }
        let audiences = raw.audience;
        if audiences.is_empty() || audiences.iter().any(|a| a.is_empty() || a.len() > 256) {
            return Err("audience: one or more non-empty values (at most 256 characters)".into());
        }
        let bearer = raw.bearer.unwrap_or(true);
        if let Some(cookie) = &raw.cookie {
            if !valid_cookie_name(cookie) {
                return Err(format!("cookie: {cookie:?} is not a cookie name"));
            }
            if cookie.starts_with("gatehouse_") || cookie.starts_with("__Host-gatehouse") {
                return Err(format!(
                    "cookie: {cookie:?} is one of Gatehouse's own names"
                ));
            }
        }
        if !bearer && raw.cookie.is_none() {
            return Err("no token source: bearer is false and no cookie is named".into());
        }
        let user_claim = raw.user_claim.unwrap_or_else(|| "sub".into());
        for (field, claim) in [
            ("user_claim", Some(&user_claim)),
            ("roles_claim", raw.roles_claim.as_ref()),
            ("email_claim", raw.email_claim.as_ref()),
        ] {
            if claim.is_some_and(|c| !valid_claim_name(c)) {
                return Err(format!("{field}: not a claim name"));
            }
        }
        let known_users_only = raw.known_users_only.unwrap_or(false);
        if known_users_only
            && (raw.roles_claim.is_some() || raw.role_map.is_some() || raw.default_roles.is_some())
        {
            return Err(
                "known_users_only takes the local user's roles: drop roles_claim, role_map and default_roles"
                    .into(),
            );
        }
        if raw.email_claim.is_some() && !known_users_only {
            return Err("email_claim: only with known_users_only = true".into());
        }
        let role_map = raw.role_map.unwrap_or_default();
        if !role_map.is_empty() && raw.roles_claim.is_none() {
            return Err("role_map: needs roles_claim".into());
        }
        if raw.roles_claim.is_some() && role_map.is_empty() {
            return Err("roles_claim: needs role_map (only mapped roles count)".into());
        }
        let default_roles = raw.default_roles.unwrap_or_default();
        for role in role_map.values().chain(&default_roles) {
            if !valid_role(role) || role == "anonymous" {
                return Err(format!(
                    "{role:?} is not a valid role name (a-z, 0-9, _ - ., not \"anonymous\")"
                ));
            }
        }
        let refetch_secs = raw.jwks_refetch_seconds.unwrap_or(60);
        if !(1..=3_600).contains(&refetch_secs) {
            return Err("jwks_refetch_seconds: must be between 1 and 3600".into());
        }
        Ok(Self {
            name: name.to_string(),
            iss: raw.iss,
            keys,
            algorithms,
            audiences,
            bearer,
            cookie: raw.cookie,
            user_claim,
            roles_claim: raw.roles_claim,
            role_map,
            default_roles,
            known_users_only,
            email_claim: raw.email_claim,
            refetch_secs,
            verified: VerifiedCache::default(),
        })
    }

    /// Whether this issuer takes tokens from `source`.
    pub fn accepts(&self, source: Source) -> bool {
        match source {
            Source::Bearer => self.bearer,
            Source::Cookie => self.cookie.is_some(),
        }
    }

    /// The roles a (not locally known) user of this issuer has: the defaults, then the mapped
    /// roles of `claims`' roles claim (a string, space- or comma-separated, or an array).
    pub fn roles(&self, claims: &Map<String, Value>) -> Vec<String> {
        let mut roles = self.default_roles.clone();
        let foreign: Vec<&str> = match self.roles_claim.as_ref().and_then(|c| claims.get(c)) {
            Some(Value::String(s)) => s.split([' ', ',']).filter(|r| !r.is_empty()).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for role in foreign {
            if let Some(local) = self.role_map.get(role) {
                if !roles.contains(local) {
                    roles.push(local.clone());
                }
            }
        }
        roles
    }

    /// The isolate's memory of tokens of this issuer whose signature verified.
    pub fn verified(&self) -> &VerifiedCache {
        &self.verified
    }
}

/// A JWKS document's signing keys of accepted types (others skipped); an error for a document
/// that is not a JWKS, a malformed signing key, or none at all.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<PublicKey>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    parse_jwks_value(&value)
}

fn parse_jwks_value(value: &Value) -> Result<Vec<PublicKey>, String> {
    let Some(list) = value.get("keys").and_then(Value::as_array) else {
        return Err("not a JWKS (an object with a keys array)".into());
    };
    if list.len() > MAX_KEYS {
        return Err(format!("more than {MAX_KEYS} keys"));
    }
    let mut keys = Vec::new();
    for jwk in list {
        if let Some(key) = PublicKey::from_jwk(jwk)? {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err("no RS256, ES256 or EdDSA signing key".into());
    }
    Ok(keys)
}

/// The key for a token: by `kid` when the token names one, else the only key of its algorithm.
pub fn select<'k>(keys: &'k [PublicKey], kid: Option<&str>, alg: JwsAlg) -> Option<&'k PublicKey> {
    let mut fitting = keys.iter().filter(|k| k.alg == alg);
    match kid {
        Some(kid) => fitting.find(|k| k.kid.as_deref() == Some(kid)),
        None => {
            let first = fitting.next()?;
            fitting.next().is_none().then_some(first)
        }
    }
}

/// The seconds a fetched JWKS is used for: `Cache-Control`'s `max-age` (`no-store`,
/// `no-cache`: the refetch interval), else [`DEFAULT_KEYS_TTL_SECS`], between the refetch
/// interval and [`MAX_KEYS_TTL_SECS`].
pub fn keys_ttl_secs(cache_control: Option<&str>, refetch_secs: i64) -> i64 {
    let directives = CacheDirectives::read(cache_control);
    let ttl = if directives.no_store || directives.no_cache {
        0
    } else {
        directives.max_age.unwrap_or(DEFAULT_KEYS_TTL_SECS)
    };
    ttl.clamp(refetch_secs, MAX_KEYS_TTL_SECS)
}

/// The seconds a fetched JWKS is kept in the cache shared by isolates (the Workers Cache API):
/// `Cache-Control`'s `max-age`, at most [`MAX_KEYS_TTL_SECS`]; `None`, not kept there, without
/// a positive `max-age`, or with `no-store`, `no-cache` (nothing to revalidate with) or
/// `private` (not for a shared cache).
pub fn shared_max_age_secs(cache_control: Option<&str>) -> Option<i64> {
    let d = CacheDirectives::read(cache_control);
    if d.no_store || d.no_cache || d.private {
        return None;
    }
    d.max_age
        .filter(|secs| *secs > 0)
        .map(|secs| secs.min(MAX_KEYS_TTL_SECS))
}

/// The `Cache-Control` directives that matter here.
#[derive(Debug, Default)]
struct CacheDirectives {
    no_store: bool,
    no_cache: bool,
    private: bool,
    max_age: Option<i64>,
}

impl CacheDirectives {
    fn read(cache_control: Option<&str>) -> Self {
        let mut d = Self::default();
        for directive in cache_control.unwrap_or("").split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            match lower.as_str() {
                "no-store" => d.no_store = true,
                "no-cache" => d.no_cache = true,
                // `private="field"` names fields; a bare `private` is the whole answer.
                "private" => d.private = true,
                _ => {
                    if let Some(secs) = lower.strip_prefix("max-age=") {
                        if let Ok(secs) = secs.trim_matches('"').parse::<i64>() {
                            d.max_age = Some(secs);
                        }
                    }
                }
            }
        }
        d
    }
}

/// What this isolate fetched of one issuer's JWKS.
#[derive(Debug, Default)]
pub struct KeyCache {
    state: RefCell<CacheState>,
}

#[derive(Debug, Default, Clone)]
struct CacheState {
    keys: Vec<PublicKey>,
    /// Until when (ms) the keys are used without fetching again.
    fresh_until: i64,
    /// When (ms) the last fetch was tried, successful or not.
    last_attempt: Option<i64>,
    /// Whether that fetch failed.
    last_failed: bool,
}

/// What to do for a token's key, decided by [`KeyCache::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Use this cached key.
    Use(PublicKey),
    /// Look in the cache shared by isolates, then, unless its copy has the key, fetch the JWKS
    /// (this isolate has no keys, or only stale ones, and may fetch).
    Load,
    /// Fetch the JWKS now, past the shared cache: the `kid` is unknown among this isolate's
    /// fresh keys, and the last fetch was at least the refetch interval ago. The shared copy
    /// is the set this isolate has, or older; the fetched one replaces it.
    Fetch,
    /// The `kid` is unknown and the last fetch is too recent to fetch again.
    Unknown,
}

impl KeyCache {
    /// What to do for a token naming `kid` with `alg` at `now_ms`, with fetches at least
    /// `refetch_secs` apart.
    pub fn plan(&self, kid: Option<&str>, alg: JwsAlg, now_ms: i64, refetch_secs: i64) -> Plan {
        let state = self.state.borrow();
        let may_fetch = state
            .last_attempt
            .is_none_or(|t| now_ms >= t + refetch_secs * 1000);
        let fresh = now_ms < state.fresh_until;
        match select(&state.keys, kid, alg) {
            Some(key) if fresh || !may_fetch => Plan::Use(key.clone()),
            _ if !may_fetch => Plan::Unknown,
            None if fresh => Plan::Fetch,
            _ => Plan::Load,
        }
    }

    /// Keys read at `now_ms` from the shared cache, fresh until `expires_ms` (when the copy
    /// there stops being fresh, at most [`MAX_KEYS_TTL_SECS`] ahead): not a fetch, so the
    /// refetch interval still counts from the last one. The key for `kid` among them, if any.
    pub fn loaded(
        &self,
        keys: Vec<PublicKey>,
        expires_ms: i64,
        kid: Option<&str>,
        alg: JwsAlg,
        now_ms: i64,
    ) -> Option<PublicKey> {
        let mut state = self.state.borrow_mut();
        state.keys = keys;
        state.fresh_until = expires_ms.min(now_ms + MAX_KEYS_TTL_SECS * 1000);
        select(&state.keys, kid, alg).cloned()
    }

    /// A failed fetch at `now_ms`: no fetch again before the refetch interval; the cached keys
    /// (stale or not) stay in use meanwhile. The key for `kid` among them, if any.
    pub fn failed(&self, kid: Option<&str>, alg: JwsAlg, now_ms: i64) -> Option<PublicKey> {
        let mut state = self.state.borrow_mut();
        state.last_attempt = Some(now_ms);
        state.last_failed = true;
        select(&state.keys, kid, alg).cloned()
    }

    /// Whether the last fetch failed.
    pub fn last_failed(&self) -> bool {
        self.state.borrow().last_failed
    }

    /// A successful fetch at `now_ms` of `keys`, used for `ttl_secs`. The key for `kid`.
    pub fn fetched(
        &self,
        keys: Vec<PublicKey>,
        ttl_secs: i64,
        kid: Option<&str>,
        alg: JwsAlg,
        now_ms: i64,
    ) -> Option<PublicKey> {
        let mut state = self.state.borrow_mut();
        state.keys = keys;
        state.fresh_until = now_ms + ttl_secs * 1000;
        state.last_attempt = Some(now_ms);
        state.last_failed = false;
        select(&state.keys, kid, alg).cloned()
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.state.borrow().keys.len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tokens of one issuer whose signature verified, by SHA-256 of the token, until their `exp`:
/// a token presented again costs no signature check. The claims are checked again each time.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: RefCell<HashMap<[u8; 32], i64>>,
}

impl VerifiedCache {
    /// Most entries kept; when full, expired entries go, and if none had expired, all.
    pub const CAPACITY: usize = 4096;

    /// Whether `token`'s signature verified before. Whether its key is still published is not
    /// asked again: a key the issuer withdraws stops new tokens, not those already seen.
    pub fn contains(&self, token: &str) -> bool {
        self.entries
            .borrow()
            .contains_key(&sha256(token.as_bytes()))
    }

    /// Remembers `token`, valid until `exp_secs`, at `now_secs`.
    pub fn insert(&self, token: &str, exp_secs: i64, now_secs: i64) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, exp| *exp >= now_secs);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(sha256(token.as_bytes()), exp_secs);
    }
}

/// A token read but not yet verified.
#[derive(Debug)]
pub struct Unverified<'t> {
    /// Its `alg` (one of the accepted three; anything else was refused).
    pub alg: JwsAlg,
    /// Its `kid`.
    pub kid: Option<String>,
    /// Its claims.
    pub claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    pub signing_input: &'t str,
    /// The signature.
    pub signature: Vec<u8>,
}

/// The `iss` of a JWT, read without any check (to choose the issuer that checks it); `None`
/// for anything that is not a JWT with a string `iss`.
pub fn peek_iss(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload) = (parts.next()?, parts.next()?);
    let payload = b64url_decode(payload)?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// Reads `token` for `issuer`: three base64url parts, a JSON header whose `alg` the issuer
/// accepts and no `crit`, JSON object claims.
pub fn read<'t>(issuer: &Issuer, token: &'t str) -> Result<Unverified<'t>, Error> {
    let malformed = || Error::InvalidToken(TokenRejection::Malformed);
    let (signing_input, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or_else(malformed)?;
    let header: Map<String, Value> = b64url_decode(header)
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(malformed)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(malformed()),
    };
    if header.contains_key("crit") {
        return Err(malformed());
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(JwsAlg::parse)
        .filter(|a| issuer.algorithms.contains(a))
        .ok_or(Error::InvalidToken(TokenRejection::Algorithm))?;
    let claims: Map<String, Value> = b64url_decode(payload)
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(malformed)?;
    let signature = b64url_decode(signature).ok_or_else(malformed)?;
    Ok(Unverified {
        alg,
        kid,
        claims,
        signing_input,
        signature,
    })
}

/// The claims of a token whose signature verified, checked for `issuer` at `now_ms`: `iss`,
/// `aud` naming an accepted audience, `exp` (required) not passed and `nbf`/`iat` not ahead,
/// with `leeway_secs`. Answers the user claim's value and `exp`.
pub fn check_claims(
    issuer: &Issuer,
    claims: &Map<String, Value>,
    now_ms: i64,
    leeway_secs: i64,
) -> Result<(String, i64), Error> {
    let bad = |why| Error::InvalidToken(why);
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.iss.as_str()) {
        return Err(bad(TokenRejection::IssuerOrAudience));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => issuer.audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| issuer.audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(bad(TokenRejection::IssuerOrAudience));
    }
    let now = now_ms.div_euclid(1000);
    let time = |name: &str| -> Result<Option<i64>, Error> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Some(f.floor() as i64))
                .ok_or(Error::InvalidToken(TokenRejection::Claims)),
        }
    };
    let exp = time("exp")?.ok_or(bad(TokenRejection::Claims))?;
    if now - leeway_secs > exp {
        return Err(Error::ExpiredToken);
    }
    for name in ["nbf", "iat"] {
        if time(name)?.is_some_and(|t| t > now + leeway_secs) {
            return Err(bad(TokenRejection::NotYetValid));
        }
    }
    let user = match claims.get(&issuer.user_claim) {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad(TokenRejection::Claims)),
    };
    if user.is_empty() || user.len() > MAX_USER_CLAIM || user.chars().any(char::is_control) {
        return Err(bad(TokenRejection::Claims));
    }
    Ok((user, exp))
}
