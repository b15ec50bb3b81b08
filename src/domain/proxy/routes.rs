//! The proxy's configuration: the `ROUTES` variable, parsed once into typed routes.
//!
//! `ROUTES` is a JSON object (a TOML table in `wrangler.toml` arrives as one) keyed by route name:
//!
//! ```json
//! { "cms": {
//!     "prefix": "/cms/",
//!     "upstream": "https://cms.example.com/api/",
//!     "inject": { "header": "api-key", "value": "{secret}" },
//!     "endpoints": [
//!       { "method": "GET", "path": "content/items/{model}", "values": { "model": ["posts"] },
//!         "query": { "limit": "uint" }, "roles": ["anonymous"], "secret": "CMS_READ_KEY" },
//!       { "method": "POST", "path": "content/item/{model}", "values": { "model": ["posts"] },
//!         "action": "create", "fields": ["data.title"], "owner": "data.author",
//!         "roles": ["user"], "secret": "CMS_WRITE_KEY" } ] } }
//! ```
//!
//! A route forwards only its endpoints ([`crate::domain::proxy::policy`]), or, with `forward_all`, its
//! whole base. Route-level rules are defaults: `read` covers GET and HEAD, `write` covers POST,
//! PUT, PATCH and DELETE; a method name as key (`"DELETE": {...}`) overrides its class. A rule
//! may also be a list of rules, tried in order (e.g. editors get a preview key, everyone else
//! the public key). Secrets are named, never written in the route: their values come from
//! Worker secrets looked up at start.

use std::fmt;

use serde_json::{Map, Value};

use crate::domain::proxy::policy::{parse_endpoint, Endpoint, RouteContext};
use crate::domain::vars::{valid_role, Lookup};
use crate::primitives::error::ConfigError;
use crate::primitives::secrets::Secret;

/// The pseudo-role every caller has, signed in or not.
pub const ANONYMOUS: &str = "anonymous";

/// Client headers always stripped before forwarding (a route's `strip_headers` adds to them):
/// credentials, and headers that make a CMS or its server act on another method or URL than the
/// one signed (`Proxy` is the httpoxy vector: CGI turns it into `HTTP_PROXY`).
pub const DEFAULT_STRIP_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "api-key",
    "cockpit-token",
    "x-api-key",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "proxy",
    "x-original-url",
    "x-rewrite-url",
];
/// Query parameters always stripped before forwarding (a route's `strip_query` adds to them):
/// credentials, and `_method`, the method override of many frameworks.
pub const DEFAULT_STRIP_QUERY: &[&str] = &["api_key", "token", "access_token", "_method"];

/// The largest `max_body_bytes` a route may set: a Worker isolate has 128 MB, and the body is
/// held in memory while it is forwarded.
pub const MAX_ROUTE_BODY_BYTES: usize = 16 * 1024 * 1024;

const DEFAULT_TIMEOUT_MS: u32 = 10_000;
const READ_METHODS: &[&str] = &["GET", "HEAD"];
const WRITE_METHODS: &[&str] = &["POST", "PUT", "PATCH", "DELETE"];
/// Paths Gatehouse answers itself; no route prefix may shadow them.
const RESERVED_PREFIXES: &[&str] = &["/auth/", "/admin/", "/.well-known/", "/client/", "/__"];
const RESERVED_PATHS: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

/// Where an injected credential goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A header; `template` holds `{secret}` (e.g. `Bearer {secret}`).
    Header {
        /// Lower-case header name.
        name: String,
        /// The value with `{secret}` in it.
        template: String,
    },
    /// A query parameter.
    Query {
        /// The parameter's name.
        name: String,
    },
}

/// A credential a rule injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// The secret's variable name (for logs and docs).
    pub secret_name: String,
    /// The secret.
    pub secret: Secret,
    /// Where it goes.
    pub placement: Placement,
}

impl Injection {
    /// The header name or query parameter it occupies (client values of it are always stripped).
    pub fn slot(&self) -> &str {
        match &self.placement {
            Placement::Header { name, .. } | Placement::Query { name } => name,
        }
    }
}

/// Who may call, and with which credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Roles allowed; [`ANONYMOUS`] admits everyone.
    pub roles: Vec<String>,
    /// The credential injected, if any.
    pub injection: Option<Injection>,
}

impl Rule {
    /// Whether a caller with `roles` (`None`: not signed in) may use this rule.
    pub fn admits(&self, roles: Option<&[String]>) -> bool {
        self.roles
            .iter()
            .any(|r| r == ANONYMOUS || roles.is_some_and(|have| have.iter().any(|h| h == r)))
    }
}

