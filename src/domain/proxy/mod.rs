//! The key-holding proxy, in phases (as in pingora), each refusing before the next runs:
//!
//! 1. **select** ([`check_path`], [`Incoming::new`], [`select`]): the path stays under the base,
//!    the body is within the limit, and endpoints of the route match the method and path
//!    (else `404`/`405`), before any credential is looked at;
//! 2. **authorize** ([`authorize`]): the first of those endpoints with a rule that admits the
//!    caller (authenticated by the caller module in between);
//! 3. **policy** ([`prepare`]): the endpoint's query list and body policy; then, for an
//!    owner-checked update or delete, the stored item's owner ([`owner_lookup`],
//!    [`check_owner`]);
//! 4. **rewrite** ([`rewrite`]): the upstream URL, the headers (client credentials, forwarding
//!    and hop-by-hop headers stripped; the rule's secret injected; identity, forwarding headers
//!    and their signature added) and the body;
//! 5. **filter** ([`filter_response`]): the upstream's headers with cookies, server banners,
//!    CORS, hop-by-hop and anything echoing a credential removed, and `Cache-Control` set.
//!
//! The upstream's body is never touched: the adapter streams it back.

pub mod json;
pub mod names;
pub mod path;
pub mod policy;
pub mod routes;
pub mod sign;

use serde_json::Value;

use crate::domain::caller::Caller;
use crate::primitives::encoding;
use crate::primitives::error::Error;
use crate::primitives::http::{Method, Request};

pub use policy::Target;
use policy::{Action, OwnerLookup};
use routes::{
    is_hop_by_hop, normalize_header_name, normalize_param_name, Injection, Placement, Rule,
};
pub use routes::{Route, Routes};

/// A request for the upstream, fully rewritten. `Debug` shows no header value, query or body:
/// they carry the injected key.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// Method.
    pub method: Method,
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
            .field(
                "headers",
                &crate::primitives::http::RedactedHeaders(&self.headers),
            )
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
    /// Reads an answer's body (an owner lookup's), refusing more than `limit` bytes.
    async fn read_body(&self, body: Self::Body, limit: usize) -> Result<Vec<u8>, UpstreamFailure>;
}

/// Phase 1 (select), before any credential is looked at: the path after the route's prefix (the
/// remainder, cut here once for every later phase), which must stay under the upstream base
/// (see [`path`]).
pub fn check_path<'q>(route: &Route, req: &'q Request) -> Result<&'q str, Error> {
    let remainder = &req.path[route.prefix.len()..];
    path::check_remainder(remainder)?;
    Ok(remainder)
}

/// A proxied request's body, size-checked, with its JSON parsed once (strictly) when it is a
/// write sent as JSON.
pub struct Incoming {
    body: Vec<u8>,
    media: String,
    json: Option<Result<Value, Error>>,
}

impl Incoming {
    /// Checks the size of `body` (taken out of `req`, so it is moved, not copied) and parses it.
    pub fn new(route: &Route, req: &Request, body: Vec<u8>) -> Result<Self, Error> {
        if body.len() > route.max_body_bytes {
            return Err(Error::PayloadTooLarge(route.max_body_bytes));
        }
        let media = req.media_type().unwrap_or_default();
        let json = (!req.method.is_read() && !body.is_empty() && is_json(&media)).then(|| {
            json::parse(&body).map_err(|e| match e {
                json::StrictError::Syntax => Error::InvalidJson,
                json::StrictError::Duplicate(name) => {
                    Error::BodyNotAllowed(format!("{name}: a member may appear only once"))
                }
            })
        });
        Ok(Self { body, media, json })
    }

    /// The body parsed, when it is valid JSON.
    pub fn json(&self) -> Option<&Value> {
        self.json.as_ref().and_then(|r| r.as_ref().ok())
    }
}

