//! The admin API under `/admin/…`: users, their sessions, API keys, the audit log and the
//! configuration summary.
//!
//! Every request re-reads the calling admin from storage, so disabling an admin, removing the
//! role or revoking the admin's session takes effect on the next request. Callers without the
//! `admin` role get 403 `insufficient_role`. Besides a Bearer access token or API key, the admin
//! console's session cookie is a credential here (and only here), from Gatehouse's own origin,
//! with the session's CSRF token on every change.

use serde_json::{json, Map, Value};

use crate::domain::account::{new_account_email, normalize_name, role_list};
use crate::domain::apikey::{self, key_json};
use crate::domain::caller::{Caller, CredentialKind};
use crate::domain::config::Config;
use crate::domain::csrf;
use crate::domain::issuers::Keys;
use crate::domain::password;
use crate::domain::store::{ApiKey, AuditEvent, AuditQuery, RevokeReason, Store, User, UserQuery};
use crate::primitives::body::{json_body, NewKey, NewPassword, NewUser, Roles};
use crate::primitives::encoding::{decode_query_component_strict, new_id, QueryDecodeError};
use crate::primitives::error::{Error, TokenRejection};
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::routes::table::AdminOp;
use crate::routes::views::{admin_user_json, family_json, registration_name};
use crate::services::accounts::new_user;
use crate::services::audit::audit_event;
use crate::services::auth::{
    self, authenticate, check_key_standing, check_token_session, enabled_user,
};
use crate::services::console::authenticate_console;
use crate::services::Services;

/// The role the admin API requires.
pub const ADMIN_ROLE: &str = "admin";
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;
/// The largest integer storage round-trips exactly: D1 passes numbers as JS doubles, so every
/// integer taken from a request and bound into a query stays at or below 2^53 - 1.
pub const MAX_STORED_INT: i64 = (1 << 53) - 1;

// ---------------------------------------------------------------------------------------------
// Query strings

fn percent_decode(s: &str) -> Result<String, Error> {
    decode_query_component_strict(s).map_err(|err| {
        Error::BadRequest(
            match err {
                QueryDecodeError::MalformedEscape => "the query string is malformed",
                QueryDecodeError::NotUtf8 => "the query string is not UTF-8",
            }
            .into(),
        )
    })
}

/// The query parameters; a repeated or unknown name is refused.
pub(crate) fn query_params(req: &Request, known: &[&str]) -> Result<Map<String, Value>, Error> {
    let mut map = Map::new();
    for pair in req.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k)?;
        if !known.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!(
                "{k}: unknown query parameter (known: {})",
                known.join(", ")
            )));
        }
        if map
            .insert(k.clone(), Value::String(percent_decode(v)?))
            .is_some()
        {
            return Err(Error::BadRequest(format!("{k}: given more than once")));
        }
    }
    Ok(map)
}

fn param_int(q: &Map<String, Value>, name: &str, min: i64, max: i64) -> Result<Option<i64>, Error> {
    let Some(Value::String(raw)) = q.get(name) else {
        return Ok(None);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "{name}: expected a whole number from {min} to {max}"
            ))
        })
}

fn param_str<'a>(q: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    q.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn page_limit(q: &Map<String, Value>) -> Result<u32, Error> {
    Ok(param_int(q, "limit", 1, i64::from(MAX_PAGE))?.map_or(DEFAULT_PAGE, |n| n as u32))
}

// ---------------------------------------------------------------------------------------------
// Bodies

// ---------------------------------------------------------------------------------------------
// Dispatch