/// One proxied route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The route's name (API-key scopes name it).
    pub name: String,
    /// Path prefix on Gatehouse, starting and ending with `/`.
    pub prefix: String,
    /// Upstream base URL: `scheme://authority/path/`, ending with `/`.
    pub upstream: String,
    /// Where `upstream`'s path begins (after `scheme://authority`), found once at parse time.
    pub upstream_path_start: usize,
    /// Upstream answer timeout in milliseconds.
    pub timeout_ms: u32,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Whether authenticated answers may be cached (otherwise `private, no-store`).
    pub public: bool,
    /// The endpoints this route forwards; empty on a `forward_all` route.
    pub endpoints: Vec<Endpoint>,
    /// Whether the whole base is forwarded (no endpoints; see docs/proxy.md for why it is unsafe).
    pub forward_all: bool,
    /// Client headers stripped: the defaults plus the route's own (normalized names).
    pub strip_headers: Vec<String>,
    /// Client query parameters stripped: the defaults plus the route's own (normalized names).
    pub strip_query: Vec<String>,
    /// Per-method rules (method, rules); methods not listed are refused.
    rules: Vec<(&'static str, Vec<Rule>)>,
    /// The `Allow` header value.
    allow: &'static str,
}

impl Route {
    /// The rules for `method`, or `None` when the route does not allow it.
    pub fn rules_for(&self, method: &str) -> Option<&[Rule]> {
        self.rules
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, rules)| rules.as_slice())
    }

    /// The route's default rules for `method` on an endpoint without its own (HEAD falls back
    /// to GET's).
    pub fn endpoint_rules_for(&self, method: &str) -> Option<&[Rule]> {
        crate::domain::proxy::policy::route_rules_for(&self.rules, method)
    }

    /// The methods this route allows, for `Allow`.
    pub fn allow(&self) -> &'static str {
        self.allow
    }

    /// Every credential this route can inject.
    fn injections(&self) -> impl Iterator<Item = &Injection> {
        self.rules
            .iter()
            .flat_map(|(_, rules)| rules.iter())
            .filter_map(|r| r.injection.as_ref())
            .chain(self.endpoints.iter().flat_map(Endpoint::secrets))
    }

    /// Every secret this route can inject (to keep them out of responses).
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.injections().map(|i| &i.secret)
    }

    /// The names of the secrets this route injects, each once, sorted (never their values).
    pub fn secret_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.injections().map(|i| i.secret_name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Normalized names never forwarded from a client's query or body: the strip list (the
    /// credential and method-override names) and the query parameter a rule injects into.
    pub fn credential_names(&self) -> &[String] {
        &self.strip_query
    }
}

/// All routes, longest prefix first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// The route whose prefix starts `path` (the longest one).
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.position(path).map(|(_, route)| route)
    }

    /// [`Routes::find`] with the route's position (for [`Routes::get`]).
    pub fn position(&self, path: &str) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, r)| path.starts_with(&r.prefix))
    }

    /// The route at `position`.
    pub fn get(&self, position: usize) -> Option<&Route> {
        self.routes.get(position)
    }

    /// Whether no route is configured.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// Parses `ROUTES` (JSON text); secrets are read through `lookup`. `default_body_limit` is
    /// `MAX_BODY_BYTES`.
    pub fn parse(
        raw: &str,
        lookup: Lookup<'_>,
        default_body_limit: usize,
    ) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| err(format!("not a JSON object (or TOML table): {e}")))?;
        let Value::Object(map) = value else {
            return Err(err("expected an object keyed by route name"));
        };
        let mut routes = Vec::new();
        for (name, spec) in &map {
            routes.push(parse_route(name, spec, lookup, default_body_limit)?);
        }
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[i + 1..] {
                if a.prefix == b.prefix {
                    return Err(err(format!(
                        "routes {:?} and {:?} have the same prefix {:?}",
                        a.name, b.name, a.prefix
                    )));
                }
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(Self { routes })
    }
}

fn err(reason: impl Into<String>) -> ConfigError {
    ConfigError::new("ROUTES", reason)
}

/// A configuration error naming the route and field.
pub(crate) fn route_err(route: &str, field: &str, reason: impl fmt::Display) -> ConfigError {
    err(format!("route {route:?}: {field}: {reason}"))
}

