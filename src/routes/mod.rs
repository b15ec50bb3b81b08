//! The routes layer: `(request) -> response`, with everything external passed in. One router
//! sends each request to its handler; the handlers live in files by audience (`auth`,
//! `sessions`, `admin`, `assets`) and the proxy's phases in [`decide`] (with [`fast`], the same
//! phases for a proxied request without a body, decided from memory).

use serde_json::json;

use crate::domain::config::Config;
use crate::domain::proxy::{
    self, Route, Upstream, UpstreamFailure, UpstreamRequest, UpstreamResponse,
};
use crate::domain::store::Store;
use crate::primitives::cors;
use crate::primitives::error::Error;
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::services::auth::authenticate;
use crate::services::issuers::authenticate_external;
use crate::services::Services;

pub mod admin;
pub mod assets;
pub mod auth;
pub mod console;
pub mod fast;
pub mod mfa;
pub mod passkeys;
pub mod sessions;
pub mod table;
pub mod tokens;
pub mod views;

use self::auth::{
    change_password, login, logout, me, refresh_session, register, session_csrf, whoami,
};
use self::table::Endpoint;

/// What the adapter sends back: a response of Gatehouse's own, or an upstream's answer whose
/// body it streams through unread.
#[derive(Debug)]
pub enum Outcome<B> {
    /// Answered by Gatehouse.
    Local(Response),
    /// Answered by a proxied route's upstream (headers already filtered).
    Proxied(UpstreamResponse<B>),
}

/// Serves one request: a proxied route goes upstream, everything else to the route table.
/// The preflight check and [`finish`] run once each.
pub async fn serve<S: Store, H: Pbkdf2, U: Upstream>(
    svc: &Services<'_, S, H>,
    upstream: &U,
    req: Request,
) -> Outcome<U::Body> {
    let route = svc.config.proxy.routes.find(&req.path);
    serve_on(svc, upstream, req, route).await
}