/// Answers admin operation `op` (found in the route table with the path's segments `params`),
/// after checking the caller is an admin.
pub async fn answer<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    op: AdminOp,
    params: &[&str],
) -> Result<Response, Error> {
    let admin = require_admin(svc, req).await?;
    let id = params.first().copied().unwrap_or_default();
    match op {
        AdminOp::ListUsers => list_users(svc, req).await,
        AdminOp::CreateUser => create_user(svc, req, &admin).await,
        AdminOp::ShowUser => {
            let user = target_user(svc, id).await?;
            Ok(Response::json(
                200,
                &json!({ "user": admin_user_json(&user) }),
            ))
        }
        AdminOp::Disable => set_disabled(svc, req, &admin, id, true).await,
        AdminOp::Enable => set_disabled(svc, req, &admin, id, false).await,
        AdminOp::SetRoles => set_roles(svc, req, &admin, id).await,
        AdminOp::ResetPassword => reset_password(svc, req, &admin, id).await,
        AdminOp::ListSessions => list_sessions(svc, id).await,
        AdminOp::ResetMfa => reset_mfa(svc, req, &admin, id).await,
        AdminOp::RevokeAllSessions => revoke_all_sessions(svc, req, &admin, id).await,
        AdminOp::RevokeSession => revoke_session(svc, req, &admin, id, params[1]).await,
        AdminOp::ListKeys => list_keys(svc, req).await,
        AdminOp::MintKey => mint_key(svc, req, &admin).await,
        AdminOp::RevokeKey => revoke_key(svc, req, &admin, id).await,
        AdminOp::Audit => list_audit(svc, req).await,
        AdminOp::Config => Ok(Response::json(200, &config_json(svc.config))),
        AdminOp::ListPasskeys => {
            target_user(svc, id).await?;
            let list: Vec<Value> = svc
                .store
                .user_passkeys(id)
                .await?
                .iter()
                .map(crate::routes::passkeys::passkey_json)
                .collect();
            Ok(Response::json(200, &json!({ "passkeys": list })))
        }
        AdminOp::DeletePasskey => delete_passkey(svc, req, &admin, id, params[1]).await,
        AdminOp::RateLimits => {
            let limited = crate::services::ratelimit::limited_now(svc, MAX_PAGE).await?;
            Ok(Response::json(200, &json!({ "limited": limited })))
        }
    }
}

/// The admin making a request: the stored user and the credential they used.
pub struct Admin {
    /// The admin, as stored now.
    pub user: User,
    /// The access token's or API key's view of the caller.
    pub caller: Caller,
}

impl Admin {
    /// An audit event with this admin as actor; done with an API key, the detail names it
    /// (`via_key`), and done in the admin console, the console session (`via_console`).
    fn event(
        &self,
        req: &Request,
        now: i64,
        kind: &str,
        subject: Option<&str>,
        family_id: Option<&str>,
        detail: Option<Value>,
    ) -> AuditEvent {
        let console = match self.caller.kind {
            CredentialKind::ConsoleSession => self.caller.session_id.as_ref(),
            CredentialKind::AccessToken
            | CredentialKind::ApiKey
            | CredentialKind::ScopedToken
            | CredentialKind::ExternalToken => None,
        };
        let detail = if self.caller.key_id.is_none() && console.is_none() {
            detail
        } else {
            let mut d = match detail {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            if let Some(key_id) = &self.caller.key_id {
                d.insert("via_key".into(), json!(key_id));
            }
            if let Some(session_id) = console {
                d.insert("via_console".into(), json!(session_id));
            }
            Some(Value::Object(d))
        };
        audit_event(
            req,
            now,
            kind,
            Some(&self.user.id),
            subject,
            family_id,
            detail,
        )
    }
}

/// The caller, re-read from storage: enabled, holding `admin` now, and (for an access token)
/// with a live session, (for an API key) not revoked; for an API key, the key's role must be
/// `admin`. None of this is taken from the liveness cache. Without an `Authorization` header,
/// the console's session cookie: a live console session, from Gatehouse's own origin, with its
/// CSRF token unless the request is a `GET` or `HEAD`.
pub async fn require_admin<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Admin, Error> {
    let (caller, user) = match authenticate(svc, req).await? {
        Some(caller) => {
            let user = bearer_user(svc, &caller).await?;
            (caller, user)
        }
        None => {
            let session = authenticate_console(svc, req).await?.ok_or(Error::NoAuth)?;
            csrf::check_console(&svc.config.browser.csrf_key, req, &session.family.id)?;
            (session.caller, session.user)
        }
    };
    check_admin(caller, user)
}

/// The enabled user of a Bearer credential, with (for an access token) its session standing.
async fn bearer_user<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    caller: &Caller,
) -> Result<User, Error> {
    if caller.kind == CredentialKind::ScopedToken {
        // Scoped tokens are for the proxy; the admin API takes full credentials only.
        return Err(Error::ScopeViolation);
    }
    let Some(user) = enabled_user(svc, &caller.user_id).await? else {
        return Err(match caller.kind {
            CredentialKind::ApiKey => Error::InvalidApiKey("owner disabled"),
            CredentialKind::AccessToken | CredentialKind::ScopedToken => {
                Error::InvalidToken(TokenRejection::Revoked)
            }
            CredentialKind::ConsoleSession => Error::InvalidSession("user disabled"),
            CredentialKind::ExternalToken => external_refused(),
        });
    };
    match (caller.kind, caller.key_id.as_deref()) {
        (CredentialKind::AccessToken, _) => {
            check_token_session(svc, &user.id, caller.session_id.as_deref()).await?;
        }
        (CredentialKind::ApiKey, Some(key_id)) => check_key_standing(svc, key_id).await?,
        (CredentialKind::ApiKey, None) => return Err(Error::InvalidApiKey("unknown")),
        // Read by `authenticate_console` with its session (and the key it is bound to).
        (CredentialKind::ConsoleSession, _) => {}
        (CredentialKind::ScopedToken, _) => return Err(Error::ScopeViolation),
        // `authenticate` never answers one; refused should that ever change.
        (CredentialKind::ExternalToken, _) => return Err(external_refused()),
    }
    Ok(user)
}