const ROUTE_KEYS: &[&str] = &[
    "prefix",
    "upstream",
    "timeout_ms",
    "max_body_bytes",
    "public",
    "endpoints",
    "forward_all",
    "inject",
    "strip_headers",
    "strip_query",
    "read",
    "write",
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
];

fn parse_route(
    name: &str,
    spec: &Value,
    lookup: Lookup<'_>,
    default_body_limit: usize,
) -> Result<Route, ConfigError> {
    let spec = route_spec(name, spec)?;
    let prefix = parse_prefix(name, spec)?;
    let upstream = parse_upstream(name, spec)?;
    let scheme_end = upstream.find("://").map_or(0, |i| i + 3);
    let upstream_path_start = scheme_end + upstream[scheme_end..].find('/').unwrap_or(0);
    let (timeout_ms, max_body_bytes) = route_limits(name, spec, default_body_limit)?;
    let public = bool_field(name, spec, "public")?;
    let default_inject = spec
        .get("inject")
        .map(|v| parse_placement(name, "inject", v))
        .transpose()?;
    let (strip_headers, mut strip_query) = strip_lists(name, spec)?;
    let rules = parse_method_rules(name, spec, default_inject.as_ref(), lookup)?;
    let forward_all = bool_field(name, spec, "forward_all")?;
    // Names a client may never send in a query or body: the strip list and injected slots.
    for injection in rules
        .iter()
        .flat_map(|(_, r)| r)
        .filter_map(|r| r.injection.as_ref())
    {
        add_query_slot(&mut strip_query, injection);
    }
    let ctx = RouteContext {
        route: name,
        default_inject: default_inject.as_ref(),
        lookup,
        route_rules: &rules,
        credentials: &strip_query,
    };
    let endpoints = parse_endpoints(&ctx, spec, forward_all)?;
    // Query-slot names injected by endpoint rules and lookups join the list too.
    for injection in endpoints.iter().flat_map(Endpoint::secrets) {
        add_query_slot(&mut strip_query, injection);
    }
    let allow: String = rules.iter().map(|(m, _)| *m).collect::<Vec<_>>().join(", ");
    Ok(Route {
        name: name.to_string(),
        prefix,
        upstream,
        upstream_path_start,
        timeout_ms,
        max_body_bytes,
        public,
        endpoints,
        forward_all,
        strip_headers,
        strip_query,
        rules,
        // Parsed once per isolate; the `Allow` value lives as long as the configuration.
        allow: Box::leak(allow.into_boxed_str()),
    })
}

/// A route's `timeout_ms` and `max_body_bytes`.
fn route_limits(
    name: &str,
    spec: &Map<String, Value>,
    default_body_limit: usize,
) -> Result<(u32, usize), ConfigError> {
    let timeout_ms = uint_field(
        name,
        spec,
        "timeout_ms",
        DEFAULT_TIMEOUT_MS as u64,
        100,
        120_000,
    )? as u32;
    let max_body_bytes = uint_field(
        name,
        spec,
        "max_body_bytes",
        default_body_limit as u64,
        0,
        MAX_ROUTE_BODY_BYTES as u64,
    )? as usize;
    Ok((timeout_ms, max_body_bytes))
}

/// A route's `strip_headers` and `strip_query`, each over its defaults, normalized.
fn strip_lists(
    name: &str,
    spec: &Map<String, Value>,
) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let strip_headers = with_defaults(
        DEFAULT_STRIP_HEADERS,
        string_list(name, spec, "strip_headers")?,
        normalize_header_name,
    );
    let strip_query = with_defaults(
        DEFAULT_STRIP_QUERY,
        string_list(name, spec, "strip_query")?,
        normalize_param_name,
    );
    Ok((strip_headers, strip_query))
}

/// Whether `name` can name a route (and so an API key's scope): 1–64 of `a-z 0-9 _ -`.
pub fn valid_route_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
}

/// A route's table, once its name and its fields' names are checked.
fn route_spec<'v>(name: &str, spec: &'v Value) -> Result<&'v Map<String, Value>, ConfigError> {
    if !valid_route_name(name) {
        return Err(err(format!(
            "route name {name:?}: use 1-64 of a-z, 0-9, _ and -"
        )));
    }
    let Value::Object(spec) = spec else {
        return Err(route_err(name, "route", "expected an object"));
    };
    if spec.contains_key("owner_field") {
        return Err(route_err(
            name,
            "owner_field",
            "owners are set per endpoint now: give the create/update endpoints `owner = \"data.author\"` (a route that forwards its whole base cannot bind owners)",
        ));
    }
    if let Some(key) = spec.keys().find(|k| !ROUTE_KEYS.contains(&k.as_str())) {
        return Err(route_err(
            name,
            key,
            format!("unknown field (known: {})", ROUTE_KEYS.join(", ")),
        ));
    }
    Ok(spec)
}

