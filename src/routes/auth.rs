//! The account endpoints under `/auth/`: register, login, refresh, logout, the session's CSRF
//! token, the caller's profile and password change.

use serde_json::{json, Value};

use crate::domain::account::{legacy_email, new_account_email, normalize_email, normalize_name};
use crate::domain::caller::{Caller, CredentialKind};
use crate::domain::config::{Config, Registration, RegistrationEnumeration};
use crate::domain::csrf;
use crate::domain::device::{DEVICE_COOKIE, DEVICE_TTL_SECS};
use crate::domain::password::{self, Verdict};
use crate::domain::refresh::{self, Decision};
use crate::domain::store::{Family, LoginLookup, NewFamily, RevokeReason, Rotation, Store, User};
use crate::domain::token::AccessClaims;
use crate::primitives::body::{json_body, Credentials, PasswordChange, RefreshBody};
use crate::primitives::cookies;
use crate::primitives::encoding::new_id;
use crate::primitives::error::{Error, TokenRejection};
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::routes::views::{registration_name, user_json};
use crate::services::accounts::{end_own_session, new_user};
use crate::services::audit::own_event;
use crate::services::auth::{
    authenticate, authenticate_access_token, check_key_standing, check_token_session, enabled_user,
};
use crate::services::issuers::authenticate_external;
use crate::services::mfa::{check_second_factor, SecondFactor};
use crate::services::ratelimit::{self, Bucket};
use crate::services::webauthn::{verify_passkey_assertion, AssertionUse};
use crate::services::Services;

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "gatehouse_refresh";
/// Path the refresh cookie is scoped to.
pub const REFRESH_COOKIE_PATH: &str = "/auth";

fn refresh_cookie(config: &Config, value: &str, max_age_secs: i64) -> String {
    cookies::set_cookie(
        REFRESH_COOKIE,
        value,
        REFRESH_COOKIE_PATH,
        max_age_secs,
        config.browser.cookie_same_site,
    )
}

/// Adds the device cookie of account `email` to a login or registration answered in cookie
/// mode (a script asking for its refresh token in the body gets no cookie at all).
pub(super) fn with_device_cookie<S, H>(
    svc: &Services<'_, S, H>,
    response: Response,
    email: &str,
    delivery: Delivery,
) -> Response {
    if delivery == Delivery::Body {
        return response;
    }
    let config = svc.config;
    let account = config.accounts.subject_key.email(email);
    let value = config
        .browser
        .device_key
        .issue(&account, svc.clock.now_ms());
    response.append_header(
        "set-cookie",
        &cookies::set_cookie(
            DEVICE_COOKIE,
            &value,
            REFRESH_COOKIE_PATH,
            DEVICE_TTL_SECS,
            config.browser.cookie_same_site,
        ),
    )
}

/// Where the refresh token of a response goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// In the HttpOnly refresh cookie (browsers).
    Cookie,
    /// In the answer's body (`refresh_token_in_body`).
    Body,
}

impl Delivery {
    /// What a register or login body asks for (`refresh_token_in_body`).
    fn asked(body: &Credentials) -> Self {
        if body.refresh_token_in_body == Some(true) {
            Self::Body
        } else {
            Self::Cookie
        }
    }
}

pub(super) fn session_response<S, H>(
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
        iss: config.tokens.issuer.clone(),
        aud: config.tokens.audience.clone(),
        sub: user.id.clone(),
        jti: new_id(svc.rng, ""),
        roles: user.roles.clone(),
        sid: Some(family_id.to_string()),
        act: None,
        scope: None,
        routes: None,
    };
    let access_token = config
        .tokens
        .keys
        .sign(claims, now, config.tokens.access_ttl_secs)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": config.tokens.access_ttl_secs,
        "user": user_json(user),
        "csrf_token": config.browser.csrf_key.token(family_id),
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

/// Starts a refresh family for `user`: its first token and the family record.
pub(super) fn new_family<S, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    user_id: &str,
) -> (String, NewFamily) {
    let now = svc.clock.now_ms();
    let token = refresh::generate(svc.rng);
    let family = NewFamily {
        id: new_id(svc.rng, "fam_"),
        user_id: user_id.to_string(),
        created_at: now,
        expires_at: now + svc.config.tokens.refresh_ttl_secs * 1000,
        user_agent: req.user_agent(),
        first_token_hash: refresh::hash(&token),
        console: None,
    };
    (token, family)
}