/// The admin API takes no external issuer's token.
fn external_refused() -> Error {
    Error::UntrustedIssuer("external tokens are not accepted on the admin API".into())
}

/// An admin: the stored user holds `admin` now, and so does the credential.
pub fn check_admin(caller: Caller, user: User) -> Result<Admin, Error> {
    let stored_admin = user.roles.iter().any(|r| r == ADMIN_ROLE);
    if !stored_admin || !caller.has_role(ADMIN_ROLE) {
        return Err(Error::InsufficientRole);
    }
    Ok(Admin { user, caller })
}

async fn target_user<S: Store, H>(svc: &Services<'_, S, H>, id: &str) -> Result<User, Error> {
    svc.store.user_by_id(id).await?.ok_or(Error::NotFound)
}

// ---------------------------------------------------------------------------------------------
// Users

async fn list_users<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let q = query_params(req, &["limit", "cursor", "q"])?;
    let limit = page_limit(&q)?;
    let search = param_str(&q, "q").map(str::to_string);
    if search.as_deref().is_some_and(|s| s.chars().count() > 200) {
        return Err(Error::BadRequest("q: at most 200 characters".into()));
    }
    let query = UserQuery {
        search,
        after_email: param_str(&q, "cursor").map(str::to_string),
        limit: limit + 1,
    };
    let mut users = svc.store.list_users(&query).await?;
    let more = users.len() > limit as usize;
    users.truncate(limit as usize);
    let next = if more {
        users.last().map(|u| u.email.clone())
    } else {
        None
    };
    let list: Vec<Value> = users.iter().map(admin_user_json).collect();
    Ok(Response::json(
        200,
        &json!({ "users": list, "next_cursor": next }),
    ))
}

async fn create_user<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
) -> Result<Response, Error> {
    let body: NewUser = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let email = new_account_email(&body.email)?;
    let name = normalize_name(body.name.as_deref())?;
    let roles = match &body.roles {
        Some(roles) => role_list(roles.iter().map(String::as_str))?,
        None => svc.config.accounts.default_roles.clone(),
    };
    let user = new_user(svc, email, name, &body.password, roles).await?;
    let now = user.created_at;
    let ev = admin.event(
        req,
        now,
        "registered",
        Some(&user.id),
        None,
        Some(json!({ "by": "admin", "roles": user.roles })),
    );
    svc.store.create_user(&user, None, Some(&ev)).await?;
    Ok(Response::json(
        201,
        &json!({ "user": admin_user_json(&user) }),
    ))
}

async fn set_disabled<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
    disabled: bool,
) -> Result<Response, Error> {
    if disabled && id == admin.user.id {
        return Err(Error::BadRequest(
            "an admin cannot disable their own account".into(),
        ));
    }
    target_user(svc, id).await?;
    let now = svc.clock.now_ms();
    let kind = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    let ev = admin.event(req, now, kind, Some(id), None, None);
    let revoked = svc
        .store
        .set_disabled(id, disabled, now, &ev)
        .await?
        .ok_or(Error::NotFound)?;
    let user = target_user(svc, id).await?;
    Ok(Response::json(
        200,
        &json!({ "user": admin_user_json(&user), "revoked_sessions": revoked }),
    ))
}

