//! The key-holding proxy, in three phases (as in pingora):
//!
//! 1. **authorize** ([`authorize`]): the route, the caller, the rule that admits them;
//! 2. **rewrite** ([`rewrite`]): the upstream URL (path checked, credentials stripped from the
//!    query), the headers (client credentials, hop-by-hop and `X-Gatehouse-*` stripped; the
//!    route's secret injected; identity headers and their signature added), the body (owner
//!    field bound on writes);
//! 3. **filter** ([`filter_response`]): the upstream's headers with cookies, server banners,
//!    CORS, hop-by-hop and anything echoing a credential removed, and `Cache-Control` set.
//!
//! The upstream's body is never touched: the adapter streams it back.

pub mod path;
pub mod routes;
pub mod sign;

use serde_json::Value;

use crate::caller::Caller;
use crate::error::Error;
use crate::http::Request;

use routes::{
    is_hop_by_hop, normalize_header_name, normalize_param_name, Injection, Placement, Rule,
};
pub use routes::{Route, Routes};

/// A request for the upstream, fully rewritten. `Debug` shows no header value, query or body:
/// they carry the injected key.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// Method.
    pub method: String,
    /// Absolute URL under the route's base.
    pub url: String,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body, if the client sent one.
    pub body: Option<Vec<u8>>,
    /// How long to wait for the upstream's answer.
    pub timeout_ms: u32,
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match self.url.split_once('?') {
            Some((path, _)) => format!("{path}?…"),
            None => self.url.clone(),
        };
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("url", &url)
            .field("headers", &crate::http::RedactedHeaders(&self.headers))
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// The upstream's answer; `B` is the body the adapter streams back unread.
#[derive(Debug)]
pub struct UpstreamResponse<B> {
    /// Status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: B,
}

/// Why the upstream gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Connection refused, DNS, TLS, reset…: the cause, for the log.
    Unreachable(String),
    /// No answer within the timeout.
    Timeout,
}

/// Sends rewritten requests upstream (outbound `fetch` in the worker; a recorder in tests).
#[allow(async_fn_in_trait)] // Workers futures are !Send; implementors never need Send here.
pub trait Upstream {
    /// The response body type, passed back without being read.
    type Body;
    /// Sends `request`, honouring its timeout and never following redirects.
    async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse<Self::Body>, UpstreamFailure>;
}

/// Phase 0, before any credential is looked at: the path after the route's prefix must stay
/// under the upstream base (see [`path`]).
pub fn check_path(route: &Route, req: &Request) -> Result<(), Error> {
    path::check_remainder(&req.path[route.prefix.len()..])
}

/// Phase 1: the rule that admits `caller` to `route` for `method`.
pub fn authorize<'r>(
    route: &'r Route,
    method: &str,
    caller: Option<&Caller>,
) -> Result<&'r Rule, Error> {
    let rules = route
        .rules_for(method)
        .ok_or(Error::MethodNotAllowed(route.allow()))?;
    if let Some(caller) = caller {
        if !caller.may_use_route(&route.name) {
            return Err(Error::ScopeViolation);
        }
    }
    rules
        .iter()
        .find(|rule| rule.admits(caller.map(|c| c.roles.as_slice())))
        .ok_or(match caller {
            None => Error::NoAuth,
            Some(_) => Error::InsufficientRole,
        })
}

/// Identity headers and their signature.
pub struct Identity<'a> {
    /// The HMAC key (`UPSTREAM_SIGNING_SECRET`).
    pub secret: &'a [u8],
    /// Unix seconds, for `created`.
    pub now_secs: i64,
}

