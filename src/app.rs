//! Routing and handlers: `(request) -> response`, with everything external passed in.

use serde_json::{json, Map, Value};

use crate::caller::authenticate;
use crate::client_asset;
use crate::config::{Config, Registration};
use crate::csrf;
use crate::password::{self, Verdict};
use crate::primitives::cookies;
use crate::primitives::cors;
use crate::primitives::encoding::base32_lower;
use crate::primitives::error::Error;
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::{random_array, Clock, Pbkdf2, Rng};
use crate::proxy::{self, Route, Upstream, UpstreamFailure, UpstreamResponse};
use crate::ratelimit::{self, Bucket};
use crate::refresh::{self, Decision};
use crate::store::{AuditEvent, NewFamily, RevokeReason, Rotation, Store, User};
use crate::token::{AccessClaims, VerifiedAccess};

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "gatehouse_refresh";
/// Path the refresh cookie is scoped to.
pub const REFRESH_COOKIE_PATH: &str = "/auth";

/// Everything a request is handled with.
pub struct Services<'a, S, H> {
    /// The validated configuration.
    pub config: &'a Config,
    /// Storage.
    pub store: &'a S,
    /// PBKDF2.
    pub hasher: &'a H,
    /// The request's time.
    pub clock: &'a dyn Clock,
    /// Randomness.
    pub rng: &'a dyn Rng,
}

/// What the adapter sends back: a response of Gatehouse's own, or an upstream's answer whose
/// body it streams through unread.
#[derive(Debug)]
pub enum Outcome<B> {
    /// Answered by Gatehouse.
    Local(Response),
    /// Answered by a proxied route's upstream (headers already filtered).
    Proxied(UpstreamResponse<B>),
}

/// Serves one request: a proxied route goes upstream, everything else to [`handle`].
pub async fn serve<S: Store, H: Pbkdf2, U: Upstream>(
    svc: &Services<'_, S, H>,
    upstream: &U,
    mut req: Request,
) -> Outcome<U::Body> {
    let preflight = cors::preflight(&svc.config.allowed_origins, &req).is_some();
    let mut outcome = match svc.config.routes.find(&req.path) {
        Some(route) if !preflight => {
            // The body moves on to the upstream request.
            let body = std::mem::take(&mut req.body);
            match forward(svc, upstream, route, &req, body).await {
                Ok(answer) => Outcome::Proxied(answer),
                Err(err) => Outcome::Local(Response::error(&err)),
            }
        }
        _ => Outcome::Local(handle(svc, &req).await),
    };
    // The single exit of buffered and streamed answers alike.
    match &mut outcome {
        Outcome::Local(response) => finish(svc.config, &req, &mut response.headers),
        Outcome::Proxied(answer) => finish(svc.config, &req, &mut answer.headers),
    }
    outcome
}

/// The proxy's phases for one request on `route`; `body` is the request's, taken out of it.
/// Nothing reaches the upstream before every check has passed.
async fn forward<S: Store, H: Pbkdf2, U: Upstream>(
    svc: &Services<'_, S, H>,
    upstream: &U,
    route: &Route,
    req: &Request,
    body: Vec<u8>,
) -> Result<UpstreamResponse<U::Body>, Error> {
    proxy::check_path(route, req)?;
    let incoming = proxy::Incoming::new(route, req, body)?;
    let targets = proxy::select(route, req, incoming.json())?;
    let caller = authenticate(svc, req).await?;
    let (target, rule) = proxy::authorize(route, targets, &req.method, caller.as_ref())?;
    let prepared = proxy::prepare(route, &target, caller.as_ref(), req, incoming)?;
    let secret = svc
        .config
        .upstream_signing_secret
        .as_ref()
        .ok_or_else(|| Error::Internal("ROUTES without UPSTREAM_SIGNING_SECRET".into()))?;
    let identity = proxy::Identity {
        secret: secret.expose().as_bytes(),
        now_secs: svc.clock.now_ms().div_euclid(1000),
    };
    let upstream_failure = |failure| match failure {
        UpstreamFailure::Unreachable(cause) => Error::UpstreamUnavailable(cause),
        UpstreamFailure::Timeout => Error::UpstreamTimeout(route.timeout_ms),
    };
    if let Some((lookup_request, lookup)) =
        proxy::owner_lookup(route, &target, caller.as_ref(), req, &prepared, &identity)
    {
        let answer = upstream
            .send(lookup_request)
            .await
            .map_err(upstream_failure)?;
        let bytes = upstream
            .read_body(answer.body, proxy::policy::LOOKUP_BODY_LIMIT)
            .await
            .map_err(upstream_failure)?;
        proxy::check_owner(lookup, answer.status, &bytes, caller.as_ref())?;
    }
    let request = proxy::rewrite(route, rule, caller.as_ref(), req, prepared.body, &identity);
    let answer = upstream.send(request).await.map_err(upstream_failure)?;
    Ok(UpstreamResponse {
        status: answer.status,
        headers: proxy::filter_response(route, caller.as_ref(), answer.headers),
        body: answer.body,
    })
}

