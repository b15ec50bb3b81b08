//! The one error type of Gatehouse.
//!
//! Every variant maps to an HTTP status and a stable snake_case code through exhaustive matches,
//! so adding a variant without deciding its status and code does not compile. The wire shows
//! the code and [`Error::public_message`]; [`Error::log_detail`] keeps the cause for the logs.
//! Neither ever contains a secret: causes are built from error descriptions, never from values
//! of secret variables, passwords or tokens.

use std::borrow::Cow;
use std::fmt;

/// A configuration variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name, e.g. `ACCESS_TOKEN_TTL`.
    pub var: &'static str,
    /// What is wrong with it (never the value of a secret).
    pub reason: String,
}

impl ConfigError {
    /// A new error about `var`.
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Why an access token was refused. Kept for logs; the wire only says `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not three base64url parts, or a header that is not JSON.
    Malformed,
    /// `alg` is not `EdDSA` (or, for a trusted issuer, not one it is configured with).
    Algorithm,
    /// No `kid`, or a `kid` that names no key in the key set.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// Claims missing, of the wrong type, or `typ` not `JWT`.
    Claims,
    /// `iss` or `aud` is not this gateway's.
    IssuerOrAudience,
    /// `iat` lies in the future beyond the leeway.
    NotYetValid,
    /// Its session ended (logout, revocation, absolute lifetime) or its user is disabled or
    /// unknown.
    Revoked,
    /// A trusted issuer's token whose user is not a local, enabled user, where the issuer
    /// accepts only those (`known_users_only`).
    UnknownUser,
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed token",
            Self::Algorithm => "algorithm is not EdDSA",
            Self::UnknownKey => "unknown key id",
            Self::Signature => "bad signature",
            Self::Claims => "missing or malformed claims",
            Self::IssuerOrAudience => "wrong issuer or audience",
            Self::NotYetValid => "issued in the future",
            Self::Revoked => "session ended or account disabled",
            Self::UnknownUser => "not a known, enabled local user",
        })
    }
}

/// Why a WebAuthn (passkey) ceremony was refused; each reason has its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebAuthnRejection {
    /// 404 `passkeys_disabled`: `WEBAUTHN_RP_ID` is not set.
    Disabled,
    /// 400 `webauthn_challenge_invalid`: a challenge that was never issued, was already used, or
    /// belongs to another ceremony or user.
    ChallengeInvalid,
    /// 400 `webauthn_challenge_expired`: a challenge past its lifetime (used up all the same).
    ChallengeExpired,
    /// 400 `webauthn_origin_mismatch`: `clientDataJSON.origin` is not in `WEBAUTHN_ORIGINS`, or
    /// the ceremony ran in a cross-origin frame.
    OriginMismatch,
    /// 400 `webauthn_rp_id_mismatch`: the authenticator data is not for `WEBAUTHN_RP_ID`.
    RpIdMismatch,
    /// 400 `webauthn_user_not_verified`: the user-present flag, or the user-verified flag that
    /// `WEBAUTHN_USER_VERIFICATION=required` asks for, is not set.
    UserNotVerified,
    /// 400 `webauthn_algorithm_unsupported`: a credential key that is not ES256 or EdDSA.
    AlgorithmUnsupported,
    /// 400 `webauthn_attestation_unsupported`: an attestation other than `none` or packed
    /// self-attestation.
    AttestationUnsupported,
    /// 401 `webauthn_signature_invalid`: the assertion's (or self-attestation's) signature does
    /// not verify.
    SignatureInvalid,
    /// 401 `passkey_unknown`: no registered passkey has this credential id.
    UnknownCredential,
    /// 401 `passkey_user_mismatch`: the assertion's user handle is not the passkey's user.
    UserMismatch,
    /// 401 `passkey_counter_regression`: the signature counter did not increase (a cloned
    /// authenticator?); the passkey is flagged and refused from then on.
    CounterRegression,
    /// 409 `passkey_exists`: this credential is already registered.
    CredentialExists,
}

impl WebAuthnRejection {
    fn status(self) -> u16 {
        match self {
            Self::Disabled => 404,
            Self::ChallengeInvalid
            | Self::ChallengeExpired
            | Self::OriginMismatch
            | Self::RpIdMismatch
            | Self::UserNotVerified
            | Self::AlgorithmUnsupported
            | Self::AttestationUnsupported => 400,
            Self::SignatureInvalid
            | Self::UnknownCredential
            | Self::UserMismatch
            | Self::CounterRegression => 401,
            Self::CredentialExists => 409,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Disabled => "passkeys_disabled",
            Self::ChallengeInvalid => "webauthn_challenge_invalid",
            Self::ChallengeExpired => "webauthn_challenge_expired",
            Self::OriginMismatch => "webauthn_origin_mismatch",
            Self::RpIdMismatch => "webauthn_rp_id_mismatch",
            Self::UserNotVerified => "webauthn_user_not_verified",
            Self::AlgorithmUnsupported => "webauthn_algorithm_unsupported",
            Self::AttestationUnsupported => "webauthn_attestation_unsupported",
            Self::SignatureInvalid => "webauthn_signature_invalid",
            Self::UnknownCredential => "passkey_unknown",
            Self::UserMismatch => "passkey_user_mismatch",
            Self::CounterRegression => "passkey_counter_regression",
            Self::CredentialExists => "passkey_exists",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Disabled => "passkeys are not enabled on this server",
            Self::ChallengeInvalid => "the challenge is unknown or was already used; start again",
            Self::ChallengeExpired => "the challenge has expired; start again",
            Self::OriginMismatch => "the ceremony ran on an origin this server does not serve",
            Self::RpIdMismatch => "the credential is for another relying party",
            Self::UserNotVerified => "the authenticator did not verify the user",
            Self::AlgorithmUnsupported => {
                "the credential's algorithm is not supported (ES256, EdDSA)"
            }
            Self::AttestationUnsupported => {
                "the attestation format is not supported (none, packed self-attestation)"
            }
            Self::SignatureInvalid => "the passkey's signature does not verify",
            Self::UnknownCredential => "this passkey is not registered",
            Self::UserMismatch => "this passkey belongs to another account",
            Self::CounterRegression => {
                "the passkey's signature counter went backwards; the passkey is blocked"
            }
            Self::CredentialExists => "this passkey is already registered",
        }
    }

    /// Every reason, for tests.
    pub const ALL: [Self; 13] = [
        Self::Disabled,
        Self::ChallengeInvalid,
        Self::ChallengeExpired,
        Self::OriginMismatch,
        Self::RpIdMismatch,
        Self::UserNotVerified,
        Self::AlgorithmUnsupported,
        Self::AttestationUnsupported,
        Self::SignatureInvalid,
        Self::UnknownCredential,
        Self::UserMismatch,
        Self::CounterRegression,
        Self::CredentialExists,
    ];
}

/// Every way a request can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 400: a field is missing, of the wrong type or out of range. The message names the field.
    BadRequest(String),
    /// 400: the body is not JSON.
    InvalidJson,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 413: the body is larger than the limit (bytes).
    PayloadTooLarge(usize),
    /// 404: no such route.
    NotFound,
    /// 405: the route exists but not for this method; carries the `Allow` header value.
    MethodNotAllowed(Cow<'static, str>),
    /// 400: a proxied request's query holds a parameter (or value) its endpoint does not list;
    /// the message names it.
    QueryNotAllowed(String),
    /// 400: a proxied write's body holds a member its endpoint does not accept; the message
    /// names it.
    BodyNotAllowed(String),
    /// 403: an owner-checked update or delete of an item the caller does not own.
    NotOwner,
    /// 401: no credentials were presented.
    NoAuth,
    /// 401: an access token that is not valid.
    InvalidToken(TokenRejection),
    /// 401: an access token past its `exp` (plus leeway).
    ExpiredToken,
    /// 401: unknown email or wrong password (indistinguishable on purpose).
    InvalidCredentials,
    /// 403: `REGISTRATION` is `closed`.
    RegistrationClosed,
    /// 409: an account with this email exists.
    EmailTaken,
    /// 400: the password does not meet the length rule.
    WeakPassword(&'static str),
    /// 401: a refresh token that is unknown, expired, or of a revoked family.
    InvalidRefreshToken(&'static str),
    /// 401: a refresh token that was already rotated, presented outside the grace window.
    RefreshTokenReused,
    /// 500: configuration invalid; the log names the variable.
    Misconfigured(ConfigError),
    /// 403: authenticated, but without a role the route or endpoint requires.
    InsufficientRole,
    /// 400: a proxied path that is malformed or could leave the route's upstream base.
    InvalidPath(&'static str),
    /// 502: the upstream could not be reached; carries the cause for the log.
    UpstreamUnavailable(String),
    /// 504: the upstream did not answer within the route's timeout (milliseconds).
    UpstreamTimeout(u32),
    /// 403: a cookie-authenticated state change without a valid CSRF token or allowed origin.
    CsrfValidationFailed(&'static str),
    /// 401: an API key that is unknown, revoked or expired.
    InvalidApiKey(&'static str),
    /// 401: a token whose `iss` is neither Gatehouse's nor a trusted issuer's (or a trusted
    /// issuer's sent where that issuer is not accepted); carries the cause for the log.
    UntrustedIssuer(String),
    /// 401: a trusted issuer's token whose key could not be had: the issuer's JWKS could not
    /// be fetched or read and no cached key fits; carries the cause for the log.
    IssuerUnavailable(String),
    /// 401: an admin console session cookie that is unknown, ended (signed out, revoked,
    /// expired, its API key revoked) or sent twice.
    InvalidSession(&'static str),
    /// 403: an API key or scoped token used outside its scope.
    ScopeViolation,
    /// 401: the password was right, the account has TOTP enrolled and no code was sent.
    MfaRequired,
    /// 401: a TOTP code that is wrong, outside its window or already used, or a recovery code
    /// that is unknown or used.
    InvalidOtp,
    /// 409: the TOTP operation needs an enrollment there is not (none enrolled, or none
    /// pending to confirm); carries the message.
    MfaNotEnrolled(&'static str),
    /// 403: TOTP is off: `MFA_ENCRYPTION_KEY` is not set.
    MfaUnavailable,
    /// A passkey ceremony refused (400, 401, 404 or 409 by reason, each its own code); the
    /// `&'static str` says more, for the log only.
    WebAuthn(WebAuthnRejection, &'static str),
    /// 429: too many attempts; carries the seconds until the limit releases (`Retry-After`).
    AuthRateLimited(u32),
    /// 503: a dependency (storage) is not ready.
    Unavailable(String),
    /// 500: anything unexpected; the cause goes to the log only.
    Internal(String),
}

impl Error {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_)
            | Self::InvalidJson
            | Self::WeakPassword(_)
            | Self::InvalidPath(_)
            | Self::QueryNotAllowed(_)
            | Self::BodyNotAllowed(_) => 400,
            Self::NoAuth
            | Self::InvalidToken(_)
            | Self::ExpiredToken
            | Self::InvalidCredentials
            | Self::InvalidRefreshToken(_)
            | Self::RefreshTokenReused
            | Self::InvalidApiKey(_)
            | Self::UntrustedIssuer(_)
            | Self::IssuerUnavailable(_)
            | Self::InvalidSession(_)
            | Self::MfaRequired
            | Self::InvalidOtp => 401,
            Self::RegistrationClosed
            | Self::InsufficientRole
            | Self::CsrfValidationFailed(_)
            | Self::ScopeViolation
            | Self::MfaUnavailable
            | Self::NotOwner => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::EmailTaken | Self::MfaNotEnrolled(_) => 409,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType => 415,
            Self::AuthRateLimited(_) => 429,
            Self::Misconfigured(_) | Self::Internal(_) => 500,
            Self::UpstreamUnavailable(_) => 502,
            Self::Unavailable(_) => 503,
            Self::UpstreamTimeout(_) => 504,
            Self::WebAuthn(why, _) => why.status(),
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidJson => "invalid_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::QueryNotAllowed(_) => "query_not_allowed",
            Self::BodyNotAllowed(_) => "body_not_allowed",
            Self::NotOwner => "not_owner",
            Self::NoAuth => "no_auth",
            Self::InvalidToken(_) => "invalid_token",
            Self::ExpiredToken => "expired_token",
            Self::InvalidCredentials => "invalid_credentials",
            Self::RegistrationClosed => "registration_closed",
            Self::EmailTaken => "email_taken",
            Self::WeakPassword(_) => "weak_password",
            Self::InvalidRefreshToken(_) => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::InsufficientRole => "insufficient_role",
            Self::InvalidPath(_) => "invalid_path",
            Self::UpstreamUnavailable(_) => "upstream_unavailable",
            Self::UpstreamTimeout(_) => "upstream_timeout",
            Self::CsrfValidationFailed(_) => "csrf_validation_failed",
            Self::InvalidApiKey(_) => "invalid_api_key",
            Self::UntrustedIssuer(_) => "untrusted_issuer",
            Self::IssuerUnavailable(_) => "issuer_unavailable",
            Self::InvalidSession(_) => "invalid_session",
            Self::ScopeViolation => "scope_violation",
            Self::MfaRequired => "mfa_required",
            Self::InvalidOtp => "invalid_otp",
            Self::MfaNotEnrolled(_) => "mfa_not_enrolled",
            Self::MfaUnavailable => "mfa_unavailable",
            Self::AuthRateLimited(_) => "auth_rate_limited",
            Self::Misconfigured(_) => "misconfigured",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
            Self::WebAuthn(why, _) => why.code(),
        }
    }

    /// The message shown to clients: safe, short, free of causes and secrets.
    pub fn public_message(&self) -> String {
        match self {
            Self::BadRequest(msg) => msg.clone(),
            Self::InvalidJson => "the request body is not valid JSON".into(),
            Self::UnsupportedMediaType => "send the request body as application/json".into(),
            Self::PayloadTooLarge(limit) => format!("the request body exceeds {limit} bytes"),
            Self::NotFound => "no such endpoint".into(),
            Self::MethodNotAllowed(allow) => format!("method not allowed here; use {allow}"),
            Self::QueryNotAllowed(why) | Self::BodyNotAllowed(why) => why.clone(),
            Self::NotOwner => "you can only change items you own".into(),
            Self::NoAuth => "authentication required".into(),
            Self::InvalidToken(_) => "the access token is not valid".into(),
            Self::ExpiredToken => "the access token has expired".into(),
            Self::InvalidCredentials => "email or password is wrong".into(),
            Self::RegistrationClosed => "registration is closed".into(),
            Self::EmailTaken => "an account with this email already exists".into(),
            Self::WeakPassword(why) => (*why).into(),
            Self::InvalidRefreshToken(_) => "the refresh token is not valid".into(),
            Self::RefreshTokenReused => {
                "the refresh token was already used; the session has been revoked".into()
            }
            Self::InsufficientRole => "your roles do not allow this".into(),
            Self::InvalidPath(_) => "the path is not allowed".into(),
            Self::UpstreamUnavailable(_) => "the upstream could not be reached".into(),
            Self::UpstreamTimeout(ms) => format!("the upstream did not answer within {ms} ms"),
            Self::CsrfValidationFailed(_) => "CSRF validation failed".into(),
            Self::InvalidApiKey(_) => "the API key is not valid".into(),
            Self::UntrustedIssuer(_) => "the token's issuer is not trusted here".into(),
            Self::IssuerUnavailable(_) => {
                "the token's issuer could not be reached for its keys; try again later".into()
            }
            Self::InvalidSession(_) => "the console session is not valid; sign in again".into(),
            Self::ScopeViolation => "the credential's scope does not allow this".into(),
            Self::MfaRequired => {
                "this account has a second factor: send the authenticator code as otp, or a passkey assertion as webauthn".into()
            }
            Self::InvalidOtp => "the code is wrong, expired or already used".into(),
            Self::MfaNotEnrolled(why) => (*why).into(),
            Self::MfaUnavailable => "two-factor authentication is not enabled here".into(),
            Self::AuthRateLimited(secs) => format!("too many attempts; retry in {secs} s"),
            Self::Misconfigured(_) => "gatehouse is misconfigured; see the worker logs".into(),
            Self::Unavailable(_) => "a dependency is unavailable".into(),
            Self::Internal(_) => "internal error".into(),
            Self::WebAuthn(why, _) => why.message().into(),
        }
    }

    /// The cause, for the logs only (`None` where the code says it all).
    pub fn log_detail(&self) -> Option<String> {
        match self {
            Self::InvalidToken(why) => Some(why.to_string()),
            Self::InvalidRefreshToken(why)
            | Self::InvalidPath(why)
            | Self::CsrfValidationFailed(why)
            | Self::InvalidApiKey(why)
            | Self::InvalidSession(why) => Some((*why).to_string()),
            Self::UpstreamUnavailable(cause)
            | Self::UntrustedIssuer(cause)
            | Self::IssuerUnavailable(cause) => Some(cause.clone()),
            Self::Misconfigured(err) => Some(err.to_string()),
            Self::Unavailable(cause) | Self::Internal(cause) => Some(cause.clone()),
            Self::WebAuthn(_, detail) => Some((*detail).to_string()),
            Self::BadRequest(_)
            | Self::InvalidJson
            | Self::UnsupportedMediaType
            | Self::PayloadTooLarge(_)
            | Self::NotFound
            | Self::MethodNotAllowed(_)
            | Self::QueryNotAllowed(_)
            | Self::BodyNotAllowed(_)
            | Self::NotOwner
            | Self::NoAuth
            | Self::ExpiredToken
            | Self::InvalidCredentials
            | Self::RegistrationClosed
            | Self::EmailTaken
            | Self::WeakPassword(_)
            | Self::RefreshTokenReused
            | Self::InsufficientRole
            | Self::UpstreamTimeout(_)
            | Self::ScopeViolation
            | Self::MfaRequired
            | Self::InvalidOtp
            | Self::MfaNotEnrolled(_)
            | Self::MfaUnavailable
            | Self::AuthRateLimited(_) => None,
        }
    }

    /// The header its answer carries besides the JSON body, as `(lower-case name, value)`:
    /// `Allow` on a 405, `WWW-Authenticate` on the 401s of a bearer credential, `Retry-After` on
    /// a 429. Exhaustive, so a new variant decides its header here.
    pub fn header(&self) -> Option<(&'static str, Cow<'static, str>)> {
        let bearer = |description: &str| {
            Some((
                "www-authenticate",
                Cow::Owned(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{description}\""
                )),
            ))
        };
        match self {
            Self::MethodNotAllowed(allow) => Some(("allow", allow.clone())),
            Self::NoAuth => Some(("www-authenticate", Cow::Borrowed("Bearer"))),
            Self::InvalidToken(_)
            | Self::ExpiredToken
            | Self::InvalidApiKey(_)
            | Self::UntrustedIssuer(_)
            | Self::IssuerUnavailable(_) => bearer(self.code()),
            Self::AuthRateLimited(secs) => Some(("retry-after", Cow::Owned(secs.to_string()))),
            Self::BadRequest(_)
            | Self::InvalidJson
            | Self::UnsupportedMediaType
            | Self::PayloadTooLarge(_)
            | Self::NotFound
            | Self::QueryNotAllowed(_)
            | Self::BodyNotAllowed(_)
            | Self::NotOwner
            | Self::InvalidCredentials
            | Self::RegistrationClosed
            | Self::EmailTaken
            | Self::WeakPassword(_)
            | Self::InvalidRefreshToken(_)
            | Self::RefreshTokenReused
            | Self::Misconfigured(_)
            | Self::InsufficientRole
            | Self::InvalidPath(_)
            | Self::UpstreamUnavailable(_)
            | Self::UpstreamTimeout(_)
            | Self::CsrfValidationFailed(_)
            | Self::InvalidSession(_)
            | Self::ScopeViolation
            | Self::MfaRequired
            | Self::InvalidOtp
            | Self::MfaNotEnrolled(_)
            | Self::MfaUnavailable
            | Self::Unavailable(_)
            | Self::Internal(_)
            | Self::WebAuthn(..) => None,
        }
    }

    /// Whether this error is worth an error-level log line (server-side faults).
    pub fn is_server_fault(&self) -> bool {
        self.status() >= 500
    }

    /// The JSON body: `{"error":{"code":…,"message":…}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code(), "message": self.public_message() } })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.status())?;
        if let Some(detail) = self.log_detail() {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Self::Misconfigured(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant; `every_variant_is_listed` keeps it complete.
    pub(crate) fn all_variants() -> Vec<Error> {
        [
            Error::BadRequest("email: expected a string".into()),
            Error::InvalidJson,
            Error::UnsupportedMediaType,
            Error::PayloadTooLarge(65536),
            Error::NotFound,
            Error::MethodNotAllowed("POST".into()),
            Error::QueryNotAllowed("query parameter \"pipeline\" is not allowed here".into()),
            Error::BodyNotAllowed("data._id: not a field this endpoint accepts".into()),
            Error::NotOwner,
            Error::NoAuth,
            Error::InvalidToken(TokenRejection::Signature),
            Error::ExpiredToken,
            Error::InvalidCredentials,
            Error::RegistrationClosed,
            Error::EmailTaken,
            Error::WeakPassword("too short"),
            Error::InvalidRefreshToken("unknown"),
            Error::RefreshTokenReused,
            Error::InsufficientRole,
            Error::InvalidPath("dot segment"),
            Error::UpstreamUnavailable("connection refused".into()),
            Error::UpstreamTimeout(10_000),
            Error::CsrfValidationFailed("origin not allowed"),
            Error::InvalidApiKey("revoked"),
            Error::InvalidSession("session ended"),
            Error::ScopeViolation,
            Error::MfaRequired,
            Error::InvalidOtp,
            Error::MfaNotEnrolled("no TOTP enrolled"),
            Error::MfaUnavailable,
            Error::AuthRateLimited(60),
            Error::Misconfigured(ConfigError::new("ACCESS_TOKEN_TTL", "not a number")),
            Error::Unavailable("d1 down".into()),
            Error::Internal("boom".into()),
            Error::UntrustedIssuer("iss not trusted".into()),
            Error::IssuerUnavailable("jwks unreachable".into()),
        ]
        .into_iter()
        .chain(
            WebAuthnRejection::ALL
                .into_iter()
                .map(|why| Error::WebAuthn(why, "test")),
        )
        .collect()
    }

    #[test]
    fn codes_are_unique_snake_case_and_statuses_are_errors() {
        let all = all_variants();
        let mut codes: Vec<_> = all.iter().map(Error::code).collect();
        for (err, code) in all.iter().zip(&codes) {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert!((400..600).contains(&err.status()), "{code}");
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes must be unique");
    }

    #[test]
    fn every_variant_is_listed() {
        // Adding a variant breaks this match until it is added to `all_variants` too.
        for err in all_variants() {
            match err {
                Error::BadRequest(_)
                | Error::InvalidJson
                | Error::UnsupportedMediaType
                | Error::PayloadTooLarge(_)
                | Error::NotFound
                | Error::MethodNotAllowed(_)
                | Error::QueryNotAllowed(_)
                | Error::BodyNotAllowed(_)
                | Error::NotOwner
                | Error::NoAuth
                | Error::InvalidToken(_)
                | Error::ExpiredToken
                | Error::InvalidCredentials
                | Error::RegistrationClosed
                | Error::EmailTaken
                | Error::WeakPassword(_)
                | Error::InvalidRefreshToken(_)
                | Error::RefreshTokenReused
                | Error::InsufficientRole
                | Error::InvalidPath(_)
                | Error::UpstreamUnavailable(_)
                | Error::UpstreamTimeout(_)
                | Error::CsrfValidationFailed(_)
                | Error::InvalidApiKey(_)
                | Error::InvalidSession(_)
                | Error::ScopeViolation
                | Error::MfaRequired
                | Error::InvalidOtp
                | Error::MfaNotEnrolled(_)
                | Error::MfaUnavailable
                | Error::AuthRateLimited(_)
                | Error::Misconfigured(_)
                | Error::Unavailable(_)
                | Error::Internal(_)
                | Error::UntrustedIssuer(_)
                | Error::IssuerUnavailable(_)
                | Error::WebAuthn(..) => {}
            }
        }
        assert_eq!(all_variants().len(), 36 + WebAuthnRejection::ALL.len());
    }

    #[test]
    fn causes_stay_out_of_the_wire() {
        let err = Error::Internal("D1_ERROR: no such table: users".into());
        assert_eq!(err.public_message(), "internal error");
        assert!(err.log_detail().unwrap().contains("no such table"));
        let body = err.to_json().to_string();
        assert!(!body.contains("users"));
        let err = Error::Misconfigured(ConfigError::new("JWT_SIGNING_KEY", "not base64url"));
        assert!(!err.to_json().to_string().contains("JWT_SIGNING_KEY"));
        assert!(err.to_string().contains("JWT_SIGNING_KEY"));
    }
}