async fn set_roles<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
) -> Result<Response, Error> {
    let body: Roles = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let roles = role_list(body.roles.iter().map(String::as_str))?;
    if id == admin.user.id && !roles.iter().any(|r| r == ADMIN_ROLE) {
        return Err(Error::BadRequest(
            "an admin cannot remove their own admin role".into(),
        ));
    }
    let before = target_user(svc, id).await?;
    let now = svc.clock.now_ms();
    let ev = admin.event(
        req,
        now,
        "role_changed",
        Some(id),
        None,
        Some(json!({ "from": before.roles, "to": roles })),
    );
    if !svc.store.set_roles(id, &roles, now, &ev).await? {
        return Err(Error::NotFound);
    }
    let user = target_user(svc, id).await?;
    Ok(Response::json(
        200,
        &json!({ "user": admin_user_json(&user) }),
    ))
}

async fn reset_password<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
) -> Result<Response, Error> {
    let body: NewPassword = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let new = body.new_password.as_str();
    password::check_policy(new)?;
    target_user(svc, id).await?;
    let phc = password::hash(
        svc.hasher,
        svc.rng,
        new,
        svc.config.accounts.pbkdf2_iterations,
    )
    .await?;
    let now = svc.clock.now_ms();
    // The store adds `revoked_sessions` to the detail, in the same atomic write.
    let ev = admin.event(
        req,
        now,
        "password_changed",
        Some(id),
        None,
        Some(json!({ "by": "admin" })),
    );
    let revoked = svc.store.change_password(id, &phc, None, now, &ev).await?;
    Ok(Response::json(200, &json!({ "revoked_sessions": revoked })))
}

/// `DELETE /admin/users/{id}/mfa`: removes the user's TOTP and recovery codes (a user who lost
/// the authenticator and the codes), audited as `totp_removed` by the admin.
async fn reset_mfa<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
) -> Result<Response, Error> {
    target_user(svc, id).await?;
    let now = svc.clock.now_ms();
    let detail = json!({ "by": "admin" });
    let ev = admin.event(req, now, "totp_removed", Some(id), None, Some(detail));
    if !svc.store.remove_totp(id, &ev).await? {
        return Err(Error::MfaNotEnrolled("this user has no TOTP enrolled"));
    }
    Ok(Response::empty(204))
}

// ---------------------------------------------------------------------------------------------
// Sessions

async fn list_sessions<S: Store, H>(svc: &Services<'_, S, H>, id: &str) -> Result<Response, Error> {
    target_user(svc, id).await?;
    let now = svc.clock.now_ms();
    let idle_ms = svc.config.tokens.refresh_idle_secs * 1000;
    let families = svc.store.user_families(id).await?;
    let list: Vec<Value> = families
        .iter()
        .map(|f| family_json(f, now, idle_ms))
        .collect();
    Ok(Response::json(200, &json!({ "sessions": list })))
}

/// `DELETE /admin/users/{id}/passkeys/{pid}`: removes a user's passkey, audited.
async fn delete_passkey<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
    pid: &str,
) -> Result<Response, Error> {
    target_user(svc, id).await?;
    let now = svc.clock.now_ms();
    let ev = admin.event(
        req,
        now,
        "passkey_deleted",
        Some(id),
        None,
        Some(json!({ "passkey_id": pid, "by": "admin" })),
    );
    if !svc.store.delete_passkey(id, pid, &ev).await? {
        return Err(Error::NotFound);
    }
    Ok(Response::empty(204))
}

async fn revoke_all_sessions<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
) -> Result<Response, Error> {
    target_user(svc, id).await?;
    let now = svc.clock.now_ms();
    let ev = admin.event(
        req,
        now,
        "session_revoked",
        Some(id),
        None,
        Some(json!({ "all": true })),
    );
    let n = svc
        .store
        .revoke_user_families(id, RevokeReason::Admin, now, &ev)
        .await?;
    Ok(Response::json(200, &json!({ "revoked_sessions": n })))
}

async fn revoke_session<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
    fid: &str,
) -> Result<Response, Error> {
    let family = svc.store.family(fid).await?;
    let Some(family) = family.filter(|f| f.user_id == id) else {
        return Err(Error::NotFound);
    };
    let now = svc.clock.now_ms();
    let ev = admin.event(
        req,
        now,
        "session_revoked",
        Some(id),
        Some(&family.id),
        None,
    );
    svc.store
        .revoke_family(&family.id, RevokeReason::Admin, now, Some(&ev))
        .await?;
    Ok(Response::empty(204))
}