/// Handles one request. Never panics on input; every failure becomes an error response.
pub async fn handle<S: Store, H: Pbkdf2>(svc: &Services<'_, S, H>, req: &Request) -> Response {
    let mut response = match cors::preflight(&svc.config.allowed_origins, req) {
        Some(preflight) => preflight,
        None => match route(svc, req).await {
            Ok(response) => response,
            Err(err) => Response::error(&err),
        },
    };
    if req.method == "HEAD" {
        // Same status and headers as GET, no body (load balancers probe with HEAD).
        response.body.clear();
    }
    finish(svc.config, req, &mut response.headers);
    response
}

/// The single exit every response's head passes through, buffered or streamed, success or
/// error: adds the CORS headers for the request's origin.
/// Idempotent.
pub fn finish(config: &Config, req: &Request, headers: &mut Vec<(String, String)>) {
    cors::apply(&config.allowed_origins, req.header("origin"), headers);
}

async fn route<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    if req.path == "/auth/sessions" || req.path.starts_with("/auth/sessions/") {
        return crate::sessions::route(svc, req).await;
    }
    if req.path.starts_with("/admin/") {
        return crate::admin::route(svc, req).await;
    }
    let allow = match req.path.as_str() {
        "/healthz" | "/readyz" | "/.well-known/jwks.json" | "/auth/me" | "/auth/session" => {
            "GET, HEAD"
        }
        client_asset::MODULE_PATH | client_asset::TYPES_PATH => "GET, HEAD",
        "/auth/register" | "/auth/login" | "/auth/refresh" | "/auth/logout" | "/auth/password" => {
            "POST"
        }
        _ => return Err(Error::NotFound),
    };
    if !allow.split(", ").any(|m| m == req.method) {
        return Err(Error::MethodNotAllowed(allow.into()));
    }
    match req.path.as_str() {
        "/healthz" => Ok(Response::json(200, &json!({ "status": "ok" }))),
        "/readyz" => {
            svc.store.ping().await?;
            Ok(Response::json(200, &json!({ "status": "ready" })))
        }
        "/.well-known/jwks.json" => Ok(Response::json(200, &svc.config.keys.jwks())
            .with_header("cache-control", "public, max-age=300")),
        "/auth/me" => me(svc, req).await,
        "/auth/session" => session_csrf(svc, req).await,
        path @ (client_asset::MODULE_PATH | client_asset::TYPES_PATH) => {
            client_asset::serve(path).ok_or(Error::NotFound)
        }
        "/auth/password" => change_password(svc, req).await,
        "/auth/register" => register(svc, req).await,
        "/auth/login" => login(svc, req).await,
        "/auth/refresh" => refresh_session(svc, req).await,
        "/auth/logout" => logout(svc, req).await,
        _ => Err(Error::NotFound),
    }
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/// Parses a JSON object body. `allow_empty`: an empty body counts as `{}`.
pub(crate) fn json_body(
    config: &Config,
    req: &Request,
    allow_empty: bool,
) -> Result<Map<String, Value>, Error> {
    if req.body.len() > config.max_body_bytes {
        return Err(Error::PayloadTooLarge(config.max_body_bytes));
    }
    let content_type = req.media_type();
    if content_type
        .as_deref()
        .is_some_and(|media| media != "application/json")
    {
        return Err(Error::UnsupportedMediaType);
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        if allow_empty {
            return Ok(Map::new());
        }
        return Err(if content_type.is_none() {
            Error::UnsupportedMediaType
        } else {
            Error::InvalidJson
        });
    }
    if content_type.is_none() {
        return Err(Error::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::BadRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(_) => Err(Error::InvalidJson),
    }
}

pub(crate) fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(Error::BadRequest(format!("{name}: required"))),
        Some(_) => Err(Error::BadRequest(format!("{name}: expected a string"))),
    }
}

