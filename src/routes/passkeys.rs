//! Passkeys (WebAuthn): the two ceremonies and self-service.
//!
//! - `POST /auth/webauthn/register/options` and `…/register/verify` (Bearer access token):
//!   a signed-in user creates a passkey.
//! - `POST /auth/webauthn/login/options` and `…/login/verify`: anyone signs in with a
//!   discoverable passkey, no email typed; the answer is the same session as a password login.
//! - `GET /auth/passkeys`, `DELETE /auth/passkeys/{id}` (Bearer): the caller's own passkeys.
//!
//! A challenge (see `services::webauthn`) is 32 random bytes, stored as its SHA-256 with its ceremony (and, to register,
//! its user) for at most five minutes, and used up by the one verification that presents it
//! (the store's compare-and-set), whatever that verification's outcome. Every registration,
//! sign-in, refusal after the challenge and removal is audited.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::store::{Passkey, Store, User};
use crate::domain::webauthn::{self, Ceremony, ClientData, ALG_EDDSA, ALG_ES256, CHALLENGE_TTL_MS};
use crate::primitives::body::{json_body, Assertion, AssertionResponse};
use crate::primitives::encoding::{b64url, hex, new_id};
use crate::primitives::error::{Error, WebAuthnRejection};
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::routes::auth::{start_session, Delivery};
use crate::routes::sessions::caller_session;
use crate::services::audit::own_event;
use crate::services::ratelimit::{self, Bucket};
use crate::services::webauthn::{
    b64_member, new_challenge, refused, relying_party, take_challenge, verify_passkey_assertion,
    AssertionUse,
};
use crate::services::Services;

/// Longest passkey name kept.
const MAX_NAME_CHARS: usize = 64;

/// The name of a COSE algorithm, as lists show it.
fn algorithm_name(alg: i64) -> &'static str {
    match alg {
        ALG_ES256 => "ES256",
        ALG_EDDSA => "EdDSA",
        _ => "unknown",
    }
}

/// A passkey as shown to its owner or an admin.
pub fn passkey_json(p: &Passkey) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "credential_id": p.credential_id,
        "algorithm": algorithm_name(p.algorithm),
        "aaguid": p.aaguid,
        "backup_eligible": p.backup_eligible,
        "backed_up": p.backed_up,
        "transports": p.transports,
        "created_at": p.created_at,
        "last_used_at": p.last_used_at,
        "flagged_at": p.flagged_at,
    })
}

// ---------------------------------------------------------------------------------------------
// Registration

/// `POST /auth/webauthn/register/options`: the `PublicKeyCredentialCreationOptions` (JSON form)
/// for the caller's new passkey.
pub(super) async fn register_options<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let rp = relying_party(svc)?;
    let user = signed_in_user(svc, req).await?;
    let _: Value = json_body(req, svc.config.limits.max_body_bytes, true)?;
    let existing = svc.store.user_passkeys(&user.id).await?;
    let challenge = new_challenge(svc, Ceremony::Register, Some(&user.id)).await?;
    let exclude: Vec<Value> = existing
        .iter()
        .map(|p| json!({ "type": "public-key", "id": p.credential_id, "transports": p.transports }))
        .collect();
    Ok(Response::json(
        200,
        &json!({ "publicKey": {
            "rp": { "id": rp.id, "name": rp.name },
            "user": {
                "id": b64url(user.id.as_bytes()),
                "name": user.email,
                "displayName": user.name.as_deref().unwrap_or(&user.email),
            },
            "challenge": challenge,
            "pubKeyCredParams": [
                { "type": "public-key", "alg": ALG_EDDSA },
                { "type": "public-key", "alg": ALG_ES256 },
            ],
            "timeout": CHALLENGE_TTL_MS,
            "excludeCredentials": exclude,
            "authenticatorSelection": {
                "residentKey": "required",
                "requireResidentKey": true,
                "userVerification": rp.user_verification.as_str(),
            },
            "attestation": "none",
        }}),
    )
    .with_header("cache-control", "no-store"))
}

#[derive(Deserialize)]
struct AttestationResponse {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(rename = "attestationObject")]
    attestation_object: String,
    #[serde(default)]
    transports: Option<Vec<String>>,
}