/// An optional boolean field (absent: `false`).
fn bool_field(name: &str, spec: &Map<String, Value>, field: &str) -> Result<bool, ConfigError> {
    match spec.get(field) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(route_err(name, field, "expected true or false")),
    }
}

/// The route's rules per method: a method's own (`"DELETE": {...}`), else its class's (`read`,
/// `write`); a method with neither has none.
fn parse_method_rules(
    name: &str,
    spec: &Map<String, Value>,
    default_inject: Option<&Placement>,
    lookup: Lookup<'_>,
) -> Result<Vec<(&'static str, Vec<Rule>)>, ConfigError> {
    let mut rules: Vec<(&'static str, Vec<Rule>)> = Vec::new();
    for (class, methods) in [("read", READ_METHODS), ("write", WRITE_METHODS)] {
        let class_rules = spec
            .get(class)
            .map(|v| parse_rules(name, class, v, default_inject, lookup))
            .transpose()?;
        for method in methods {
            let own = spec
                .get(*method)
                .map(|v| parse_rules(name, method, v, default_inject, lookup))
                .transpose()?;
            if let Some(r) = own.or_else(|| class_rules.clone()) {
                rules.push((method, r));
            }
        }
    }
    Ok(rules)
}

/// Adds an injection's query slot, if it has one, to the names a client may never send.
fn add_query_slot(strip_query: &mut Vec<String>, injection: &Injection) {
    if let Placement::Query { name: slot } = &injection.placement {
        let slot = normalize_param_name(slot);
        if !strip_query.contains(&slot) {
            strip_query.push(slot);
        }
    }
}

/// The route's endpoints; none when it forwards its whole base (`forward_all`), which then
/// needs rules of its own.
fn parse_endpoints(
    ctx: &RouteContext<'_>,
    spec: &Map<String, Value>,
    forward_all: bool,
) -> Result<Vec<Endpoint>, ConfigError> {
    let name = ctx.route;
    match (spec.get("endpoints"), forward_all) {
        (Some(_), true) => Err(route_err(
            name,
            "forward_all",
            "a route either lists endpoints or forwards its whole base, not both",
        )),
        (Some(Value::Array(items)), false) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_endpoint(ctx, i, item))
            .collect(),
        (Some(_), false) => Err(route_err(
            name,
            "endpoints",
            "expected a non-empty list of endpoint tables ([[vars.ROUTES.<name>.endpoints]])",
        )),
        (None, true) if ctx.route_rules.is_empty() => Err(route_err(
            name,
            "read/write",
            "no rules: add `read`, `write` or a method",
        )),
        (None, true) => Ok(Vec::new()),
        (None, false) => Err(route_err(
            name,
            "endpoints",
            "required: list the endpoints this route forwards (method, path, who may call); `forward_all = true` forwards the whole base instead, which hands callers every power of the injected key (see docs/proxy.md)",
        )),
    }
}

fn parse_prefix(name: &str, spec: &Map<String, Value>) -> Result<String, ConfigError> {
    let Some(Value::String(prefix)) = spec.get("prefix") else {
        return Err(route_err(name, "prefix", "required, a path such as /cms/"));
    };
    if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.len() < 3 {
        return Err(route_err(
            name,
            "prefix",
            "must start and end with / and name a path, such as /cms/",
        ));
    }
    let inner = &prefix[1..prefix.len() - 1];
    if crate::domain::proxy::path::check_remainder(inner).is_err() || inner.contains('%') {
        return Err(route_err(
            name,
            "prefix",
            "use plain path segments (no dots-only segments, escapes, // or controls)",
        ));
    }
    if RESERVED_PREFIXES
        .iter()
        .any(|r| prefix.starts_with(r) || r.starts_with(prefix.as_str()))
        || RESERVED_PATHS
            .iter()
            .any(|p| p.starts_with(prefix.as_str()))
    {
        return Err(route_err(
            name,
            "prefix",
            format!("{prefix:?} overlaps a path Gatehouse answers itself"),
        ));
    }
    Ok(prefix.clone())
}