/// Whether `method` may carry a body to change something (anything but GET and HEAD).
/// Phase 1 (select): what on `route` the request may be aimed at, in the order tried (the endpoints
/// matching its method and path, or the whole base of a `forward_all` route). `body` is the
/// parsed write body (see [`policy::select`]); `remainder` is what [`check_path`] returned.
pub fn select<'r>(
    route: &'r Route,
    req: &Request,
    remainder: &str,
    body: Option<&Value>,
) -> Result<Vec<Target<'r>>, Error> {
    if route.forward_all {
        if route.rules_for(req.method.as_str()).is_none() {
            return Err(Error::MethodNotAllowed(route.allow().into()));
        }
        return Ok(vec![Target::Base]);
    }
    policy::select(&route.endpoints, req.method.as_str(), remainder, body)
}

/// Phase 2 (authorize): the first of `targets` with a rule that admits `caller`, and that rule. When none
/// does: `no_auth` for an anonymous caller, `insufficient_role` for a signed-in one.
pub fn authorize<'r>(
    route: &'r Route,
    targets: Vec<Target<'r>>,
    method: &str,
    caller: Option<&Caller>,
) -> Result<(Target<'r>, &'r Rule), Error> {
    if let Some(caller) = caller {
        if !caller.may_use_route(&route.name) {
            return Err(Error::ScopeViolation);
        }
    }
    for target in targets {
        let rules = match &target {
            Target::Base => route.rules_for(method),
            Target::Endpoint(endpoint, _) => endpoint.rules(route.endpoint_rules_for(method)),
        };
        let admitted = rules
            .into_iter()
            .flatten()
            .find(|rule| rule.admits(caller.map(|c| c.roles.as_slice())));
        if let Some(rule) = admitted {
            return Ok((target, rule));
        }
    }
    Err(match caller {
        None => Error::NoAuth,
        Some(_) => Error::InsufficientRole,
    })
}

/// What the policy lets through: the body to forward and, for an owner-checked update or
/// delete, the item's id.
#[derive(Debug)]
pub struct Prepared {
    /// The body forwarded upstream.
    pub body: Option<Vec<u8>>,
    /// The item whose owner is checked first.
    pub item_id: Option<String>,
}

/// Phase 3 (policy): the endpoint's query list and body policy applied to the request.
pub fn prepare(
    route: &Route,
    target: &Target<'_>,
    caller: Option<&Caller>,
    req: &Request,
    incoming: Incoming,
) -> Result<Prepared, Error> {
    let Incoming { body, media, json } = incoming;
    let write = !req.method.is_read();
    let forward_unseen = |body: Vec<u8>| -> Result<Option<Vec<u8>>, Error> {
        if !write || body.is_empty() {
            // fetch refuses a GET or HEAD with a body; there is nothing to forward.
            return Ok(None);
        }
        if let Some(Err(err @ Error::BodyNotAllowed(_))) = &json {
            // A repeated member: readers disagree on which copy (of `_method`, say) wins.
            return Err(err.clone());
        }
        refuse_method_override(&media, json.as_ref(), &body)?;
        Ok(Some(body))
    };
    let Target::Endpoint(endpoint, params) = target else {
        return Ok(Prepared {
            body: forward_unseen(body)?,
            item_id: None,
        });
    };
    endpoint.check_query(&req.query)?;
    let (body, value) = match &endpoint.action {
        Action::Read => (None, None),
        Action::Forward => (forward_unseen(body)?, None),
        Action::Delete(_) => {
            if !body.is_empty() {
                return Err(Error::BodyNotAllowed("a delete here takes no body".into()));
            }
            (None, None)
        }
        Action::Create | Action::Update(_) => {
            let value = checked_body(route, endpoint, caller, req, &body, json)?;
            (Some(value.to_string().into_bytes()), Some(value))
        }
    };
    let item_id = match endpoint.owner_lookup() {
        Some((source, _)) => Some(endpoint.item_id(source, params, value.as_ref())?),
        None => None,
    };
    Ok(Prepared { body, item_id })
}