/// Phase 2: the upstream request for `req` on `route` under `rule`; `req`'s path has passed
/// [`check_path`]. `body` is the request's body, taken out of `req` so it is moved, not copied.
pub fn rewrite(
    route: &Route,
    rule: &Rule,
    caller: Option<&Caller>,
    req: &Request,
    body: Vec<u8>,
    identity: &Identity<'_>,
) -> Result<UpstreamRequest, Error> {
    let remainder = &req.path[route.prefix.len()..];
    let injection = rule.injection.as_ref();
    let write = Route::is_write(&req.method);

    // The body: limited; dropped on reads (fetch refuses a GET or HEAD with a body); bound to
    // its owner on writes.
    if body.len() > route.max_body_bytes {
        return Err(Error::PayloadTooLarge(route.max_body_bytes));
    }
    // A JSON write body is parsed once, for both the override check and the owner binding.
    let media = media_type(req);
    let json = (write && !body.is_empty() && is_json(&media))
        .then(|| serde_json::from_slice::<Value>(&body).map_err(|_| Error::InvalidJson));
    if write && !body.is_empty() {
        refuse_method_override(&media, json.as_ref(), &body)?;
    }
    let body = match (&route.owner_field, write) {
        (Some(field), true) => {
            if body.is_empty() && req.method != "DELETE" {
                return Err(Error::BadRequest(format!(
                    "this route sets {} to the caller: send a JSON object body",
                    field.join(".")
                )));
            }
            (!body.is_empty())
                .then(|| bind_owner(field, json, caller))
                .transpose()?
        }
        _ if !write || body.is_empty() => None,
        _ => Some(body),
    };

    // The URL: base + checked remainder + the query without client credentials (nor, on writes,
    // anything a form-reading CMS could take for the owner field).
    let scheme_end = route.upstream.find("://").map_or(0, |i| i + 3);
    let upstream_path_start = scheme_end + route.upstream[scheme_end..].find('/').unwrap_or(0);
    let mut url = format!("{}{remainder}", route.upstream);
    let owner_root = route
        .owner_field
        .as_ref()
        .filter(|_| write)
        .and_then(|f| f.first())
        .map(String::as_str);
    let query = rewrite_query(route, injection, owner_root, &req.query);
    let path_end = url.len();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }

    // The headers: what the client sent minus credentials, plus ours.
    let mut headers = forwardable_headers(route, injection, req);
    if let Some(injection) = injection {
        if let Placement::Header { name, template } = &injection.placement {
            headers.push((
                name.clone(),
                template.replace("{secret}", injection.secret.expose()),
            ));
        }
    }
    let auth = caller.map_or("anonymous", |c| c.kind.as_str());
    let roles = caller.map_or_else(String::new, |c| c.roles.join(","));
    let digest = sign::content_digest(body.as_deref().unwrap_or(&[]));
    let mut fields: Vec<(&str, &str)> = vec![
        ("content-digest", &digest),
        ("x-gatehouse-auth", auth),
        ("x-gatehouse-roles", &roles),
    ];
    if let Some(caller) = caller {
        fields.push(("x-gatehouse-user", &caller.user_id));
    }
    let (signature_input, signature) = sign::sign(
        identity.secret,
        &sign::Signed {
            method: &req.method,
            path: &url[upstream_path_start..path_end],
            query: &query,
            fields: &fields,
            created: identity.now_secs,
        },
    );
    for (name, value) in &fields {
        headers.push((name.to_string(), value.to_string()));
    }
    headers.push(("signature-input".into(), signature_input));
    headers.push(("signature".into(), signature));

    Ok(UpstreamRequest {
        method: req.method.clone(),
        url,
        headers,
        body,
        timeout_ms: route.timeout_ms,
    })
}

/// The client's query without stripped parameters, plus an injected one. `owner_root` (on
/// writes to an owner-bound route) is the owner field's first segment: parameters rooted there
/// (`data[_by]`, `data.title`) are stripped too.
fn rewrite_query(
    route: &Route,
    injection: Option<&Injection>,
    owner_root: Option<&str>,
    query: &str,
) -> String {
    let injected = injection.and_then(|i| match &i.placement {
        Placement::Query { name } => Some((name.as_str(), i.secret.expose())),
        Placement::Header { .. } => None,
    });
    let injected_slot = injected.map(|(name, _)| normalize_param_name(name));
    let mut out: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let raw = pair.split('=').next().unwrap_or("");
            let name = normalize_param_name(raw);
            !(route.strip_query.contains(&name)
                || injected_slot.as_deref() == Some(name.as_str())
                || owner_root.is_some_and(|root| param_root(raw).eq_ignore_ascii_case(root)))
        })
        .map(str::to_string)
        .collect();
    if let Some((name, secret)) = injected {
        out.push(format!("{name}={}", path::encode_component(secret)));
    }
    out.join("&")
}

/// A query parameter's decoded name up to its first `[` or `.` (`data[_by]` → `data`).
fn param_root(raw: &str) -> String {
    let decoded = path::decode_query_component(raw);
    let trimmed = decoded.trim_start();
    trimmed.split(['[', '.']).next().unwrap_or("").to_string()
}

