//! Passkeys (WebAuthn): the two ceremonies and self-service.
//!
//! - `POST /auth/webauthn/register/options` and `…/register/verify` (Bearer access token):
//!   a signed-in user creates a passkey.
//! - `POST /auth/webauthn/login/options` and `…/login/verify`: anyone signs in with a
//!   discoverable passkey, no email typed; the answer is the same session as a password login.
//! - `GET /auth/passkeys`, `DELETE /auth/passkeys/{id}` (Bearer): the caller's own passkeys.
//!
//! A challenge is 32 random bytes, stored as its SHA-256 with its ceremony (and, to register,
//! its user) for at most five minutes, and used up by the one verification that presents it
//! (the store's compare-and-set), whatever that verification's outcome. Every registration,
//! sign-in, refusal after the challenge and removal is audited.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::store::{Challenge, Passkey, PasskeyUse, Store, User};
use crate::domain::webauthn::{
    self, counter_advanced, Ceremony, ClientData, RelyingParty, ALG_EDDSA, ALG_ES256,
    CHALLENGE_BYTES, CHALLENGE_TTL_MS,
};
use crate::primitives::body::{json_body, Assertion, AssertionResponse};
use crate::primitives::encoding::{b64url, b64url_decode, hex, new_id, sha256};
use crate::primitives::error::{Error, WebAuthnRejection};
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::{random_array, Pbkdf2};
use crate::routes::auth::{new_family, session_response, with_device_cookie, Delivery};
use crate::routes::sessions::caller_session;
use crate::services::audit::own_event;
use crate::services::ratelimit::{self, Bucket};
use crate::services::Services;

/// Longest passkey name kept.
const MAX_NAME_CHARS: usize = 64;

/// The relying party, or 404 `passkeys_disabled`.
fn relying_party<'a, S, H>(svc: &Services<'a, S, H>) -> Result<&'a RelyingParty, Error> {
    svc.config.webauthn.as_ref().ok_or(Error::WebAuthn(
        WebAuthnRejection::Disabled,
        "WEBAUTHN_RP_ID is not set",
    ))
}

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

/// A base64url member of a ceremony's body, decoded; 400 naming it otherwise.
fn b64_member(value: &str, what: &str) -> Result<Vec<u8>, Error> {
    b64url_decode(value)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::BadRequest(format!("{what}: expected non-empty base64url")))
}

/// Opens a ceremony: a fresh challenge, stored as its hash.
async fn new_challenge<S: Store, H>(
    svc: &Services<'_, S, H>,
    ceremony: Ceremony,
    user_id: Option<&str>,
) -> Result<String, Error> {
    let challenge: [u8; CHALLENGE_BYTES] = random_array(svc.rng);
    svc.store
        .create_challenge(&Challenge {
            challenge_hash: hex(&sha256(&challenge)),
            ceremony: ceremony.as_str().to_string(),
            user_id: user_id.map(str::to_string),
            expires_at: svc.clock.now_ms() + CHALLENGE_TTL_MS,
        })
        .await?;
    Ok(b64url(&challenge))
}

/// Uses up the challenge `client_data` answers: it must have been issued for `ceremony` (and
/// `user_id`), not used before, and not expired.
async fn take_challenge<S: Store, H>(
    svc: &Services<'_, S, H>,
    client_data: &ClientData,
    ceremony: Ceremony,
    user_id: Option<&str>,
) -> Result<(), Error> {
    let hash = hex(&sha256(&client_data.challenge));
    let taken = svc.store.take_challenge(&hash, ceremony.as_str()).await?;
    let Some(challenge) = taken else {
        return Err(Error::WebAuthn(
            WebAuthnRejection::ChallengeInvalid,
            "unknown, used, or another ceremony's",
        ));
    };
    if challenge.user_id.as_deref() != user_id {
        return Err(Error::WebAuthn(
            WebAuthnRejection::ChallengeInvalid,
            "issued to another user",
        ));
    }
    if challenge.expires_at <= svc.clock.now_ms() {
        return Err(Error::WebAuthn(
            WebAuthnRejection::ChallengeExpired,
            "past its five minutes",
        ));
    }
    Ok(())
}