/// A create's or update's body with the endpoint's body policy applied.
fn checked_body(
    route: &Route,
    endpoint: &policy::Endpoint,
    caller: Option<&Caller>,
    req: &Request,
    body: &[u8],
    json: Option<Result<Value, Error>>,
) -> Result<Value, Error> {
    // The body is forwarded re-serialized: an encoding it came with would no longer hold.
    if req
        .header("content-encoding")
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"))
    {
        return Err(Error::UnsupportedMediaType);
    }
    if body.is_empty() {
        return Err(Error::BodyNotAllowed(
            "the body must be a JSON object".into(),
        ));
    }
    let value = json.ok_or(Error::UnsupportedMediaType)??;
    endpoint.apply_body(value, caller, route.credential_names())
}

/// The request that reads the stored item of an owner-checked update or delete, and how to
/// read its owner; `None` when the target has no owner check.
pub fn owner_lookup<'r>(
    route: &Route,
    target: &Target<'r>,
    caller: Option<&Caller>,
    req: &Request,
    prepared: &Prepared,
    identity: &Identity<'_>,
) -> Option<(UpstreamRequest, &'r OwnerLookup)> {
    let Target::Endpoint(endpoint, params) = target else {
        return None;
    };
    let (_, lookup) = endpoint.owner_lookup()?;
    let id = prepared.item_id.as_deref()?;
    let target_path = policy::lookup_target(lookup, params, id);
    let (path, query) = target_path.split_once('?').unwrap_or((&target_path, ""));
    let mut query = query.to_string();
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    inject(lookup.injection.as_ref(), &mut headers, &mut query);
    let url = format!("{}{path}", route.upstream);
    Some((
        signed_request(
            route,
            Method::Get,
            url,
            query,
            headers,
            None,
            caller,
            req,
            identity,
        ),
        lookup,
    ))
}

/// Phase 3 (policy), last step: the stored owner in the lookup's answer must be the caller.
pub fn check_owner(
    lookup: &OwnerLookup,
    status: u16,
    answer: &[u8],
    caller: Option<&Caller>,
) -> Result<(), Error> {
    match status {
        200..=299 => {}
        // Directus answers 403 for an item that does not exist (or cannot be read).
        403 | 404 | 410 => return Err(Error::NotFound),
        401 => {
            return Err(Error::UpstreamUnavailable(
                "the owner lookup was refused (401): check the lookup's secret".into(),
            ))
        }
        other => {
            return Err(Error::UpstreamUnavailable(format!(
                "the owner lookup answered {other}"
            )))
        }
    }
    let value: Value = serde_json::from_slice(answer)
        .map_err(|_| Error::UpstreamUnavailable("the owner lookup's answer is not JSON".into()))?;
    match (policy::stored_owner(lookup, &value), caller) {
        (Some(owner), Some(caller)) if owner == caller.user_id => Ok(()),
        _ => Err(Error::NotOwner),
    }
}

/// Identity headers and their signature.
pub struct Identity<'a> {
    /// The HMAC key (`UPSTREAM_SIGNING_SECRET`).
    pub secret: &'a [u8],
    /// Unix seconds, for `created`.
    pub now_secs: i64,
}

/// Phase 4 (rewrite): the upstream request for `req` on `route` under `rule`; `req`'s path has passed
/// [`check_path`] (`remainder` is what it returned) and `body` is what [`prepare`] let through.
pub fn rewrite(
    route: &Route,
    rule: &Rule,
    caller: Option<&Caller>,
    req: &Request,
    remainder: &str,
    body: Option<Vec<u8>>,
    identity: &Identity<'_>,
) -> UpstreamRequest {
    let injection = rule.injection.as_ref();
    let mut query = rewrite_query(route, injection, &req.query);
    let mut headers = forwardable_headers(route, injection, req);
    inject(injection, &mut headers, &mut query);
    let url = format!("{}{remainder}", route.upstream);
    signed_request(
        route,
        req.method.clone(),
        url,
        query,
        headers,
        body,
        caller,
        req,
        identity,
    )
}

/// Adds an injected credential to the headers or the query.
fn inject(injection: Option<&Injection>, headers: &mut Vec<(String, String)>, query: &mut String) {
    let Some(injection) = injection else {
        return;
    };
    match &injection.placement {
        Placement::Header { name, template } => headers.push((
            name.clone(),
            template.replace("{secret}", injection.secret.expose()),
        )),
        Placement::Query { name } => {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(name);
            query.push('=');
            query.push_str(&encoding::encode_component(injection.secret.expose()));
        }
    }
}

