//! Self-service second factor under `/auth/mfa`: the caller's status, TOTP enrollment (start,
//! then confirm with a code), removal, and new recovery codes. Every change asks for the
//! password again, or an assertion of one of the caller's passkeys (confirming asks for a code
//! of the new secret instead); every change and every refusal of a wrong password, passkey or
//! code is an audit event. Like `/auth/sessions`, these
//! take the caller's access token (API keys answer 403 `scope_violation`).

use serde_json::{json, Value};

use crate::domain::mfa::{self, TotpSecret, PENDING_TTL_MS};
use crate::domain::password::{self, Verdict};
use crate::domain::store::{RecoveryCodeHash, Store, TotpConfirmation, User};
use crate::primitives::body::{json_body, OtpBody, PasswordAgain, Reauthentication};
use crate::primitives::encoding::new_id;
use crate::primitives::error::{Error, TokenRejection};
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::services::audit::own_event;
use crate::services::auth::{authenticate, check_token_session, enabled_user};
use crate::services::mfa::mfa_key;
use crate::services::webauthn::{verify_passkey_assertion, AssertionUse};
use crate::services::Services;

/// The caller: an access token of an enabled user whose session still stands (API keys and
/// scoped tokens: 403 `scope_violation`).
async fn caller<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<User, Error> {
    let caller = authenticate(svc, req).await?.ok_or(Error::NoAuth)?;
    if !caller.manages_account() {
        return Err(Error::ScopeViolation);
    }
    let Some(user) = enabled_user(svc, &caller.user_id).await? else {
        return Err(Error::InvalidToken(TokenRejection::Revoked));
    };
    check_token_session(svc, &user.id, caller.session_id.as_deref()).await?;
    Ok(user)
}

/// The caller shown again before a sensitive change (the body's one way, see
/// [`reauthentication_body`]). A passkey assertion answers a `reauthenticate` challenge
/// issued to the caller and must be of one of the caller's own passkeys; it is verified as a
/// passkey sign-in is. Refusals are recorded as `kind`.
async fn reauthenticate<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    user: &User,
    how: &Reauthentication,
    kind: &str,
) -> Result<(), Error> {
    match how {
        Reauthentication::Password(pw) => check_password(svc, req, user, pw, kind).await,
        Reauthentication::Passkey(assertion) => {
            let purpose = AssertionUse::Reauthenticate {
                user_id: &user.id,
                failed: kind,
            };
            verify_passkey_assertion(svc, req, assertion, purpose).await?;
            Ok(())
        }
    }
}

/// The body of a sensitive change: `{password}` or `{webauthn}`, exactly one (400 otherwise).
fn reauthentication_body<S, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Reauthentication, Error> {
    let body: PasswordAgain = json_body(req, svc.config.limits.max_body_bytes, false)?;
    body.into_reauthentication()
}

/// The password of a sensitive change, checked; a wrong one is recorded (`kind`, cause
/// `wrong_password`) and answered 401 `invalid_credentials`.
async fn check_password<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    user: &User,
    pw: &str,
    kind: &str,
) -> Result<(), Error> {
    let iterations = svc.config.accounts.pbkdf2_iterations;
    if password::verify(svc.hasher, &user.password_hash, pw, iterations).await? == Verdict::Mismatch
    {
        let now = svc.clock.now_ms();
        let detail = json!({ "cause": "wrong_password" });
        let ev = own_event(req, now, kind, Some(&user.id), None, Some(detail));
        svc.store.record_event(&ev).await?;
        return Err(Error::InvalidCredentials);
    }
    Ok(())
}

/// New recovery codes for `user_id`: the codes to show once, and their hashes to store.
fn new_recovery_codes<S, H>(
    svc: &Services<'_, S, H>,
    user_id: &str,
) -> Result<(Vec<String>, Vec<RecoveryCodeHash>), Error> {
    let key = mfa_key(svc)?;
    let codes = mfa::generate_recovery_codes(svc.rng);
    let hashes = codes
        .iter()
        .map(|code| {
            let normal = mfa::normalize_recovery_code(code).expect("generated codes are normal");
            mfa::recovery_hash(key, user_id, &normal)
        })
        .collect();
    Ok((codes, hashes))
}

/// `GET /auth/mfa`: whether TOTP is available here and enrolled for the caller.
pub async fn status<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let user = caller(svc, req).await?;
    let record = svc.store.totp(&user.id).await?;
    let now = svc.clock.now_ms();
    let enrolled = record.as_ref().is_some_and(|r| r.secret_sealed.is_some());
    let pending = record
        .as_ref()
        .and_then(|r| r.pending_at)
        .is_some_and(|at| now - at < PENDING_TTL_MS);
    Ok(Response::json(
        200,
        &json!({ "totp": {
            "available": svc.config.accounts.mfa_key.is_some(),
            "enrolled": enrolled,
            "enrolled_at": record.as_ref().and_then(|r| r.enrolled_at),
            "pending": pending,
            "recovery_codes_left": record.as_ref().map_or(0, |r| r.recovery_codes_left),
        }}),
    )
    .with_header("cache-control", "no-store"))
}

