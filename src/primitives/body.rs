//! JSON request bodies: one parser and one mapping of every way a body can be wrong to an error.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::primitives::error::Error;
use crate::primitives::http::Request;

/// Reads a JSON object body of at most `max_bytes` into `T`. `allow_empty`: an empty body
/// counts as `{}`. Every way a body can be wrong maps here, once: too large (413), not JSON
/// (415), malformed JSON (400 `invalid_json`), the wrong shape: not an object, a member
/// missing or of the wrong type (400 `bad_request`, naming the member). Members `T` does not
/// name are ignored; of a repeated member the last counts, as in every JSON parser the
/// browser side uses.
pub fn json_body<T: DeserializeOwned>(
    req: &Request,
    max_bytes: usize,
    allow_empty: bool,
) -> Result<T, Error> {
    if req.body.len() > max_bytes {
        return Err(Error::PayloadTooLarge(max_bytes));
    }
    let content_type = req.media_type();
    if content_type
        .as_deref()
        .is_some_and(|media| media != "application/json")
    {
        return Err(Error::UnsupportedMediaType);
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        if allow_empty {
            return typed(Value::Object(Map::new()));
        }
        return Err(if content_type.is_none() {
            Error::UnsupportedMediaType
        } else {
            Error::InvalidJson
        });
    }
    if content_type.is_none() {
        return Err(Error::UnsupportedMediaType);
    }
    // The whole document is checked as JSON first (a lone surrogate or an out-of-range number
    // in a member `T` ignores is still `invalid_json`); its values then move into `T`.
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(object @ Value::Object(_)) => typed(object),
        Ok(_) => Err(Error::BadRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(_) => Err(Error::InvalidJson),
    }
}

/// Moves a parsed object into `T`; the one mapping of the wrong shape: 400 naming the member.
fn typed<T: DeserializeOwned>(object: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(object).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        Error::BadRequest(if path == "." {
            format!("the request body: {inner}")
        } else {
            format!("{path}: {inner}")
        })
    })
}

/// `POST /auth/register` and `POST /auth/login`.
#[derive(Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: String,
    /// Registration only.
    #[serde(default)]
    pub name: Option<String>,
    /// Deliver the refresh token in the body rather than the cookie.
    #[serde(default)]
    pub refresh_token_in_body: Option<bool>,
    /// Login only: the second factor (a TOTP code or a recovery code).
    #[serde(default)]
    pub otp: Option<String>,
    /// Login only: the second factor as a passkey assertion (never together with `otp`).
    #[serde(default)]
    pub webauthn: Option<Assertion>,
}

/// A passkey assertion: the `AuthenticationResponseJSON` that `PublicKeyCredential.toJSON()`
/// gives after `navigator.credentials.get()`; its members are base64url.
#[derive(Deserialize)]
pub struct Assertion {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub response: AssertionResponse,
}

/// `response` of an [`Assertion`].
#[derive(Deserialize)]
pub struct AssertionResponse {
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    #[serde(rename = "authenticatorData")]
    pub authenticator_data: String,
    pub signature: String,
    #[serde(rename = "userHandle", default)]
    pub user_handle: Option<String>,
}

/// `POST /auth/mfa/totp/start`, `DELETE /auth/mfa/totp`, `POST /auth/mfa/recovery-codes`: the
/// caller shown again, by the password or by an assertion of one of the caller's passkeys
/// (exactly one of the two).
#[derive(Deserialize)]
pub struct PasswordAgain {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub webauthn: Option<Assertion>,
}

/// How the caller shows itself again before a sensitive change: exactly one of the two.
pub enum Reauthentication {
    /// The current password.
    Password(String),
    /// An assertion of one of the caller's passkeys.
    Passkey(Assertion),
}

impl PasswordAgain {
    /// The one way given; 400 `bad_request` for both or neither (so a wrong body is refused as
    /// such before anything else is looked at).
    pub fn into_reauthentication(self) -> Result<Reauthentication, Error> {
        match (self.password, self.webauthn) {
            (Some(pw), None) => Ok(Reauthentication::Password(pw)),
            (None, Some(assertion)) => Ok(Reauthentication::Passkey(assertion)),
            (Some(_), Some(_)) => Err(Error::BadRequest(
                "password, webauthn: send one of the two, not both".into(),
            )),
            (None, None) => Err(Error::BadRequest(
                "password: required (or webauthn, a passkey assertion)".into(),
            )),
        }
    }
}

/// `POST /auth/mfa/totp/confirm`.
#[derive(Deserialize)]
pub struct OtpBody {
    pub otp: String,
}

/// `POST /auth/refresh` and `POST /auth/logout` (the token may come from the cookie instead).
#[derive(Deserialize, Default)]
pub struct RefreshBody {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `POST /auth/password`.
#[derive(Deserialize)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /admin/users/{id}/password`.
#[derive(Deserialize)]
pub struct NewPassword {
    pub new_password: String,
}

/// `POST /admin/users`.
#[derive(Deserialize)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Default: the configured roles of self-registered users.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

/// `PUT /admin/users/{id}/roles`.
#[derive(Deserialize)]
pub struct Roles {
    pub roles: Vec<String>,
}

/// `POST /admin/api-keys`.
#[derive(Deserialize)]
pub struct NewKey {
    pub label: String,
    pub role: String,
    pub scopes: Vec<String>,
    /// Default: the minting admin.
    #[serde(default)]
    pub owner_user_id: Option<String>,
    /// Unix ms; none: never expires.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// `POST /admin/session`: an admin's email and password, or an API key.
#[derive(Deserialize)]
pub struct ConsoleSignIn {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    /// With email and password, when the admin has TOTP enrolled.
    #[serde(default)]
    pub otp: Option<String>,
}
