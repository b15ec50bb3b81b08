//! The admin console: its page and assets under `/admin/console/` (compiled into the worker from
//! `clients/console`), and its session: `POST /admin/session` signs in (an admin's email and
//! password, or an admin API key) and sets the console cookie, `GET /admin/session` answers who
//! is signed in with the session's CSRF token (for a reloaded page), `DELETE /admin/session`
//! signs out. See docs/console.md.

use serde_json::{json, Value};

use crate::domain::caller::Caller;
use crate::domain::csrf;
use crate::domain::store::{ConsoleVia, Family, NewFamily, Store, User};
use crate::primitives::body::{json_body, ConsoleSignIn};
use crate::primitives::cookies::{self, SameSite};
use crate::primitives::encoding::new_id;
use crate::primitives::error::Error;
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::routes::admin::{check_admin, ADMIN_ROLE};
use crate::routes::auth::check_credentials;
use crate::routes::views::admin_user_json;
use crate::services::accounts::end_own_session;
use crate::services::audit::own_event;
use crate::services::auth::authenticate_key;
use crate::services::console::{
    self, authenticate_console, ConsoleSession, CONSOLE_COOKIE, CONSOLE_COOKIE_PATH,
};
use crate::services::mfa::check_second_factor;
use crate::services::ratelimit::{self, Bucket};
use crate::services::Services;

/// The console page.
pub const PAGE_PATH: &str = "/admin/console/";
/// The console's address without the trailing slash; redirects to [`PAGE_PATH`].
pub const BARE_PATH: &str = "/admin/console";
/// The console's script.
pub const SCRIPT_PATH: &str = "/admin/console/console.js";
/// The console's style sheet.
pub const STYLE_PATH: &str = "/admin/console/console.css";

const PAGE: &str = include_str!("../../clients/console/index.html");
const SCRIPT: &str = include_str!("../../clients/console/console.js");
const STYLE: &str = include_str!("../../clients/console/console.css");

