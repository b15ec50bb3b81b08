//! The second factor at login: after the password of a user with TOTP enrolled was found
//! right, a code (`otp`: six digits, or a recovery code) is required, checked and used up.

use serde_json::json;

use crate::domain::mfa::{self, MfaKey, TotpSecret};
use crate::domain::store::{Store, User};
use crate::primitives::error::Error;
use crate::primitives::http::Request;
use crate::services::audit::own_event;
use crate::services::Services;

/// How a login's second factor was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A TOTP code, accepted for its time step (never again).
    Totp,
    /// A recovery code, used up.
    RecoveryCode,
    /// An assertion of one of the user's passkeys (verified by the passkey routes).
    Passkey,
}

impl SecondFactor {
    /// The name audit events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }
}

/// The MFA key, or 403 `mfa_unavailable` when `MFA_ENCRYPTION_KEY` is not set.
pub fn mfa_key<'a, S, H>(svc: &Services<'a, S, H>) -> Result<&'a MfaKey, Error> {
    svc.config
        .accounts
        .mfa_key
        .as_ref()
        .ok_or(Error::MfaUnavailable)
}

/// The second factor of `user`, whose password was right: `None` when the user has no TOTP
/// enrolled; otherwise `otp` must be a code of the enrolled secret not used before, or an
/// unused recovery code (401 `mfa_required` without one, 401 `invalid_otp` for a wrong,
/// replayed or used one; every failure is recorded as a `login_failed` event).
pub async fn check_second_factor<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
    user: &User,
    otp: Option<&str>,
) -> Result<Option<SecondFactor>, Error> {
    if !user.totp {
        return Ok(None);
    }
    let Some(otp) = otp.map(str::trim).filter(|o| !o.is_empty()) else {
        return Err(Error::MfaRequired);
    };
    let key = mfa_key(svc)?;
    let now = svc.clock.now_ms();
    let (used, cause, method) = if mfa::is_code(otp) {
        let (used, cause) = use_totp_code(svc, key, &user.id, otp, now).await?;
        (used, cause, SecondFactor::Totp)
    } else {
        let used = match mfa::normalize_recovery_code(otp) {
            Some(code) => {
                let hash = mfa::recovery_hash(key, &user.id, &code);
                svc.store.use_recovery_code(&user.id, &hash).await?
            }
            None => false,
        };
        (used, "invalid_recovery_code", SecondFactor::RecoveryCode)
    };
    if used {
        return Ok(Some(method));
    }
    let detail = json!({ "cause": cause, "mfa": method.as_str() });
    let ev = own_event(req, now, "login_failed", Some(&user.id), None, Some(detail));
    svc.store.record_event(&ev).await?;
    Err(Error::InvalidOtp)
}

/// Checks a six-digit code against the user's enrolled secret and, if it matches, accepts its
/// time step once. `(accepted, cause of a refusal)`.
async fn use_totp_code<S: Store, H>(
    svc: &Services<'_, S, H>,
    key: &MfaKey,
    user_id: &str,
    code: &str,
    now: i64,
) -> Result<(bool, &'static str), Error> {
    let record = svc.store.totp(user_id).await?;
    let Some(sealed) = record.and_then(|r| r.secret_sealed) else {
        // Removed between reading the user and now.
        return Ok((false, "totp_not_enrolled"));
    };
    let secret = TotpSecret::open(svc.aead, key, user_id, &sealed).await?;
    let Some(step) = secret.matching_step(code, now) else {
        return Ok((false, "wrong_otp"));
    };
    let step = i64::try_from(step).map_err(|_| Error::Internal("TOTP step overflow".into()))?;
    if svc.store.use_totp_step(user_id, &sealed, step).await? {
        Ok((true, ""))
    } else {
        Ok((false, "otp_replayed"))
    }
}