pub(crate) fn optional_string<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::BadRequest(format!(
            "{name}: expected a string or null"
        ))),
    }
}

fn optional_bool(body: &Map<String, Value>, name: &str) -> Result<bool, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::BadRequest(format!("{name}: expected true or false"))),
    }
}

/// Trims and lower-cases an email and checks its shape.
pub fn normalize_email(raw: &str) -> Result<String, Error> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(Error::BadRequest("email: not a valid email address".into()))
    }
}

/// Checks a display name: at most 200 characters, no control characters; blank means none.
pub fn normalize_name(raw: Option<&str>) -> Result<Option<String>, Error> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "name: at most 200 characters, no control characters".into(),
        ));
    }
    Ok(Some(name.to_string()))
}

/// A new random identifier with `prefix`: 128 bits in base32.
pub fn new_id(rng: &dyn Rng, prefix: &str) -> String {
    let bytes: [u8; 16] = random_array(rng);
    format!("{prefix}{}", base32_lower(&bytes))
}

// ---------------------------------------------------------------------------------------------
// Responses

pub(crate) fn user_json(user: &User) -> Value {
    json!({ "id": user.id, "email": user.email, "name": user.name, "roles": user.roles })
}

fn refresh_cookie(config: &Config, value: &str, max_age_secs: i64) -> String {
    cookies::set_cookie(
        REFRESH_COOKIE,
        value,
        REFRESH_COOKIE_PATH,
        max_age_secs,
        config.cookie_same_site,
    )
}

/// Where the refresh token of a response goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Cookie,
    Body,
}

fn session_response<S, H>(
    svc: &Services<'_, S, H>,
    status: u16,
    user: &User,
    refresh_token: &str,
    family: (&str, i64),
    delivery: Delivery,
) -> Result<Response, Error> {
    let (family_id, family_expires_at) = family;
    let config = svc.config;
    let now = svc.clock.now_ms();
    let claims = AccessClaims {
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        sub: user.id.clone(),
        jti: new_id(svc.rng, ""),
        roles: user.roles.clone(),
        sid: Some(family_id.to_string()),
    };
    let access_token = config.keys.sign(claims, now, config.access_ttl_secs)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": config.access_ttl_secs,
        "user": user_json(user),
        "csrf_token": config.csrf_key.token(family_id),
    });
    let response = match delivery {
        Delivery::Body => {
            body["refresh_token"] = Value::String(refresh_token.to_string());
            Response::json(status, &body)
        }
        Delivery::Cookie => {
            let max_age = ((family_expires_at - now) / 1000).max(0);
            Response::json(status, &body).append_header(
                "set-cookie",
                &refresh_cookie(config, refresh_token, max_age),
            )
        }
    };
    Ok(response)
}

/// An audit event about the caller's own account (actor and subject alike).
fn event(
    req: &Request,
    now: i64,
    kind: &str,
    user_id: Option<&str>,
    family_id: Option<&str>,
    detail: Option<Value>,
) -> AuditEvent {
    crate::admin::audit_event(req, now, kind, user_id, user_id, family_id, detail)
}