// ---------------------------------------------------------------------------------------------
// API keys

async fn list_keys<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let q = query_params(req, &["owner_user_id"])?;
    let keys = svc
        .store
        .list_api_keys(param_str(&q, "owner_user_id"))
        .await?;
    let list: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(Response::json(200, &json!({ "api_keys": list })))
}

/// The owner of a new key: an enabled user who, like the minting admin, holds `role`.
async fn key_owner<S: Store, H>(
    svc: &Services<'_, S, H>,
    admin: &Admin,
    owner_id: &str,
    role: &str,
) -> Result<User, Error> {
    let Some(owner) = svc.store.user_by_id(owner_id).await? else {
        return Err(Error::BadRequest("owner_user_id: no such user".into()));
    };
    if owner.disabled {
        return Err(Error::BadRequest(
            "owner_user_id: the user is disabled".into(),
        ));
    }
    // Never above the creator's roles (an admin API key acts for its owner, so a job's key can
    // be minted with less), and never a role the owner does not hold.
    if !admin.user.roles.iter().any(|r| r == role) {
        return Err(Error::BadRequest(format!("role: you do not hold {role:?}")));
    }
    if !owner.roles.iter().any(|r| r == role) {
        return Err(Error::BadRequest(format!(
            "role: the owner does not hold {role:?}"
        )));
    }
    Ok(owner)
}

async fn mint_key<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
) -> Result<Response, Error> {
    let body: NewKey = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let pepper = auth::pepper(svc)?;
    let label = apikey::label(&body.label)?;
    let scopes = apikey::scopes(body.scopes.iter().map(String::as_str))?;
    let owner_id = body.owner_user_id.as_deref().unwrap_or(&admin.user.id);
    let now = svc.clock.now_ms();
    let expires_at = apikey::expiry(body.expires_at, now)?;
    let role = body.role;
    let owner = key_owner(svc, admin, owner_id, &role).await?;
    let key = apikey::generate(svc.rng);
    let record = ApiKey {
        id: new_id(svc.rng, "key_"),
        key_hash: apikey::hash(pepper, &key),
        label,
        owner_user_id: owner.id.clone(),
        created_by: Some(admin.user.id.clone()),
        role,
        scopes,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    let ev = admin.event(
        req,
        now,
        "api_key_minted",
        Some(&owner.id),
        None,
        Some(json!({ "key_id": record.id, "role": record.role, "scopes": record.scopes })),
    );
    svc.store.create_api_key(&record, &ev).await?;
    Ok(Response::json(
        201,
        &json!({ "api_key": key_json(&record), "key": key }),
    ))
}

async fn revoke_key<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    admin: &Admin,
    id: &str,
) -> Result<Response, Error> {
    let key = svc.store.api_key(id).await?.ok_or(Error::NotFound)?;
    let now = svc.clock.now_ms();
    let ev = admin.event(
        req,
        now,
        "api_key_revoked",
        Some(&key.owner_user_id),
        None,
        Some(json!({ "key_id": key.id })),
    );
    svc.store.revoke_api_key(id, now, &ev).await?;
    Ok(Response::empty(204))
}

// ---------------------------------------------------------------------------------------------
// Audit log

async fn list_audit<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let q = query_params(
        req,
        &[
            "kind", "actor", "subject", "user", "since", "until", "cursor", "limit",
        ],
    )?;
    let limit = page_limit(&q)?;
    let user = param_str(&q, "user");
    if user.is_some() && (q.contains_key("subject") || q.contains_key("actor")) {
        return Err(Error::BadRequest(
            "user: not together with actor or subject".into(),
        ));
    }
    let query = AuditQuery {
        kind: param_str(&q, "kind").map(str::to_string),
        actor_user_id: param_str(&q, "actor").map(str::to_string),
        subject_user_id: param_str(&q, "subject").or(user).map(str::to_string),
        since: param_int(&q, "since", 0, MAX_STORED_INT)?,
        until: param_int(&q, "until", 0, MAX_STORED_INT)?,
        before_id: param_int(&q, "cursor", 1, MAX_STORED_INT)?,
        limit: limit + 1,
    };
    let mut events = svc.store.query_audit(&query).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next = if more {
        events.last().map(|e| e.id.to_string())
    } else {
        None
    };
    let list: Vec<Value> = events
        .iter()
        .map(|e| {
            let ev = &e.event;
            json!({
                "id": e.id,
                "at": ev.at,
                "kind": ev.kind,
                "actor_user_id": ev.actor_user_id,
                "subject_user_id": ev.subject_user_id,
                "family_id": ev.family_id,
                "ip": ev.ip,
                "user_agent": ev.user_agent,
                "detail": ev.detail,
            })
        })
        .collect();
    Ok(Response::json(
        200,
        &json!({ "events": list, "next_cursor": next }),
    ))
}