/// Records a ceremony's refusal (`kind`, with the error's code as its cause) and returns the
/// error to answer, or the store's own error if recording failed.
async fn refused<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    kind: &str,
    user_id: Option<&str>,
    passkey_id: Option<&str>,
    mfa: bool,
    err: Error,
) -> Error {
    let mut detail = json!({ "cause": err.code() });
    if let Some(id) = passkey_id {
        detail["passkey_id"] = json!(id);
    }
    if mfa {
        detail["mfa"] = json!("passkey");
    }
    let ev = own_event(req, svc.clock.now_ms(), kind, user_id, None, Some(detail));
    match svc.store.record_event(&ev).await {
        Ok(()) => err,
        Err(store_err) => store_err,
    }
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

/// What an assertion is verified for: its ceremony, whose passkey it must be, and the audit
/// event a refusal records.
#[derive(Clone, Copy)]
pub(crate) enum AssertionUse<'a> {
    /// A passwordless sign-in: any user's passkey (`passkey_login_failed`).
    SignIn,
    /// The second factor of `user_id`, whose password was right (`login_failed`, with
    /// `"mfa": "passkey"`).
    SecondFactor { user_id: &'a str },
    /// `user_id` shown again before a sensitive change; a refusal is recorded as `failed`.
    Reauthenticate { user_id: &'a str, failed: &'a str },
}

impl<'a> AssertionUse<'a> {
    fn ceremony(self) -> Ceremony {
        match self {
            Self::SignIn => Ceremony::Login,
            Self::SecondFactor { .. } => Ceremony::SecondFactor,
            Self::Reauthenticate { .. } => Ceremony::Reauthenticate,
        }
    }

    /// The user the challenge was issued to.
    fn challenge_user(self) -> Option<&'a str> {
        match self {
            Self::SignIn | Self::SecondFactor { .. } => None,
            Self::Reauthenticate { user_id, .. } => Some(user_id),
        }
    }

    /// The user the passkey must belong to.
    fn expected_user(self) -> Option<&'a str> {
        match self {
            Self::SignIn => None,
            Self::SecondFactor { user_id } | Self::Reauthenticate { user_id, .. } => Some(user_id),
        }
    }

    fn failed_kind(self) -> &'a str {
        match self {
            Self::SignIn => "passkey_login_failed",
            Self::SecondFactor { .. } => "login_failed",
            Self::Reauthenticate { failed, .. } => failed,
        }
    }
}