/// Starts a refresh family for `user`: its first token and the family record.
fn new_family<S, H>(svc: &Services<'_, S, H>, req: &Request, user_id: &str) -> (String, NewFamily) {
    let now = svc.clock.now_ms();
    let token = refresh::generate(svc.rng);
    let family = NewFamily {
        id: new_id(svc.rng, "fam_"),
        user_id: user_id.to_string(),
        created_at: now,
        expires_at: now + svc.config.refresh_ttl_secs * 1000,
        user_agent: req.user_agent(),
        first_token_hash: refresh::hash(&token),
    };
    (token, family)
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn register<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let body = json_body(svc.config, req, false)?;
    if svc.config.registration == Registration::Closed {
        return Err(Error::RegistrationClosed);
    }
    if let Some(ip) = req.client_ip() {
        ratelimit::check(svc, Bucket::RegisterIp, ip).await?;
    }
    let email = normalize_email(string_field(&body, "email")?)?;
    let pw = string_field(&body, "password")?;
    let name = normalize_name(optional_string(&body, "name")?)?;
    let delivery = if optional_bool(&body, "refresh_token_in_body")? {
        Delivery::Body
    } else {
        Delivery::Cookie
    };
    password::check_policy(pw)?;

    let now = svc.clock.now_ms();
    let user = User {
        id: new_id(svc.rng, "usr_"),
        email,
        name,
        password_hash: password::hash(svc.hasher, svc.rng, pw, svc.config.pbkdf2_iterations)
            .await?,
        roles: svc.config.default_roles.clone(),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let (token, family) = new_family(svc, req, &user.id);
    let registered = event(
        req,
        now,
        "registered",
        Some(&user.id),
        Some(&family.id),
        None,
    );
    svc.store
        .create_user(&user, Some(&family), Some(&registered))
        .await?;
    session_response(
        svc,
        201,
        &user,
        &token,
        (&family.id, family.expires_at),
        delivery,
    )
}

async fn login<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let body = json_body(svc.config, req, false)?;
    let raw_email = string_field(&body, "email")?;
    let pw = string_field(&body, "password")?;
    let delivery = if optional_bool(&body, "refresh_token_in_body")? {
        Delivery::Body
    } else {
        Delivery::Cookie
    };
    let iterations = svc.config.pbkdf2_iterations;
    let now = svc.clock.now_ms();

    // Only a well-formed address is looked up or logged: a password typed into the email field
    // must not end up in the audit log.
    let email = normalize_email(raw_email).ok();
    if let Some(ip) = req.client_ip() {
        ratelimit::check(svc, Bucket::LoginIp, ip).await?;
    }
    if let Some(email) = &email {
        ratelimit::check(svc, Bucket::LoginAccount, email).await?;
    }
    let user = match &email {
        Some(email) => svc.store.user_by_email(email).await?,
        None => None,
    };
    let Some(user) = user else {
        // Same work, same answer as a wrong password.
        password::dummy_verify(svc.hasher, pw, iterations).await?;
        svc.store
            .record_event(&event(
                req,
                now,
                "login_failed",
                None,
                None,
                Some(json!({ "email": email, "cause": "unknown_email" })),
            ))
            .await?;
        return Err(Error::InvalidCredentials);
    };
    let verdict = password::verify(svc.hasher, &user.password_hash, pw, iterations).await?;
    if verdict == Verdict::Mismatch || user.disabled {
        let cause = if user.disabled {
            "disabled"
        } else {
            "wrong_password"
        };
        svc.store
            .record_event(&event(
                req,
                now,
                "login_failed",
                Some(&user.id),
                None,
                Some(json!({ "cause": cause })),
            ))
            .await?;
        return Err(Error::InvalidCredentials);
    }
    if verdict == Verdict::MatchNeedsRehash {
        let phc = password::hash(svc.hasher, svc.rng, pw, iterations).await?;
        svc.store.upgrade_password_hash(&user.id, &phc, now).await?;
    }
    let (token, family) = new_family(svc, req, &user.id);
    let succeeded = event(
        req,
        now,
        "login_succeeded",
        Some(&user.id),
        Some(&family.id),
        None,
    );
    svc.store.create_family(&family, Some(&succeeded)).await?;
    session_response(
        svc,
        200,
        &user,
        &token,
        (&family.id, family.expires_at),
        delivery,
    )
}