// ---------------------------------------------------------------------------------------------
// Configuration summary

/// What this Gatehouse is configured with, for the console's overview: settings, proxy routes
/// with their endpoints, the trusted issuers, and which secrets are set, by name. Never a
/// secret's value.
pub fn config_json(config: &Config) -> Value {
    let t = &config.tokens;
    let a = &config.accounts;
    let l = &config.limits;
    let routes: Vec<Value> = config
        .proxy
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "prefix": r.prefix,
                "upstream": r.upstream,
                "forward_all": r.forward_all,
                "public": r.public,
                "timeout_ms": r.timeout_ms,
                "max_body_bytes": r.max_body_bytes,
                "methods": r.allow(),
                "endpoints": r.endpoints.iter().map(|e| e.label.as_str()).collect::<Vec<_>>(),
                "secrets": r.secret_names(),
            })
        })
        .collect();
    // The trusted issuers as configured; nothing in them is secret (a JWKS holds public keys).
    let issuers: Vec<Value> = config
        .issuers
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "iss": i.iss,
                "jwks_uri": match &i.keys {
                    Keys::Remote { uri, .. } => uri.as_str(),
                    Keys::Inline(_) => "inline",
                },
                "algorithms": i.algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                "audience": i.audiences,
                "bearer": i.bearer,
                "cookie": i.cookie,
                "known_users_only": i.known_users_only,
            })
        })
        .collect();
    let mut secrets = vec![
        json!({ "name": "JWT_SIGNING_KEY", "set": true }),
        json!({ "name": "API_KEY_PEPPER", "set": a.api_key_pepper.is_some() }),
        json!({ "name": "MFA_ENCRYPTION_KEY", "set": a.mfa_key.is_some() }),
        json!({
            "name": "UPSTREAM_SIGNING_SECRET",
            "set": config.proxy.upstream_signing_secret.is_some(),
        }),
    ];
    let mut named: Vec<&str> = config
        .proxy
        .routes
        .iter()
        .flat_map(|r| r.secret_names())
        .collect();
    named.sort_unstable();
    named.dedup();
    // A secret a route names must be set, or the configuration would not have loaded.
    secrets.extend(named.iter().map(|n| json!({ "name": n, "set": true })));
    json!({
        "tokens": {
            "issuer": t.issuer,
            "audience": t.audience,
            "access_ttl_secs": t.access_ttl_secs,
            "refresh_ttl_secs": t.refresh_ttl_secs,
            "refresh_idle_secs": t.refresh_idle_secs,
            "refresh_grace_secs": t.refresh_grace_secs,
            "clock_leeway_secs": t.clock_leeway_secs,
            "signing_keys": t.keys.jwks()["keys"].as_array().map_or(0, Vec::len),
            "scoped_max_ttl_secs": t.scoped.max_ttl_secs,
            "scoped_audiences": t.scoped.audiences,
        },
        "accounts": {
            "registration": registration_name(a.registration),
            "default_roles": a.default_roles,
            "api_keys_enabled": a.api_key_pepper.is_some(),
            "pbkdf2_iterations": a.pbkdf2_iterations,
        },
        "browser": {
            "allowed_origins": config.browser.allowed_origins.list(),
            "cookie_same_site": config.browser.cookie_same_site.as_str(),
        },
        "limits": {
            "max_body_bytes": l.max_body_bytes,
            "audit_retention_days": l.audit_retention_days,
            "session_retention_days": l.session_retention_days,
            "rate": {
                "window_secs": l.rate.window_secs,
                "login_per_account": l.rate.login_per_account,
                "login_per_ip": l.rate.login_per_ip,
                "register_per_ip": l.rate.register_per_ip,
                "refresh_per_family": l.rate.refresh_per_family,
                "token_mint_per_credential": l.rate.token_mint_per_credential,
            },
        },
        "routes": routes,
        "issuers": issuers,
        "secrets": secrets,
    })
}
