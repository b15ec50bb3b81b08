//! Passkey ceremonies' common steps: the relying party, challenges (issued for one ceremony,
//! stored as their SHA-256, used up by the one verification that presents them), audited
//! refusals, and the verification of an assertion that every use of one goes through: a
//! passwordless sign-in, a password login's second factor, and a re-authentication.

use serde_json::json;

use crate::domain::store::{Challenge, Passkey, PasskeyUse, Store};
use crate::domain::webauthn::{
    self, counter_advanced, Ceremony, ClientData, RelyingParty, CHALLENGE_BYTES, CHALLENGE_TTL_MS,
};
use crate::primitives::body::Assertion;
use crate::primitives::encoding::{b64url, b64url_decode, hex, sha256};
use crate::primitives::error::{Error, WebAuthnRejection};
use crate::primitives::http::Request;
use crate::primitives::platform::random_array;
use crate::services::audit::own_event;
use crate::services::Services;

/// The relying party, or 404 `passkeys_disabled`.
pub fn relying_party<'a, S, H>(svc: &Services<'a, S, H>) -> Result<&'a RelyingParty, Error> {
    svc.config.webauthn.as_ref().ok_or(Error::WebAuthn(
        WebAuthnRejection::Disabled,
        "WEBAUTHN_RP_ID is not set",
    ))
}

/// A base64url member of a ceremony's body, decoded; 400 naming it otherwise.
pub fn b64_member(value: &str, what: &str) -> Result<Vec<u8>, Error> {
    b64url_decode(value)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::BadRequest(format!("{what}: expected non-empty base64url")))
}

/// Opens a ceremony: a fresh challenge, stored as its hash.
pub async fn new_challenge<S: Store, H>(
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
pub async fn take_challenge<S: Store, H>(
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
pub async fn refused<S: Store, H>(
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

/// What an assertion is verified for: its ceremony, whose passkey it must be, and the audit
/// event a refusal records.
#[derive(Clone, Copy)]
pub enum AssertionUse<'a> {
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
pub async fn verify_passkey_assertion<S: Store, H>(
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