/// Finishes an upstream request: the forwarding headers Gatehouse vouches for, the identity
/// headers, the body's digest and the signature over them.
#[allow(clippy::too_many_arguments)]
fn signed_request(
    route: &Route,
    method: Method,
    mut url: String,
    query: String,
    mut headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    caller: Option<&Caller>,
    req: &Request,
    identity: &Identity<'_>,
) -> UpstreamRequest {
    let upstream_path_start = route.upstream_path_start;
    let path_end = url.len();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    let auth = caller.map_or("anonymous", |c| c.kind.as_str());
    let roles = caller.map_or_else(String::new, |c| c.roles.join(","));
    let digest = sign::content_digest(body.as_deref().unwrap_or(&[]));
    let mut fields: Vec<(&str, &str)> = vec![("content-digest", &digest)];
    if let Some(ip) = req.client_ip() {
        fields.push(("x-forwarded-for", ip));
    }
    if let Some(host) = req.header("host") {
        fields.push(("x-forwarded-host", host));
    }
    fields.push(("x-forwarded-proto", req.scheme()));
    fields.push(("x-gatehouse-auth", auth));
    fields.push(("x-gatehouse-roles", &roles));
    if let Some(caller) = caller {
        fields.push(("x-gatehouse-user", &caller.user_id));
        // A trusted issuer's caller: which issuer vouches for the user.
        if let Some(issuer) = &caller.issuer {
            fields.push(("x-gatehouse-issuer", issuer));
        }
    }
    let (signature_input, signature) = sign::sign(
        identity.secret,
        &sign::Signed {
            method: method.as_str(),
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
    UpstreamRequest {
        method,
        url,
        headers,
        body,
        timeout_ms: route.timeout_ms,
    }
}

/// The client's query without stripped parameters (on an endpoint, every parameter left has
/// passed its list).
fn rewrite_query(route: &Route, injection: Option<&Injection>, query: &str) -> String {
    let injected_slot = injection.and_then(|i| match &i.placement {
        Placement::Query { name } => Some(normalize_param_name(name)),
        Placement::Header { .. } => None,
    });
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = normalize_param_name(pair.split('=').next().unwrap_or(""));
            !(route.strip_query.contains(&name) || injected_slot.as_deref() == Some(name.as_str()))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Client headers that say where the request came from or which host it was for: only the
/// values Gatehouse sets itself may reach the CMS.
fn is_forwarding_header(name: &str) -> bool {
    name.starts_with("x-forwarded-")
        || matches!(
            name,
            "forwarded"
                | "x-real-ip"
                | "true-client-ip"
                | "x-client-ip"
                | "client-ip"
                | "x-cluster-client-ip"
                | "fastly-client-ip"
                | "x-original-forwarded-for"
                | "x-host"
                | "x-original-host"
                | "via"
        )
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
            // Only plain names go on: CGI and PHP read `.` and `_` as `-` (`Api.Key` reaches
            // PHP as HTTP_API_KEY), as nginx and Apache refuse to pass such names to CGI.
            let plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let n = normalize_header_name(name);
            plain
                && !(is_hop_by_hop(&n)
                    || connection_listed.contains(&n)
                    || route.strip_headers.contains(&n)
                    || injected_header.as_deref() == Some(n.as_str())
                    || n.starts_with("x-gatehouse-")
                    || n.starts_with("cf-")
                    || is_forwarding_header(&n)
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
            is_override(&encoding::decode_query_component(
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

/// Phase 5 (filter): the headers sent back to the client for an upstream answer; the answer
/// to an `authenticated` caller on a route not marked public is made private.
pub fn filter_response(
    route: &Route,
    authenticated: bool,
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
                        || value.contains(&encoding::encode_component(s.expose()))
                }))
        })
        .collect();
    if authenticated && !route.public {
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