fn parse_upstream(name: &str, spec: &Map<String, Value>) -> Result<String, ConfigError> {
    let Some(Value::String(url)) = spec.get("upstream") else {
        return Err(route_err(
            name,
            "upstream",
            "required, a base URL such as https://cms.example.com/api/",
        ));
    };
    let bad = |why: &str| route_err(name, "upstream", why);
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// or http://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty()
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return Err(bad(
            "the host must be a plain host name or address with an optional port (no user info)",
        ));
    }
    if path.contains(['?', '#']) {
        return Err(bad("no query or fragment"));
    }
    let path = if path.is_empty() { "/" } else { path };
    if !path.ends_with('/') {
        return Err(bad(
            "the path must end with / (it is the base requests are appended to)",
        ));
    }
    if crate::domain::proxy::path::check_remainder(&path[1..]).is_err() {
        return Err(bad("the path must be plain segments"));
    }
    Ok(format!(
        "{}{authority}{path}",
        &url[..url.len() - rest.len()]
    ))
}

fn uint_field(
    name: &str,
    spec: &Map<String, Value>,
    field: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match spec.get(field) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(route_err(
                name,
                field,
                format!("expected a whole number between {min} and {max}"),
            )),
        },
    }
}

/// `defaults` followed by the route's `extra` names, normalized, without repeats.
fn with_defaults(
    defaults: &[&str],
    extra: Vec<String>,
    normalize: fn(&str) -> String,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in defaults
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        let name = normalize(name);
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn string_list(
    name: &str,
    spec: &Map<String, Value>,
    field: &str,
) -> Result<Vec<String>, ConfigError> {
    match spec.get(field) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(route_err(name, field, "expected a list of names")),
            })
            .collect(),
        Some(_) => Err(route_err(name, field, "expected a list of names")),
    }
}

pub(crate) fn parse_rules(
    route: &str,
    field: &str,
    value: &Value,
    default_inject: Option<&Placement>,
    lookup: Lookup<'_>,
) -> Result<Vec<Rule>, ConfigError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            return Err(route_err(
                route,
                field,
                "expected a rule object or a list of them",
            ))
        }
    };
    items
        .into_iter()
        .map(|item| parse_rule(route, field, item, default_inject, lookup))
        .collect()
}

fn parse_rule(
    route: &str,
    field: &str,
    value: &Value,
    default_inject: Option<&Placement>,
    lookup: Lookup<'_>,
) -> Result<Rule, ConfigError> {
    let Value::Object(rule) = value else {
        return Err(route_err(route, field, "expected a rule object"));
    };
    if let Some(key) = rule
        .keys()
        .find(|k| !["roles", "secret", "inject"].contains(&k.as_str()))
    {
        return Err(route_err(
            route,
            &format!("{field}.{key}"),
            "unknown field (known: roles, secret, inject)",
        ));
    }
    let roles = rule_roles(route, field, rule.get("roles"))?;
    let injection = rule_injection(route, field, rule, default_inject, lookup)?;
    Ok(Rule { roles, injection })
}

/// A rule's `secret` and where it goes (`inject`, else the route's).
fn rule_injection(
    route: &str,
    field: &str,
    rule: &Map<String, Value>,
    default_inject: Option<&Placement>,
    lookup: Lookup<'_>,
) -> Result<Option<Injection>, ConfigError> {
    let placement = rule
        .get("inject")
        .map(|v| parse_placement(route, &format!("{field}.inject"), v))
        .transpose()?;
    match rule.get("secret") {
        None if placement.is_some() => Err(route_err(
            route,
            &format!("{field}.inject"),
            "given without a `secret` to inject",
        )),
        None => Ok(None),
        Some(Value::String(secret_name)) => {
            let value = secret_value(route, field, secret_name, lookup)?;
            let placement = placement
                .or_else(|| default_inject.cloned())
                .ok_or_else(|| {
                    route_err(
                        route,
                        &format!("{field}.inject"),
                        "a secret needs `inject` (here or on the route)",
                    )
                })?;
            Ok(Some(Injection {
                secret_name: secret_name.clone(),
                secret: Secret::new(value),
                placement,
            }))
        }
        Some(_) => Err(route_err(
            route,
            &format!("{field}.secret"),
            "expected a secret's name",
        )),
    }
}