/// The refresh token of a request: from the body (wins) or the cookie.
fn presented_refresh_token(
    body: &Map<String, Value>,
    req: &Request,
) -> Result<Option<(String, Delivery)>, Error> {
    if let Some(token) = optional_string(body, "refresh_token")? {
        return Ok(Some((token.to_string(), Delivery::Body)));
    }
    let cookies: Vec<&str> = req
        .cookies(REFRESH_COOKIE)
        .filter(|v| !v.is_empty())
        .collect();
    match cookies.as_slice() {
        [] => Ok(None),
        // A cookie the browser sends on its own must not let another site trigger a state
        // change: requiring JSON makes any cross-origin attempt a CORS preflight.
        [_] if req.header("content-type").is_none() => Err(Error::UnsupportedMediaType),
        [token] => Ok(Some((token.to_string(), Delivery::Cookie))),
        // Two cookies of this name: one was planted (e.g. by a sibling subdomain with a
        // broader Domain or Path). Which one is ours cannot be told, so neither is used.
        _ => Err(Error::InvalidRefreshToken("more than one refresh cookie")),
    }
}

async fn refresh_session<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let body = json_body(svc.config, req, true)?;
    let Some((presented, delivery)) = presented_refresh_token(&body, req)? else {
        return Err(Error::NoAuth);
    };
    if delivery == Delivery::Cookie {
        csrf::check_origin(svc.config, req)?;
    }
    if !refresh::well_formed(&presented) {
        return Err(Error::InvalidRefreshToken("malformed"));
    }
    let limit_refresh = svc.config.rate_limits.refresh_per_family > 0;
    if delivery == Delivery::Cookie || limit_refresh {
        let state = svc.store.token_state(&refresh::hash(&presented)).await?;
        if delivery == Delivery::Cookie {
            // The cookie came on its own: the page must also know the session's CSRF token.
            let Some(state) = &state else {
                return Err(Error::InvalidRefreshToken("unknown"));
            };
            csrf::check(svc.config, req, &state.family.id)?;
        }
        if let (true, Some(state)) = (limit_refresh, &state) {
            ratelimit::check(svc, Bucket::RefreshFamily, &state.family.id).await?;
        }
    }
    let now = svc.clock.now_ms();
    let ours = refresh::generate(svc.rng);
    let rotation = Rotation {
        token_hash: refresh::hash(&presented),
        successor_hash: refresh::hash(&ours),
        successor_sealed: refresh::seal(&presented, &ours),
        now,
        idle_cutoff: now - svc.config.refresh_idle_secs * 1000,
    };
    let Some(state) = svc.store.rotate_refresh(&rotation).await? else {
        return Err(Error::InvalidRefreshToken("unknown"));
    };
    let family = &state.family;
    let windows = refresh::Windows {
        idle_cutoff: rotation.idle_cutoff,
        grace_ms: svc.config.refresh_grace_secs * 1000,
    };
    match refresh::decide(&state, &presented, &ours, now, windows) {
        Decision::Issue { token, .. } => {
            let user = svc.store.user_by_id(&family.user_id).await?;
            let Some(user) = user.filter(|u| !u.disabled) else {
                return Err(Error::InvalidRefreshToken("user missing or disabled"));
            };
            session_response(
                svc,
                200,
                &user,
                &token,
                (&family.id, family.expires_at),
                delivery,
            )
        }
        Decision::Reuse(cause) => {
            let detail = json!({
                "cause": "rotated_token_replayed_after_grace",
                "generation": cause.generation,
                "rotated_ms_ago": cause.rotated_ms_ago,
            });
            let ev = event(
                req,
                now,
                "refresh_token_reused",
                Some(&family.user_id),
                Some(&family.id),
                Some(detail),
            );
            svc.store
                .revoke_family(&family.id, RevokeReason::Reuse, now, Some(&ev))
                .await?;
            Err(Error::RefreshTokenReused)
        }
        Decision::Reject(err) => Err(err),
    }
}

async fn logout<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let body = json_body(svc.config, req, true)?;
    let now = svc.clock.now_ms();
    if let Some((token, delivery)) = presented_refresh_token(&body, req)? {
        if delivery == Delivery::Cookie {
            csrf::check_origin(svc.config, req)?;
        }
        if refresh::well_formed(&token) {
            if let Some(state) = svc.store.token_state(&refresh::hash(&token)).await? {
                if delivery == Delivery::Cookie {
                    csrf::check(svc.config, req, &state.family.id)?;
                }
                let family = &state.family;
                let ev = event(
                    req,
                    now,
                    "logout",
                    Some(&family.user_id),
                    Some(&family.id),
                    None,
                );
                svc.store
                    .revoke_family(&family.id, RevokeReason::Logout, now, Some(&ev))
                    .await?;
            }
        }
    }
    Ok(Response::empty(204).append_header("set-cookie", &refresh_cookie(svc.config, "", 0)))
}