// ---------------------------------------------------------------------------------------------
// Handlers

pub(super) async fn register<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let body: Credentials = json_body(req, svc.config.limits.max_body_bytes, false)?;
    if svc.config.accounts.registration == Registration::Closed {
        return Err(Error::RegistrationClosed);
    }
    if let Some(ip) = req.client_ip() {
        ratelimit::check(svc, Bucket::RegisterIp, ip).await?;
    }
    let email = new_account_email(&body.email)?;
    let name = normalize_name(body.name.as_deref())?;
    if svc.config.accounts.registration_enumeration == RegistrationEnumeration::Hide {
        return register_hidden(svc, req, email, name, &body.password).await;
    }
    let delivery = Delivery::asked(&body);
    let user = new_user(
        svc,
        email,
        name,
        &body.password,
        svc.config.accounts.default_roles.clone(),
    )
    .await?;
    let now = user.created_at;
    let (token, family) = new_family(svc, req, &user.id);
    let registered = own_event(
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
    let response = session_response(
        svc,
        201,
        &user,
        &token,
        (&family.id, family.expires_at),
        delivery,
    )?;
    Ok(with_device_cookie(svc, response, &user.email, delivery))
}

/// `REGISTRATION_ENUMERATION=hide`: a new and a taken email get the same answer, `202` with no
/// session, after the same work (the password policy, the PBKDF2 hash, the insert that the
/// store refuses for a taken email). Nobody is logged in here, least of all into an account that
/// already existed: the new user logs in next.
async fn register_hidden<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    email: String,
    name: Option<String>,
    pw: &str,
) -> Result<Response, Error> {
    let user = new_user(
        svc,
        email,
        name,
        pw,
        svc.config.accounts.default_roles.clone(),
    )
    .await?;
    let registered = own_event(
        req,
        user.created_at,
        "registered",
        Some(&user.id),
        None,
        None,
    );
    match svc.store.create_user(&user, None, Some(&registered)).await {
        Ok(()) | Err(Error::EmailTaken) => {}
        Err(err) => return Err(err),
    }
    Ok(Response::json(202, &json!({ "status": "accepted" })))
}

pub(super) async fn login<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let body: Credentials = json_body(req, svc.config.limits.max_body_bytes, false)?;
    if body.otp.is_some() && body.webauthn.is_some() {
        return Err(Error::BadRequest(
            "otp, webauthn: send one second factor, not both".into(),
        ));
    }
    let delivery = Delivery::asked(&body);
    let user = check_credentials(svc, req, &body.email, &body.password).await?;
    // A passkey assertion, when sent, is always verified (and its challenge used up), also for
    // a user without TOTP, who needs no second factor.
    let (second_factor, passkey_id) = match &body.webauthn {
        Some(assertion) => {
            let purpose = AssertionUse::SecondFactor { user_id: &user.id };
            let passkey = verify_passkey_assertion(svc, req, assertion, purpose).await?;
            (Some(SecondFactor::Passkey), Some(passkey.id))
        }
        None => (
            check_second_factor(svc, req, &user, body.otp.as_deref()).await?,
            None,
        ),
    };
    // The device cookie names the account as the rate limits do: by the normal form typed.
    let account_email = normalize_email(&body.email).unwrap_or_else(|_| user.email.clone());
    let detail = second_factor.map(|f| match &passkey_id {
        Some(id) => json!({ "mfa": f.as_str(), "passkey_id": id }),
        None => json!({ "mfa": f.as_str() }),
    });
    start_session(svc, req, &user, &account_email, detail, delivery).await
}

/// The end of every sign-in (a password, a passkey): a new refresh family for `user`, stored
/// with its `login_succeeded` event (with `detail`), and the session's answer, with the device
/// cookie for `account_email` when the session goes to a cookie.
pub(super) async fn start_session<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    user: &User,
    account_email: &str,
    detail: Option<Value>,
    delivery: Delivery,
) -> Result<Response, Error> {
    let now = svc.clock.now_ms();
    let (token, family) = new_family(svc, req, &user.id);
    let succeeded = own_event(
        req,
        now,
        "login_succeeded",
        Some(&user.id),
        Some(&family.id),
        detail,
    );
    svc.store.create_family(&family, Some(&succeeded)).await?;
    let response = session_response(
        svc,
        200,
        user,
        &token,
        (&family.id, family.expires_at),
        delivery,
    )?;
    Ok(with_device_cookie(svc, response, account_email, delivery))
}