/// A rule's `roles`: a non-empty list of role names.
fn rule_roles(route: &str, field: &str, value: Option<&Value>) -> Result<Vec<String>, ConfigError> {
    match value {
        Some(Value::Array(roles)) if !roles.is_empty() => roles
            .iter()
            .map(|r| match r.as_str() {
                Some(r) if valid_role(r) => Ok(r.to_string()),
                _ => Err(route_err(
                    route,
                    &format!("{field}.roles"),
                    "role names are 1-64 of a-z, 0-9, _ - .",
                )),
            })
            .collect(),
        _ => Err(route_err(
            route,
            &format!("{field}.roles"),
            "required, a non-empty list (\"anonymous\" admits everyone)",
        )),
    }
}

/// The value of the Worker secret a rule names: a plain name, set, without control characters.
fn secret_value(
    route: &str,
    field: &str,
    secret_name: &str,
    lookup: Lookup<'_>,
) -> Result<String, ConfigError> {
    let valid = !secret_name.is_empty()
        && secret_name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(route_err(
            route,
            &format!("{field}.secret"),
            "the NAME of a Worker secret (A-Z, 0-9, _), not its value",
        ));
    }
    let value = lookup(secret_name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            route_err(
                route,
                &format!("{field}.secret"),
                format!("the secret {secret_name} is not set (wrangler secret put {secret_name})"),
            )
        })?;
    if value.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(route_err(
            route,
            &format!("{field}.secret"),
            format!("the secret {secret_name} contains control characters"),
        ));
    }
    Ok(value)
}

pub(crate) fn parse_placement(
    route: &str,
    field: &str,
    value: &Value,
) -> Result<Placement, ConfigError> {
    let bad = |why: &str| route_err(route, field, why);
    let Value::Object(spec) = value else {
        return Err(bad(
            "expected { header = \"api-key\", value = \"{secret}\" } or { query = \"api_key\" }",
        ));
    };
    match (spec.get("header"), spec.get("query")) {
        (Some(Value::String(header)), None) => header_placement(spec, header).map_err(bad),
        (None, Some(Value::String(query))) => query_placement(spec, query).map_err(bad),
        _ => Err(bad("set exactly one of header or query")),
    }
}

/// `{ header = "…", value = "…{secret}…" }`; an error says why.
fn header_placement(spec: &Map<String, Value>, header: &str) -> Result<Placement, &'static str> {
    let name = header.trim().to_ascii_lowercase();
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err("not a valid header name");
    }
    let reserved = [
        "host",
        "content-length",
        "content-type",
        "content-digest",
        "signature",
        "signature-input",
    ];
    if is_hop_by_hop(&name) || reserved.contains(&name.as_str()) || name.starts_with("x-gatehouse-")
    {
        return Err("this header cannot carry a credential");
    }
    let template = match spec.get("value") {
        None => "{secret}".to_string(),
        Some(Value::String(t)) if t.contains("{secret}") => t.clone(),
        Some(_) => return Err("value must be a string containing {secret}"),
    };
    if template.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("value contains control characters");
    }
    if spec.keys().any(|k| k != "header" && k != "value") {
        return Err("a header injection has only header and value");
    }
    Ok(Placement::Header { name, template })
}

/// `{ query = "…" }`; an error says why.
fn query_placement(spec: &Map<String, Value>, query: &str) -> Result<Placement, &'static str> {
    let name = query.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err("the query parameter name must be plain (A-Z a-z 0-9 - . _ ~)");
    }
    if spec.keys().any(|k| k != "query") {
        return Err("a query injection has only query");
    }
    Ok(Placement::Query {
        name: name.to_string(),
    })
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and every `Proxy-*` header, never forwarded in either
/// direction.
pub fn is_hop_by_hop(name: &str) -> bool {
    name.starts_with("proxy-")
        || matches!(
            name,
            "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
        )
}

/// Header names compared the way CGI/PHP see them: lower-case, `_` as `-`.
pub fn normalize_header_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// Query parameter names compared the way PHP reads them (see [`crate::domain::proxy::names`]): decoded,
/// lower-case, cut at NUL and at an array `[`, with spaces, dots and an unclosed `[` as `_`
/// (`api.key`, `api key`, `api[key`, `api_key%00x` and `api_key[]` all reach
/// `$_GET['api_key']`).
pub fn normalize_param_name(name: &str) -> String {
    let decoded = crate::primitives::encoding::decode_query_component(name);
    // PHP's built-in server drops a `?` that starts the query.
    let decoded = decoded.strip_prefix('?').unwrap_or(&decoded);
    crate::domain::proxy::names::php_name(decoded).to_lowercase()
}