/// `GET /auth/session`: the CSRF token of the session in the refresh cookie, for a page that was
/// reloaded and holds nothing but that HttpOnly cookie. Changes nothing. Only allowed origins
/// (or the same origin) get an answer, and CORS lets only them read it.
async fn session_csrf<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    csrf::check_origin(svc.config, req)?;
    let cookies: Vec<&str> = req
        .cookies(REFRESH_COOKIE)
        .filter(|v| !v.is_empty())
        .collect();
    let token = match cookies.as_slice() {
        [] => return Err(Error::NoAuth),
        [token] => *token,
        _ => return Err(Error::InvalidRefreshToken("more than one refresh cookie")),
    };
    if !refresh::well_formed(token) {
        return Err(Error::InvalidRefreshToken("malformed"));
    }
    let Some(state) = svc.store.token_state(&refresh::hash(token)).await? else {
        return Err(Error::InvalidRefreshToken("unknown"));
    };
    let now = svc.clock.now_ms();
    let family = &state.family;
    let live = family.revoked_at.is_none()
        && family.expires_at > now
        && family.last_used_at > now - svc.config.refresh_idle_secs * 1000
        && state
            .rotated_at
            .is_none_or(|at| now - at <= svc.config.refresh_grace_secs * 1000);
    if !live {
        return Err(Error::InvalidRefreshToken("session ended"));
    }
    Ok(Response::json(
        200,
        &json!({
            "csrf_token": svc.config.csrf_key.token(&family.id),
            "expires_at": family.expires_at / 1000,
        }),
    ))
}

/// The verified access token of a request and its (enabled) user.
async fn authenticated<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<(VerifiedAccess, User), Error> {
    let token = req.bearer()?.ok_or(Error::NoAuth)?;
    let config = svc.config;
    let verified = config.keys.verify(
        token,
        svc.clock.now_ms(),
        config.clock_leeway_secs,
        &config.issuer,
        &config.audience,
    )?;
    let user = svc.store.user_by_id(&verified.claims.sub).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        return Err(Error::InvalidToken(
            crate::primitives::error::TokenRejection::Claims,
        ));
    };
    Ok((verified, user))
}

async fn me<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let (_, user) = authenticated(svc, req).await?;
    Ok(Response::json(200, &json!({ "user": user_json(&user) })))
}

/// `POST /auth/password {current_password, new_password}` with a Bearer token: sets the new
/// password and revokes every other session of the user (the caller's own stays).
async fn change_password<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let (verified, user) = authenticated(svc, req).await?;
    // A sensitive change: the token's session must still be live, not only the token unexpired.
    if let Some(sid) = verified.claims.sid.as_deref() {
        let family = svc.store.family(sid).await?;
        if family.is_none_or(|f| f.revoked_at.is_some() || f.user_id != user.id) {
            return Err(Error::InvalidToken(
                crate::primitives::error::TokenRejection::Claims,
            ));
        }
    }
    let body = json_body(svc.config, req, false)?;
    let current = string_field(&body, "current_password")?;
    let new = string_field(&body, "new_password")?;
    password::check_policy(new)?;
    let iterations = svc.config.pbkdf2_iterations;
    let now = svc.clock.now_ms();
    if password::verify(svc.hasher, &user.password_hash, current, iterations).await?
        == Verdict::Mismatch
    {
        let detail = json!({ "cause": "wrong_current_password" });
        let ev = event(
            req,
            now,
            "password_change_failed",
            Some(&user.id),
            None,
            Some(detail),
        );
        svc.store.record_event(&ev).await?;
        return Err(Error::InvalidCredentials);
    }
    let phc = password::hash(svc.hasher, svc.rng, new, iterations).await?;
    let keep = verified.claims.sid.as_deref();
    // The store records the event with `revoked_sessions` in the same atomic write.
    let ev = event(req, now, "password_changed", Some(&user.id), keep, None);
    let revoked = svc
        .store
        .change_password(&user.id, &phc, keep, now, &ev)
        .await?;
    Ok(Response::json(200, &json!({ "revoked_sessions": revoked })))
}