/// The user whose email and password these are, enabled; every failure is recorded and
/// answered alike (401 `invalid_credentials`). Rate limits per IP, per account and network, and
/// per account (unless the browser shows the account's device cookie) come first; a hash made
/// with fewer iterations than configured is upgraded.
pub(super) async fn check_credentials<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    raw_email: &str,
    pw: &str,
) -> Result<User, Error> {
    let iterations = svc.config.accounts.pbkdf2_iterations;
    let now = svc.clock.now_ms();

    // Only a well-formed address is looked up or logged: a password typed into the email field
    // must not end up in the audit log.
    let email = normalize_email(raw_email).ok();
    let user = count_and_find(svc, req, raw_email, email.as_deref(), now).await?;
    let Some(user) = user else {
        // Same work, same answer as a wrong password.
        password::dummy_verify(svc.hasher, pw, iterations).await?;
        svc.store
            .record_event(&own_event(
                req,
                now,
                "login_failed",
                None,
                None,
                Some(json!({
                    // Kept only as a keyed hash: it may be a password typed into the email field.
                    "email_hash": email.as_deref().map(|e| svc.config.accounts.subject_key.email(e)),
                    "cause": "unknown_email"
                })),
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
            .record_event(&own_event(
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
    Ok(user)
}

/// The login rate limits (per client network, per account and network, and per account unless
/// the browser shows the account's device cookie) and the account of the login's (normalized)
/// email, in one round trip; an account stored before emails were folded, under a spelling
/// folding changes, is looked up after it.
async fn count_and_find<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    raw_email: &str,
    email: Option<&str>,
    now: i64,
) -> Result<Option<User>, Error> {
    let trusted_device = email.is_some_and(|email| {
        let account = svc.config.accounts.subject_key.email(email);
        svc.config
            .browser
            .device_key
            .any_valid(&account, req.cookies(DEVICE_COOKIE), now)
    });
    let counters = ratelimit::login_counters(svc.config, req.client_ip(), email, trusted_device);
    let window_ms = svc.config.limits.rate.window_secs * 1000;
    let read = svc
        .store
        .login_lookup(&LoginLookup {
            counters: &counters,
            window_ms,
            now,
            email,
        })
        .await?;
    ratelimit::first_over(&counters, &read.hits, window_ms, now)?;
    if read.user.is_some() || email.is_none() {
        return Ok(read.user);
    }
    match legacy_email(raw_email) {
        Some(legacy) => svc.store.user_by_email(&legacy).await,
        None => Ok(None),
    }
}

/// The refresh token of a request: from the body (wins) or the cookie.
fn presented_refresh_token(
    body: RefreshBody,
    req: &Request,
) -> Result<Option<(String, Delivery)>, Error> {
    if let Some(token) = body.refresh_token {
        return Ok(Some((token, Delivery::Body)));
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

pub(super) async fn refresh_session<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let (presented, delivery) = refresh_token_of(svc, req)?;
    // A cookie came on its own: the page must also show the session's CSRF token. It names the
    // session, and the rotation below acts only on a cookie of that session.
    let vouched = match delivery {
        Delivery::Cookie => Some(
            csrf::vouched_session(
                &svc.config.browser.csrf_key,
                &svc.config.browser.allowed_origins,
                req,
            )?
            .to_string(),
        ),
        Delivery::Body => None,
    };
    let presented_hash = refresh::hash(&presented);
    let now = svc.clock.now_ms();
    let ours = refresh::generate(svc.rng);
    let rotation = Rotation {
        token_hash: presented_hash,
        successor_hash: refresh::hash(&ours),
        successor_sealed: refresh::seal(&presented, &ours),
        now,
        idle_cutoff: now - svc.config.tokens.refresh_idle_secs * 1000,
        family: vouched,
        limit: ratelimit::refresh_limit(&svc.config.limits.rate),
    };
    // Counter, rotation, the token's state and the user: one round trip.
    let outcome = svc.store.rotate_refresh(&rotation).await?;
    let Some(state) = outcome.state else {
        return Err(Error::InvalidRefreshToken("unknown"));
    };
    let family = &state.family;
    if rotation.family.as_ref().is_some_and(|f| *f != family.id) {
        return Err(Error::CsrfValidationFailed("wrong X-CSRF-Token"));
    }
    if let (Some(limit), Some(hit)) = (rotation.limit, outcome.counted) {
        ratelimit::over_limit(hit, limit.max, limit.window_ms, now)?;
    }
    let windows = refresh::Windows {
        idle_cutoff: rotation.idle_cutoff,
        grace_ms: svc.config.tokens.refresh_grace_secs * 1000,
    };
    match refresh::decide_hashed(
        &state,
        &presented,
        &ours,
        &rotation.successor_hash,
        now,
        windows,
    ) {
        Decision::Issue { token, .. } => {
            let Some(user) = outcome.user.filter(|u| !u.disabled) else {
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
            revoke_reused(svc, req, family, now, detail).await
        }
        Decision::Reject(err) => Err(err),
    }
}

/// The refresh token a refresh presents, well-formed, and how it came; one sent by cookie must
/// come from an allowed origin.
fn refresh_token_of<S, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<(String, Delivery), Error> {
    let body: RefreshBody = json_body(req, svc.config.limits.max_body_bytes, true)?;
    let Some((presented, delivery)) = presented_refresh_token(body, req)? else {
        return Err(Error::NoAuth);
    };
    if delivery == Delivery::Cookie {
        csrf::check_origin(&svc.config.browser.allowed_origins, req)?;
    }
    if !refresh::well_formed(&presented) {
        return Err(Error::InvalidRefreshToken("malformed"));
    }
    Ok((presented, delivery))
}

/// A rotated token came back after the grace window: the whole family is revoked.
async fn revoke_reused<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    family: &Family,
    now: i64,
    detail: Value,
) -> Result<Response, Error> {
    let ev = own_event(
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

pub(super) async fn logout<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let body: RefreshBody = json_body(req, svc.config.limits.max_body_bytes, true)?;
    let now = svc.clock.now_ms();
    if let Some((token, delivery)) = presented_refresh_token(body, req)? {
        if delivery == Delivery::Cookie {
            csrf::check_origin(&svc.config.browser.allowed_origins, req)?;
        }
        if refresh::well_formed(&token) {
            if let Some(state) = svc.store.token_state(&refresh::hash(&token)).await? {
                if delivery == Delivery::Cookie {
                    csrf::check(
                        &svc.config.browser.csrf_key,
                        &svc.config.browser.allowed_origins,
                        req,
                        &state.family.id,
                    )?;
                }
                end_own_session(svc, req, &state.family, "logout", now).await?;
            }
        }
    }
    Ok(Response::empty(204).append_header("set-cookie", &refresh_cookie(svc.config, "", 0)))
}

/// `GET /auth/session`: the CSRF token of the session in the refresh cookie, for a page that was
/// reloaded and holds nothing but that HttpOnly cookie. Changes nothing. Only allowed origins
/// (or the same origin) get an answer, and CORS lets only them read it.
pub(super) async fn session_csrf<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    csrf::check_origin(&svc.config.browser.allowed_origins, req)?;
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
    let live = family.is_live(now, svc.config.tokens.refresh_idle_secs * 1000)
        && state
            .rotated_at
            .is_none_or(|at| now - at <= svc.config.tokens.refresh_grace_secs * 1000);
    if !live {
        return Err(Error::InvalidRefreshToken("session ended"));
    }
    Ok(Response::json(
        200,
        &json!({
            "csrf_token": svc.config.browser.csrf_key.token(&family.id),
            "expires_at": family.expires_at / 1000,
        }),
    ))
}

/// `GET /auth/whoami`: who the request's credential is, for any caller. Without a credential
/// 200 `{"authenticated": false, "registration"}`; with a valid access token or API key of an
/// enabled user (an access token's session still standing), 200 with `authenticated: true`, the
/// credential's kind, the user and what the credential carries. A credential that is sent but
/// not valid is answered as everywhere else (401 with its code), so a client can tell an
/// expired token from no token at all.
pub(super) async fn whoami<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let registration = registration_name(svc.config.accounts.registration);
    let Some(caller) = authenticate(svc, req).await? else {
        return Ok(Response::json(
            200,
            &json!({ "authenticated": false, "registration": registration }),
        )
        .with_header("cache-control", "no-store"));
    };
    let Some(user) = enabled_user(svc, &caller.user_id).await? else {
        return Err(match caller.kind {
            CredentialKind::ApiKey => Error::InvalidApiKey("owner disabled"),
            CredentialKind::AccessToken
            | CredentialKind::ScopedToken
            | CredentialKind::ConsoleSession
            | CredentialKind::ExternalToken => Error::InvalidToken(TokenRejection::Claims),
        });
    };
    if matches!(
        caller.kind,
        CredentialKind::AccessToken | CredentialKind::ScopedToken
    ) {
        check_token_session(svc, &user.id, caller.session_id.as_deref()).await?;
    }
    if let (CredentialKind::ScopedToken, Some(key_id)) = (caller.kind, caller.key_id.as_deref()) {
        check_key_standing(svc, key_id)
            .await
            .map_err(|_| Error::InvalidToken(TokenRejection::Revoked))?;
    }
    Ok(Response::json(
        200,
        &json!({
            "authenticated": true,
            "credential": caller.kind.as_str(),
            "user": user_json(&user),
            "roles": caller.roles,
            "session_id": caller.session_id,
            "api_key_id": caller.key_id,
            "scopes": caller.scopes,
            "registration": registration,
        }),
    )
    .with_header("cache-control", "no-store"))
}

/// The access token of a request (an API key is not one) and its enabled user.
async fn authenticated<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<(Caller, User), Error> {
    let token = req.bearer()?.ok_or(Error::NoAuth)?;
    let caller = authenticate_access_token(svc, token).await?;
    let Some(user) = enabled_user(svc, &caller.user_id).await? else {
        return Err(Error::InvalidToken(TokenRejection::Revoked));
    };
    Ok((caller, user))
}

/// `GET /auth/me`: the caller's account; for a trusted issuer's token also the issuer's name
/// (and, for a user not known locally, the id `name:sub` with no email).
pub(super) async fn me<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    if let Some(caller) = authenticate_external(svc, req).await? {
        let issuer = caller.issuer.clone().unwrap_or_default();
        let known = svc
            .config
            .issuers
            .by_name(&issuer)
            .is_some_and(|i| i.known_users_only);
        let user = match known {
            // Known users only: the local account (its roles are the caller's).
            true => match enabled_user(svc, &caller.user_id).await? {
                Some(user) => user_json(&user),
                None => return Err(Error::InvalidToken(TokenRejection::UnknownUser)),
            },
            false => json!({
                "id": caller.user_id, "email": null, "name": null, "roles": caller.roles
            }),
        };
        return Ok(Response::json(
            200,
            &json!({ "user": user, "issuer": issuer }),
        ));
    }
    let (_, user) = authenticated(svc, req).await?;
    Ok(Response::json(200, &json!({ "user": user_json(&user) })))
}

/// `POST /auth/password {current_password, new_password}` with a Bearer token: sets the new
/// password and revokes every other session of the user (the caller's own stays).
pub(super) async fn change_password<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let (caller, user) = authenticated(svc, req).await?;
    if !caller.manages_account() {
        // A scoped token can do less than its session: never change the account.
        return Err(Error::ScopeViolation);
    }
    // A sensitive change: the token's session must still stand, not only the token unexpired.
    check_token_session(svc, &user.id, caller.session_id.as_deref()).await?;
    let body: PasswordChange = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let (current, new) = (body.current_password.as_str(), body.new_password.as_str());
    password::check_policy(new)?;
    let iterations = svc.config.accounts.pbkdf2_iterations;
    let now = svc.clock.now_ms();
    if password::verify(svc.hasher, &user.password_hash, current, iterations).await?
        == Verdict::Mismatch
    {
        let detail = json!({ "cause": "wrong_current_password" });
        let ev = own_event(
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
    let keep = caller.session_id.as_deref();
    // The store records the event with `revoked_sessions` in the same atomic write.
    let ev = own_event(req, now, "password_changed", Some(&user.id), keep, None);
    let revoked = svc
        .store
        .change_password(&user.id, &phc, keep, now, &ev)
        .await?;
    Ok(Response::json(200, &json!({ "revoked_sessions": revoked })))
}