/// The console's Content-Security-Policy: its own script, style and API, nothing else; no
/// inline script or style, no frames, no form submissions, no `<base>`.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The console asset at `path`, with its security headers; never cached.
pub fn asset(path: &str) -> Option<Response> {
    let (body, content_type) = match path {
        PAGE_PATH => (PAGE, "text/html; charset=utf-8"),
        SCRIPT_PATH => (SCRIPT, "text/javascript; charset=utf-8"),
        STYLE_PATH => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::empty(200)
        .with_header("content-type", content_type)
        .with_header("cache-control", "no-store")
        .with_header("content-security-policy", CSP)
        .with_header("x-frame-options", "DENY")
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
        .with_header("cross-origin-opener-policy", "same-origin")
        .with_header("cross-origin-resource-policy", "same-origin");
    response.body = body.as_bytes().to_vec();
    Some(response)
}

/// `GET /admin/console`: 308 to the console page.
pub fn redirect() -> Response {
    Response::empty(308)
        .with_header("location", PAGE_PATH)
        .with_header("cache-control", "no-store")
}

fn console_cookie(value: &str, max_age_secs: i64) -> String {
    cookies::set_cookie(
        CONSOLE_COOKIE,
        value,
        CONSOLE_COOKIE_PATH,
        max_age_secs,
        SameSite::Strict,
    )
}

/// The answer about a console session: the admin, the session's CSRF token and the session.
fn session_json<S, H>(
    svc: &Services<'_, S, H>,
    user: &User,
    caller: &Caller,
    family: &Family,
) -> Value {
    let via = family.console.as_ref();
    json!({
        "user": admin_user_json(user),
        "roles": caller.roles,
        "csrf_token": svc.config.browser.csrf_key.token(&family.id),
        "session": {
            "id": family.id,
            "via": via.map(ConsoleVia::as_str),
            "api_key_id": via.and_then(ConsoleVia::api_key_id),
            "created_at": family.created_at,
            "expires_at": family.expires_at,
        },
    })
}

/// `POST /admin/session`: signs an admin in to the console, from Gatehouse's own origin only.
/// `{email, password}` goes through the login's checks (rate limits, audit, the same 401
/// `invalid_credentials`); `{api_key}` must be a live key whose role is `admin`. Either way the
/// user must hold `admin` (403 `insufficient_role`). Starts a console session and sets its
/// cookie.
pub async fn sign_in<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    csrf::check_same_origin(req)?;
    let body: ConsoleSignIn = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let mut second_factor = None;
    let (user, via) = match (body.email, body.password, body.api_key) {
        (Some(email), Some(password), None) => {
            let user = check_credentials(svc, req, &email, &password).await?;
            second_factor = check_second_factor(svc, req, &user, body.otp.as_deref()).await?;
            if !user.roles.iter().any(|r| r == ADMIN_ROLE) {
                return Err(Error::InsufficientRole);
            }
            (user, ConsoleVia::Password)
        }
        (None, None, Some(key)) => {
            if let Some(ip) = req.client_ip() {
                ratelimit::check(svc, Bucket::LoginIp, ip).await?;
            }
            let caller = authenticate_key(svc, key.trim()).await?;
            let Some(user) = svc.store.user_by_id(&caller.user_id).await? else {
                return Err(Error::InvalidApiKey("owner missing"));
            };
            let key_id = caller.key_id.clone().unwrap_or_default();
            // The key's role must be `admin`, and its owner must hold it now.
            let admin = check_admin(caller, user)?;
            (admin.user, ConsoleVia::ApiKey(key_id))
        }
        _ => {
            return Err(Error::BadRequest(
                "send either email and password, or api_key".into(),
            ))
        }
    };
    let now = svc.clock.now_ms();
    let token = console::generate(svc.rng);
    let family = NewFamily {
        id: new_id(svc.rng, "fam_"),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: console::expires_at(svc, now),
        user_agent: req.user_agent(),
        first_token_hash: console::hash(&token),
        console: Some(via.clone()),
    };
    let ev = own_event(
        req,
        now,
        "console_signed_in",
        Some(&user.id),
        Some(&family.id),
        Some(json!({
            "via": via.as_str(),
            "key_id": via.api_key_id(),
            "mfa": second_factor.map(|f| f.as_str()),
        })),
    );
    svc.store.create_family(&family, Some(&ev)).await?;
    let session = console::session_of(svc, &token).await?;
    let max_age = (family.expires_at - now) / 1000;
    Ok(Response::json(
        200,
        &session_json(svc, &session.user, &session.caller, &session.family),
    )
    .with_header("cache-control", "no-store")
    .append_header("set-cookie", &console_cookie(&token, max_age)))
}

/// `GET /admin/session`: the console session of the cookie, from Gatehouse's own origin, with
/// its CSRF token; the admin role is checked as on every admin request.
pub async fn current<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    csrf::check_same_origin(req)?;
    let ConsoleSession {
        family,
        user,
        caller,
    } = authenticate_console(svc, req).await?.ok_or(Error::NoAuth)?;
    let body = session_json(svc, &user, &caller, &family);
    check_admin(caller, user)?;
    Ok(Response::json(200, &body).with_header("cache-control", "no-store"))
}

/// `DELETE /admin/session`: signs out. With the cookie of a console session that still stands,
/// the request must come from Gatehouse's own origin with the session's CSRF token; the session
/// is revoked. The cookie is cleared in any case (204, idempotent).
pub async fn sign_out<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    csrf::check_same_origin(req)?;
    if let Some(token) = console::cookie(req)?.filter(|t| console::well_formed(t)) {
        let state = svc.store.token_state(&console::hash(token)).await?;
        if let Some(family) = state.map(|s| s.family).filter(|f| f.console.is_some()) {
            csrf::check_console(&svc.config.browser.csrf_key, req, &family.id)?;
            let now = svc.clock.now_ms();
            end_own_session(svc, req, &family, "console_signed_out", now).await?;
        }
    }
    Ok(Response::empty(204).append_header("set-cookie", &console_cookie("", 0)))
}