/// Client headers that may go upstream.
fn forwardable_headers(
    route: &Route,
    injection: Option<&Injection>,
    req: &Request,
) -> Vec<(String, String)> {
    // Headers the client names in `Connection` are hop-by-hop too.
    let connection_listed: Vec<String> = req
        .headers
        .iter()
        .filter(|(k, _)| k == "connection")
        .flat_map(|(_, v)| v.split(','))
        .map(normalize_header_name)
        .collect();
    let injected_header = injection.and_then(|i| match &i.placement {
        Placement::Header { name, .. } => Some(normalize_header_name(name)),
        Placement::Query { .. } => None,
    });
    req.headers
        .iter()
        .filter(|(name, _)| {
            let n = normalize_header_name(name);
            !(is_hop_by_hop(&n)
                || connection_listed.contains(&n)
                || route.strip_headers.contains(&n)
                || injected_header.as_deref() == Some(n.as_str())
                || n.starts_with("x-gatehouse-")
                || n.starts_with("cf-")
                || matches!(
                    n.as_str(),
                    "host"
                        | "content-length"
                        | "x-csrf-token"
                        | "content-digest"
                        | "signature"
                        | "signature-input"
                ))
        })
        .cloned()
        .collect()
}

/// Sets the owner field of the JSON body to the caller's id (`null` for an anonymous caller);
/// `json` is the parsed body, `None` when it was not sent as JSON.
fn bind_owner(
    field: &[String],
    json: Option<Result<Value, Error>>,
    caller: Option<&Caller>,
) -> Result<Vec<u8>, Error> {
    let mut value = json.ok_or(Error::UnsupportedMediaType)??;
    let owner = caller.map_or(Value::Null, |c| Value::String(c.user_id.clone()));
    let dotted = field.join(".");
    let mut node = &mut value;
    for (i, key) in field.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(Error::BadRequest(format!(
                "{dotted}: the body must be a JSON object down to this field"
            )));
        };
        if i + 1 == field.len() {
            map.insert(key.clone(), owner);
            break;
        }
        node = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(value.to_string().into_bytes())
}

/// The request's media type, lower-case, without parameters (`""` when absent).
fn media_type(req: &Request) -> String {
    req.header("content-type")
        .and_then(|ct| ct.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

/// Refuses a write whose body carries a `_method` field (a form field, a multipart part or a
/// top-level JSON member): Laravel, Symfony and Rails take it for the HTTP method, which would
/// let a caller admitted for `POST` run the `DELETE` the route keeps for other roles.
/// `json` is the body parsed, when it was sent as JSON.
fn refuse_method_override(
    media: &str,
    json: Option<&Result<Value, Error>>,
    body: &[u8],
) -> Result<(), Error> {
    let is_override = |name: &str| name.trim().eq_ignore_ascii_case("_method");
    let found = if let Some(parsed) = json {
        // Unparseable JSON goes on as it is: no framework reads a field out of it either.
        matches!(parsed, Ok(Value::Object(map)) if map.keys().any(|k| is_override(k)))
    } else if media == "application/x-www-form-urlencoded" {
        String::from_utf8_lossy(body).split('&').any(|pair| {
            is_override(&path::decode_query_component(
                pair.split('=').next().unwrap_or(""),
            ))
        })
    } else if media.starts_with("multipart/") {
        let text = String::from_utf8_lossy(body).to_ascii_lowercase();
        text.contains("name=\"_method\"") || text.contains("name=_method")
    } else {
        false
    };
    if found {
        return Err(Error::BadRequest(
            "_method: method overrides are refused; send the request with its real method".into(),
        ));
    }
    Ok(())
}

/// Phase 3: the headers sent back to the client for an upstream answer.
pub fn filter_response(
    route: &Route,
    caller: Option<&Caller>,
    headers: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(name, value)| {
            let n = normalize_header_name(name);
            !(is_hop_by_hop(&n)
                || route.strip_headers.contains(&n)
                || n.starts_with("access-control-")
                || n.starts_with("x-gatehouse-")
                || matches!(
                    n.as_str(),
                    "set-cookie" | "set-cookie2" | "server" | "x-powered-by" | "content-length"
                )
                || route.secrets().any(|s| {
                    value.contains(s.expose())
                        || value.contains(&path::encode_component(s.expose()))
                }))
        })
        .collect();
    if caller.is_some() && !route.public {
        out.retain(|(n, _)| n != "cache-control" && n != "expires" && n != "pragma");
        out.push(("cache-control".into(), "private, no-store".into()));
    }
    vary_on_authorization(&mut out);
    out
}

/// Merges `Authorization` into `Vary` (one header), so a cache never serves the answer given to
/// one caller (or to nobody) to a request with another credential.
fn vary_on_authorization(headers: &mut Vec<(String, String)>) {
    let tokens: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n == "vary")
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens
        .iter()
        .any(|t| t == "*" || t.eq_ignore_ascii_case("authorization"))
    {
        return;
    }
    headers.retain(|(n, _)| n != "vary");
    let mut merged = tokens;
    merged.push("Authorization".into());
    headers.push(("vary".into(), merged.join(", ")));
}