/// `POST /auth/webauthn/register/verify`: a `RegistrationResponseJSON` (what
/// `PublicKeyCredential.toJSON()` gives) and an optional `name`.
#[derive(Deserialize)]
struct RegistrationBody {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    response: AttestationResponse,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /auth/webauthn/register/verify`: verifies the new credential and stores it.
pub(super) async fn register_verify<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let rp = relying_party(svc)?;
    let user = signed_in_user(svc, req).await?;
    let body: RegistrationBody = json_body(req, svc.config.limits.max_body_bytes, false)?;
    if body.kind != "public-key" {
        return Err(Error::BadRequest("type: expected \"public-key\"".into()));
    }
    let cdj = b64_member(&body.response.client_data_json, "response.clientDataJSON")?;
    let att = b64_member(
        &body.response.attestation_object,
        "response.attestationObject",
    )?;
    let id = b64_member(&body.id, "id")?;
    let name = passkey_name(body.name.as_deref())?;
    let transports = transports(body.response.transports.as_deref());
    let client_data = ClientData::parse(&cdj)?;
    take_challenge(svc, &client_data, Ceremony::Register, Some(&user.id)).await?;
    let now = svc.clock.now_ms();
    const FAILED: &str = "passkey_registration_failed";
    let credential = match webauthn::verify_registration(rp, &client_data, &cdj, &att) {
        Ok(credential) => credential,
        Err(err) => return Err(refused(svc, req, FAILED, Some(&user.id), None, false, err).await),
    };
    if credential.credential_id != id {
        let err = Error::BadRequest("id: not the credential id of the attestation".into());
        return Err(refused(svc, req, FAILED, Some(&user.id), None, false, err).await);
    }
    let passkey = Passkey {
        id: new_id(svc.rng, "pk_"),
        user_id: user.id.clone(),
        credential_id: b64url(&credential.credential_id),
        public_key: b64url(&credential.public_key),
        algorithm: credential.algorithm,
        sign_count: i64::from(credential.sign_count),
        name,
        aaguid: hex(&credential.aaguid),
        backup_eligible: credential.backup_eligible,
        backed_up: credential.backed_up,
        transports,
        created_at: now,
        last_used_at: None,
        flagged_at: None,
    };
    let ev = own_event(
        req,
        now,
        "passkey_registered",
        Some(&user.id),
        None,
        Some(json!({
            "passkey_id": passkey.id,
            "algorithm": algorithm_name(passkey.algorithm),
            "attestation": credential.attestation,
        })),
    );
    if !svc.store.create_passkey(&passkey, &ev).await? {
        let err = Error::WebAuthn(
            WebAuthnRejection::CredentialExists,
            "credential id already stored",
        );
        return Err(refused(svc, req, FAILED, Some(&user.id), None, false, err).await);
    }
    Ok(Response::json(
        201,
        &json!({ "passkey": passkey_json(&passkey) }),
    ))
}

/// A passkey's name: trimmed, at most 64 characters, no control characters; `Passkey` when
/// none is given.
fn passkey_name(name: Option<&str>) -> Result<String, Error> {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let Some(name) = name else {
        return Ok("Passkey".into());
    };
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!(
            "name: at most {MAX_NAME_CHARS} characters, no control characters"
        )));
    }
    Ok(name.to_string())
}

/// The transports the browser reported that WebAuthn defines (others are dropped).
fn transports(reported: Option<&[String]>) -> Vec<String> {
    const KNOWN: [&str; 6] = ["ble", "hybrid", "internal", "nfc", "smart-card", "usb"];
    let mut out: Vec<String> = Vec::new();
    for t in reported.unwrap_or_default() {
        if KNOWN.contains(&t.as_str()) && !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// The caller of a Bearer access token: an enabled user with a live session (API keys do not
/// manage passkeys: 403 `scope_violation`).
async fn signed_in_user<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<User, Error> {
    let (user_id, _) = caller_session(svc, req).await?;
    svc.store.user_by_id(&user_id).await?.ok_or(Error::NoAuth)
}

// ---------------------------------------------------------------------------------------------
// Login

/// `POST /auth/webauthn/login/options`: the optional body `{"purpose": …}` names what the
/// challenge is for, and only that use takes it:
///
/// - `login` (the default): a passwordless sign-in (`…/login/verify`);
/// - `second_factor`: the `webauthn` member of a password login that answered `mfa_required`;
/// - `reauthenticate` (Bearer access token): the `webauthn` member of a TOTP change by the
///   caller, whose passkeys `allowCredentials` lists; the challenge is bound to the caller.
#[derive(Deserialize, Default)]
struct OptionsBody {
    #[serde(default)]
    purpose: Option<String>,
}

/// `POST /auth/webauthn/login/options`: the `PublicKeyCredentialRequestOptions` (JSON form) of
/// an assertion; for a sign-in no credential is named (discoverable passkeys). Rate-limited
/// per IP like a login attempt: every sign-in needs one.
pub(super) async fn login_options<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let rp = relying_party(svc)?;
    let body: OptionsBody = json_body(req, svc.config.limits.max_body_bytes, true)?;
    let ceremony = match body.purpose.as_deref() {
        None | Some("login") => Ceremony::Login,
        Some("second_factor") => Ceremony::SecondFactor,
        Some("reauthenticate") => Ceremony::Reauthenticate,
        Some(_) => {
            return Err(Error::BadRequest(
                "purpose: expected \"login\", \"second_factor\" or \"reauthenticate\"".into(),
            ))
        }
    };
    if let Some(ip) = req.client_ip() {
        ratelimit::check(svc, Bucket::LoginIp, ip).await?;
    }
    let (user_id, allow) = if ceremony == Ceremony::Reauthenticate {
        let user = signed_in_user(svc, req).await?;
        let allow: Vec<Value> = svc
            .store
            .user_passkeys(&user.id)
            .await?
            .iter()
            .map(|p| json!({ "type": "public-key", "id": p.credential_id, "transports": p.transports }))
            .collect();
        (Some(user.id), allow)
    } else {
        (None, Vec::new())
    };
    let challenge = new_challenge(svc, ceremony, user_id.as_deref()).await?;
    Ok(Response::json(
        200,
        &json!({ "publicKey": {
            "challenge": challenge,
            "rpId": rp.id,
            "timeout": CHALLENGE_TTL_MS,
            "userVerification": rp.user_verification.as_str(),
            "allowCredentials": allow,
        }}),
    )
    .with_header("cache-control", "no-store"))
}

/// `POST /auth/webauthn/login/verify`: an `AuthenticationResponseJSON` and, as for a password
/// login, `refresh_token_in_body`.
#[derive(Deserialize)]
struct LoginBody {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    response: AssertionResponse,
    #[serde(default)]
    refresh_token_in_body: Option<bool>,
}

/// `POST /auth/webauthn/login/verify`: verifies the assertion and starts a session exactly as
/// a password login does (refresh cookie or body, CSRF token, device cookie).
pub(super) async fn login_verify<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    relying_party(svc)?;
    let body: LoginBody = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let delivery = if body.refresh_token_in_body == Some(true) {
        Delivery::Body
    } else {
        Delivery::Cookie
    };
    let assertion = Assertion {
        id: body.id,
        kind: body.kind,
        response: body.response,
    };
    let passkey = verify_passkey_assertion(svc, req, &assertion, AssertionUse::SignIn).await?;
    let user = svc.store.user_by_id(&passkey.user_id).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        let err = Error::InvalidCredentials;
        const FAILED: &str = "passkey_login_failed";
        let owner = Some(passkey.user_id.as_str());
        return Err(refused(svc, req, FAILED, owner, Some(&passkey.id), false, err).await);
    };
    let detail = json!({ "method": "passkey", "passkey_id": passkey.id });
    start_session(svc, req, &user, &user.email, Some(detail), delivery).await
}

// ---------------------------------------------------------------------------------------------
// Self-service

/// `GET /auth/passkeys`: the caller's passkeys, newest first.
pub(super) async fn list_own<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    relying_party(svc)?;
    let (user_id, _) = caller_session(svc, req).await?;
    let list: Vec<Value> = svc
        .store
        .user_passkeys(&user_id)
        .await?
        .iter()
        .map(passkey_json)
        .collect();
    Ok(Response::json(200, &json!({ "passkeys": list })))
}

/// `DELETE /auth/passkeys/{id}`: removes one of the caller's passkeys; another user's id
/// answers 404 like an unknown one.
pub(super) async fn delete_own<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    relying_party(svc)?;
    let (user_id, _) = caller_session(svc, req).await?;
    let now = svc.clock.now_ms();
    let ev = own_event(
        req,
        now,
        "passkey_deleted",
        Some(&user_id),
        None,
        Some(json!({ "passkey_id": id, "by": "self" })),
    );
    if !svc.store.delete_passkey(&user_id, id, &ev).await? {
        return Err(Error::NotFound);
    }
    Ok(Response::empty(204))
}