/// `POST /auth/mfa/totp/start {password | webauthn}`: a new secret, stored sealed as the pending
/// enrollment (an enrolled one stays until a code of the new one confirms it), with its
/// `otpauth://` URI and that URI as a QR code (SVG).
pub async fn start<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let user = caller(svc, req).await?;
    let body = reauthentication_body(svc, req)?;
    let key = mfa_key(svc)?;
    reauthenticate(svc, req, &user, &body, "totp_enrollment_failed").await?;
    let now = svc.clock.now_ms();
    let secret = TotpSecret::generate(svc.rng);
    let sealed = secret.seal(svc.aead, key, svc.rng, &user.id).await?;
    let ev = own_event(
        req,
        now,
        "totp_enrollment_started",
        Some(&user.id),
        None,
        None,
    );
    if !svc.store.start_totp(&user.id, &sealed, now, &ev).await? {
        return Err(Error::InvalidToken(TokenRejection::Revoked));
    }
    let uri = secret.otpauth_uri(&svc.config.accounts.totp_issuer, &user.email);
    let qr_svg = mfa::qr_svg(&uri).ok_or_else(|| Error::Internal("otpauth URI too long".into()))?;
    Ok(Response::json(
        200,
        &json!({
            "secret": secret.base32(),
            "otpauth_uri": uri,
            "qr_svg": qr_svg,
            "expires_in": PENDING_TTL_MS / 1000,
        }),
    )
    .with_header("cache-control", "no-store"))
}

/// `POST /auth/mfa/totp/confirm {otp}`: a code of the pending secret makes it the enrolled one
/// (replacing an earlier one) and issues 10 recovery codes, shown this once.
pub async fn confirm<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let user = caller(svc, req).await?;
    let body: OtpBody = json_body(req, svc.config.limits.max_body_bytes, false)?;
    let key = mfa_key(svc)?;
    let now = svc.clock.now_ms();
    let record = svc.store.totp(&user.id).await?;
    let pending = record.and_then(|r| match (r.pending_sealed, r.pending_at) {
        (Some(sealed), Some(at)) if now - at < PENDING_TTL_MS => Some(sealed),
        _ => None,
    });
    let Some(pending) = pending else {
        return Err(Error::MfaNotEnrolled(
            "no TOTP enrollment is pending (or it expired): start one first",
        ));
    };
    let secret = TotpSecret::open(svc.aead, key, &user.id, &pending).await?;
    let Some(step) = secret.matching_step(body.otp.trim(), now) else {
        let detail = json!({ "cause": "wrong_otp" });
        let ev = own_event(
            req,
            now,
            "totp_enrollment_failed",
            Some(&user.id),
            None,
            Some(detail),
        );
        svc.store.record_event(&ev).await?;
        return Err(Error::InvalidOtp);
    };
    let (codes, hashes) = new_recovery_codes(svc, &user.id)?;
    let confirmation = TotpConfirmation {
        user_id: user.id.clone(),
        pending_sealed: pending,
        step: i64::try_from(step).map_err(|_| Error::Internal("TOTP step overflow".into()))?,
        enrollment_id: new_id(svc.rng, "enr_"),
        recovery_codes: hashes,
        now,
    };
    let detail = json!({ "replaced": user.totp });
    let ev = own_event(
        req,
        now,
        "totp_enrolled",
        Some(&user.id),
        None,
        Some(detail),
    );
    if !svc.store.confirm_totp(&confirmation, &ev).await? {
        return Err(Error::MfaNotEnrolled(
            "the pending TOTP enrollment was confirmed or replaced meanwhile",
        ));
    }
    Ok(Response::json(200, &json!({ "recovery_codes": codes }))
        .with_header("cache-control", "no-store"))
}

/// `DELETE /auth/mfa/totp {password | webauthn}`: removes the caller's TOTP and recovery codes.
pub async fn remove<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let user = caller(svc, req).await?;
    let body = reauthentication_body(svc, req)?;
    reauthenticate(svc, req, &user, &body, "totp_removal_failed").await?;
    let now = svc.clock.now_ms();
    let detail = json!({ "by": "self" });
    let ev = own_event(req, now, "totp_removed", Some(&user.id), None, Some(detail));
    if !svc.store.remove_totp(&user.id, &ev).await? {
        return Err(Error::MfaNotEnrolled("no TOTP is enrolled"));
    }
    Ok(Response::empty(204))
}

/// `POST /auth/mfa/recovery-codes {password | webauthn}`: 10 new recovery codes replacing the old ones.
pub async fn regenerate_codes<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let user = caller(svc, req).await?;
    let body = reauthentication_body(svc, req)?;
    mfa_key(svc)?;
    reauthenticate(svc, req, &user, &body, "recovery_codes_failed").await?;
    let now = svc.clock.now_ms();
    let (codes, hashes) = new_recovery_codes(svc, &user.id)?;
    let ev = own_event(
        req,
        now,
        "recovery_codes_regenerated",
        Some(&user.id),
        None,
        None,
    );
    if !svc
        .store
        .replace_recovery_codes(&user.id, &hashes, now, &ev)
        .await?
    {
        return Err(Error::MfaNotEnrolled("no TOTP is enrolled"));
    }
    let codes: Vec<Value> = codes.into_iter().map(Value::String).collect();
    Ok(Response::json(200, &json!({ "recovery_codes": codes }))
        .with_header("cache-control", "no-store"))
}