/// Verifies a passkey assertion for `purpose` — the one place every use of an assertion goes
/// through: the challenge (issued for this ceremony, and user, used up whatever the outcome),
/// the credential (registered, of the expected user, not flagged), the user handle, origin,
/// RP ID, flags and signature, then the signature counter (a regression flags the passkey),
/// moved by compare-and-set. Every refusal after the challenge is audited. Answers the
/// passkey as it was before this use.
pub(crate) async fn verify_passkey_assertion<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    assertion: &Assertion,
    purpose: AssertionUse<'_>,
) -> Result<Passkey, Error> {
    let rp = relying_party(svc)?;
    if assertion.kind != "public-key" {
        return Err(Error::BadRequest("type: expected \"public-key\"".into()));
    }
    let r = &assertion.response;
    let cdj = b64_member(&r.client_data_json, "response.clientDataJSON")?;
    let auth_data = b64_member(&r.authenticator_data, "response.authenticatorData")?;
    let signature = b64_member(&r.signature, "response.signature")?;
    let credential_id = b64url(&b64_member(&assertion.id, "id")?);
    let user_handle = match r.user_handle.as_deref() {
        None | Some("") => None,
        Some(h) => Some(b64_member(h, "response.userHandle")?),
    };
    let client_data = ClientData::parse(&cdj)?;
    take_challenge(
        svc,
        &client_data,
        purpose.ceremony(),
        purpose.challenge_user(),
    )
    .await?;
    let now = svc.clock.now_ms();

    let failed = purpose.failed_kind();
    let expected = purpose.expected_user();
    let refuse = |user: Option<&str>, passkey: Option<&str>, err: Error| {
        // Refusals of a second factor or re-authentication are the expected user's events.
        let user = expected.or(user).map(str::to_string);
        let passkey = passkey.map(str::to_string);
        async move {
            let mfa = matches!(purpose, AssertionUse::SecondFactor { .. });
            refused(
                svc,
                req,
                failed,
                user.as_deref(),
                passkey.as_deref(),
                mfa,
                err,
            )
            .await
        }
    };
    let Some(passkey) = svc.store.passkey_by_credential(&credential_id).await? else {
        let err = Error::WebAuthn(WebAuthnRejection::UnknownCredential, "no such credential");
        return Err(refuse(None, None, err).await);
    };
    let owner = Some(passkey.user_id.as_str());
    if expected.is_some_and(|u| u != passkey.user_id) {
        let err = Error::WebAuthn(WebAuthnRejection::UserMismatch, "another user's passkey");
        return Err(refuse(owner, Some(&passkey.id), err).await);
    }
    if user_handle.is_some_and(|h| h != passkey.user_id.as_bytes()) {
        let err = Error::WebAuthn(WebAuthnRejection::UserMismatch, "userHandle");
        return Err(refuse(owner, Some(&passkey.id), err).await);
    }
    if passkey.flagged_at.is_some() {
        let err = Error::WebAuthn(WebAuthnRejection::CounterRegression, "flagged before");
        return Err(refuse(owner, Some(&passkey.id), err).await);
    }
    let Some(public_key) = b64url_decode(&passkey.public_key) else {
        return Err(Error::Internal(format!(
            "passkeys.public_key of {} is not base64url",
            passkey.id
        )));
    };
    let asserted = match webauthn::verify_assertion(
        rp,
        &client_data,
        &cdj,
        &auth_data,
        &signature,
        &public_key,
    ) {
        Ok(asserted) => asserted,
        Err(err) => return Err(refuse(owner, Some(&passkey.id), err).await),
    };
    if !counter_advanced(passkey.sign_count, asserted.sign_count) {
        let ev = own_event(
            req,
            now,
            "passkey_counter_regression",
            Some(&passkey.user_id),
            None,
            Some(json!({
                "passkey_id": passkey.id,
                "stored": passkey.sign_count,
                "presented": asserted.sign_count,
            })),
        );
        svc.store.flag_passkey(&passkey.id, now, &ev).await?;
        return Err(Error::WebAuthn(
            WebAuthnRejection::CounterRegression,
            "counter did not increase",
        ));
    }
    let used = PasskeyUse {
        id: passkey.id.clone(),
        old_count: passkey.sign_count,
        new_count: i64::from(asserted.sign_count),
        backed_up: asserted.backed_up,
        now,
    };
    if !svc.store.use_passkey(&used).await? {
        // Another sign-in moved the counter (or flagged the passkey) since it was read.
        let err = Error::WebAuthn(
            WebAuthnRejection::CounterRegression,
            "counter moved concurrently",
        );
        return Err(refuse(owner, Some(&passkey.id), err).await);
    }
    Ok(passkey)
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
    let now = svc.clock.now_ms();
    let (token, family) = new_family(svc, req, &user.id);
    let ev = own_event(
        req,
        now,
        "login_succeeded",
        Some(&user.id),
        Some(&family.id),
        Some(json!({ "method": "passkey", "passkey_id": passkey.id })),
    );
    svc.store.create_family(&family, Some(&ev)).await?;
    let response = session_response(
        svc,
        200,
        &user,
        &token,
        (&family.id, family.expires_at),
        delivery,
    )?;
    Ok(with_device_cookie(svc, response, &user.email, delivery))
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