/// [`serve`] with the request's proxied route already found (the adapter finds it once, for
/// the body limit, before it reads the body).
pub async fn serve_on<S: Store, H: Pbkdf2, U: Upstream>(
    svc: &Services<'_, S, H>,
    upstream: &U,
    mut req: Request,
    route: Option<&Route>,
) -> Outcome<U::Body> {
    let preflight = cors::preflight(&svc.config.browser.allowed_origins, &req);
    let mut outcome = match (preflight, route) {
        (Some(preflight), _) => Outcome::Local(preflight),
        (None, Some(route)) => {
            // The body moves on to the upstream request.
            let body = std::mem::take(&mut req.body);
            match forward(svc, upstream, route, &req, body).await {
                Ok(answer) => Outcome::Proxied(answer),
                Err(err) => Outcome::Local(Response::error(&err)),
            }
        }
        (None, None) => Outcome::Local(answer(svc, &req).await),
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
    let decision = decide(svc, upstream, route, req, body).await?;
    let answer = upstream
        .send(decision.request)
        .await
        .map_err(|failure| upstream_error(route, failure))?;
    Ok(answered(route, decision.authenticated, answer))
}

/// What the proxy decided for one request: the upstream request to send, and whether a
/// caller was authenticated (its answer is then private).
#[derive(Debug)]
pub struct Decision {
    /// The request for the upstream, rewritten and signed.
    pub request: UpstreamRequest,
    /// Whether the request carried a valid credential.
    pub authenticated: bool,
}

/// Every phase before the upstream request is sent: path, body policy, the caller, the rule,
/// an owner-bound write's lookup (through `upstream`), the rewrite and the identity signature.
pub async fn decide<S: Store, H: Pbkdf2, U: Upstream>(
    svc: &Services<'_, S, H>,
    upstream: &U,
    route: &Route,
    req: &Request,
    body: Vec<u8>,
) -> Result<Decision, Error> {
    let remainder = proxy::check_path(route, req)?;
    let incoming = proxy::Incoming::new(route, req, body)?;
    let targets = proxy::select(route, req, remainder, incoming.json())?;
    let caller = match authenticate_external(svc, req).await? {
        Some(external) => Some(external),
        None => authenticate(svc, req).await?,
    };
    let (target, rule) = proxy::authorize(route, targets, req.method.as_str(), caller.as_ref())?;
    let prepared = proxy::prepare(route, &target, caller.as_ref(), req, incoming)?;
    let secret = svc
        .config
        .proxy
        .upstream_signing_secret
        .as_ref()
        .ok_or_else(|| Error::Internal("ROUTES without UPSTREAM_SIGNING_SECRET".into()))?;
    let identity = proxy::Identity {
        secret: secret.expose().as_bytes(),
        now_secs: svc.clock.now_ms().div_euclid(1000),
    };
    if let Some((lookup_request, lookup)) =
        proxy::owner_lookup(route, &target, caller.as_ref(), req, &prepared, &identity)
    {
        let answer = upstream
            .send(lookup_request)
            .await
            .map_err(|failure| upstream_error(route, failure))?;
        let bytes = upstream
            .read_body(answer.body, proxy::policy::LOOKUP_BODY_LIMIT)
            .await
            .map_err(|failure| upstream_error(route, failure))?;
        proxy::check_owner(lookup, answer.status, &bytes, caller.as_ref())?;
    }
    let request = proxy::rewrite(
        route,
        rule,
        caller.as_ref(),
        req,
        remainder,
        prepared.body,
        &identity,
    );
    Ok(Decision {
        request,
        authenticated: caller.is_some(),
    })
}

/// The upstream's answer as the client gets it: its headers filtered (see
/// [`proxy::filter_response`]).
pub fn answered<B>(
    route: &Route,
    authenticated: bool,
    answer: UpstreamResponse<B>,
) -> UpstreamResponse<B> {
    UpstreamResponse {
        status: answer.status,
        headers: proxy::filter_response(route, authenticated, answer.headers),
        body: answer.body,
    }
}

/// The error a failed upstream request on `route` answers with.
pub fn upstream_error(route: &Route, failure: UpstreamFailure) -> Error {
    match failure {
        UpstreamFailure::Unreachable(cause) => Error::UpstreamUnavailable(cause),
        UpstreamFailure::Timeout => Error::UpstreamTimeout(route.timeout_ms),
    }
}

/// Handles one request that is not proxied. Never panics on input; every failure becomes an
/// error response.
pub async fn handle<S: Store, H: Pbkdf2>(svc: &Services<'_, S, H>, req: &Request) -> Response {
    let mut response = match cors::preflight(&svc.config.browser.allowed_origins, req) {
        Some(preflight) => preflight,
        None => answer(svc, req).await,
    };
    finish(svc.config, req, &mut response.headers);
    response
}

/// The route table's answer to a request that is not a preflight.
async fn answer<S: Store, H: Pbkdf2>(svc: &Services<'_, S, H>, req: &Request) -> Response {
    let mut response = route(svc, req)
        .await
        .unwrap_or_else(|err| Response::error(&err));
    if req.method == "HEAD" {
        // Same status and headers as GET, no body (load balancers probe with HEAD).
        response.body.clear();
    }
    response
}

/// The single exit every response's head passes through, buffered or streamed, success or
/// error: adds the CORS headers for the request's origin.
/// Idempotent.
pub fn finish(config: &Config, req: &Request, headers: &mut Vec<(String, String)>) {
    finish_for(config, req.header("origin"), headers);
}

/// [`finish`] for a request whose `Origin` header is `origin`.
pub fn finish_for(config: &Config, origin: Option<&str>, headers: &mut Vec<(String, String)>) {
    cors::apply(&config.browser.allowed_origins, origin, headers);
}

/// Sends a request to its endpoint in the route table.
async fn route<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let (endpoint, params) = table::find(req.method.as_str(), &req.path)?;
    match endpoint {
        Endpoint::Healthz => Ok(Response::json(200, &json!({ "status": "ok" }))),
        Endpoint::Readyz => {
            svc.store.ping().await?;
            Ok(Response::json(200, &json!({ "status": "ready" })))
        }
        Endpoint::Jwks => Ok(Response::json(200, &svc.config.tokens.keys.jwks())
            .with_header("cache-control", "public, max-age=300")),
        Endpoint::Me => me(svc, req).await,
        Endpoint::SessionCsrf => session_csrf(svc, req).await,
        Endpoint::ClientAsset => assets::serve(&req.path).ok_or(Error::NotFound),
        Endpoint::ChangePassword => change_password(svc, req).await,
        Endpoint::Register => register(svc, req).await,
        Endpoint::Login => login(svc, req).await,
        Endpoint::Refresh => refresh_session(svc, req).await,
        Endpoint::Logout => logout(svc, req).await,
        Endpoint::ListOwnSessions => sessions::list(svc, req).await,
        Endpoint::RevokeOwnSession => sessions::revoke(svc, req, params[0]).await,
        Endpoint::Whoami => whoami(svc, req).await,
        Endpoint::MintToken => tokens::mint(svc, req).await,
        Endpoint::MfaStatus => mfa::status(svc, req).await,
        Endpoint::TotpStart => mfa::start(svc, req).await,
        Endpoint::TotpConfirm => mfa::confirm(svc, req).await,
        Endpoint::TotpRemove => mfa::remove(svc, req).await,
        Endpoint::RecoveryCodes => mfa::regenerate_codes(svc, req).await,
        Endpoint::PasskeyRegisterOptions => passkeys::register_options(svc, req).await,
        Endpoint::PasskeyRegisterVerify => passkeys::register_verify(svc, req).await,
        Endpoint::PasskeyLoginOptions => passkeys::login_options(svc, req).await,
        Endpoint::PasskeyLoginVerify => passkeys::login_verify(svc, req).await,
        Endpoint::ListOwnPasskeys => passkeys::list_own(svc, req).await,
        Endpoint::DeleteOwnPasskey => passkeys::delete_own(svc, req, params[0]).await,
        Endpoint::ConsoleAsset => console::asset(&req.path).ok_or(Error::NotFound),
        Endpoint::ConsoleRedirect => Ok(console::redirect()),
        Endpoint::ConsoleSignIn => console::sign_in(svc, req).await,
        Endpoint::ConsoleSession => console::current(svc, req).await,
        Endpoint::ConsoleSignOut => console::sign_out(svc, req).await,
        Endpoint::Admin(op) => admin::answer(svc, req, op, &params).await,
    }
}
