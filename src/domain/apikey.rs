//! API keys: `gk_` + 52 base32 characters (256 random bits), stored only as
//! HMAC-SHA256(`API_KEY_PEPPER`, key), so a leaked D1 dump cannot be used to test guesses.
//!
//! A key carries one role (held by its minter and its owner), a scope (the proxy routes it may
//! use) and an optional expiry. Authentication reads the key's row on every request, so a
//! revocation takes effect on the next request; `last_used_at` is written at most once a minute.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::domain::proxy::routes::valid_route_name;
use crate::domain::store::{ApiKey, KeyHash};
use crate::primitives::encoding::{base32_lower, hex};
use crate::primitives::error::Error;
use crate::primitives::platform::{random_array, Rng};
use crate::primitives::secrets::Pepper;

/// Every key starts with this.
pub const PREFIX: &str = "gk_";
/// Base32 characters after the prefix (32 random bytes).
pub const BODY_LEN: usize = 52;
/// `last_used_at` is written at most this often per key.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// A new random key.
pub fn generate(rng: &dyn Rng) -> String {
    let bytes: [u8; 32] = random_array(rng);
    format!("{PREFIX}{}", base32_lower(&bytes))
}

/// Whether `key` has the shape of a key (cheap check before any storage read).
pub fn well_formed(key: &str) -> bool {
    key.len() == PREFIX.len() + BODY_LEN
        && key.starts_with(PREFIX)
        && key[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The stored form: hex HMAC-SHA256 of the whole key under the pepper.
pub fn hash(pepper: &Pepper, key: &str) -> KeyHash {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(pepper.bytes()).expect("HMAC accepts any key length");
    mac.update(key.as_bytes());
    KeyHash::from_stored(hex(&mac.finalize().into_bytes()))
}

/// A key's public view (never its hash).
pub fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "label": k.label,
        "owner_user_id": k.owner_user_id,
        "created_by": k.created_by,
        "role": k.role,
        "scopes": k.scopes,
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "last_used_at": k.last_used_at,
        "revoked_at": k.revoked_at,
    })
}

/// The longest lifetime of a key: ten years.
pub const MAX_LIFETIME_MS: i64 = 3650 * 86_400_000;

/// Most scopes one key holds.
pub const MAX_SCOPES: usize = 32;

/// A key's label: trimmed, 1–100 characters, no control characters.
pub fn label(raw: &str) -> Result<String, Error> {
    let label = raw.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "label: 1-100 characters, no control characters".into(),
        ));
    }
    Ok(label.to_string())
}

/// A key's scopes: the names of the proxy routes it may use (a scope that could never name a
/// route is refused), each once, in the order given.
pub fn scopes<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if out.len() == MAX_SCOPES {
            return Err(Error::BadRequest(format!("scopes: at most {MAX_SCOPES}")));
        }
        if !valid_route_name(name) {
            return Err(Error::BadRequest(format!(
                "scopes: {name:?} is not a route name (1-64 of a-z, 0-9, _ and -)"
            )));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// A key's expiry: Unix ms after `now`, at most [`MAX_LIFETIME_MS`] ahead, or none.
pub fn expiry(at: Option<i64>, now: i64) -> Result<Option<i64>, Error> {
    match at {
        None => Ok(None),
        Some(t) if t > now && t <= now + MAX_LIFETIME_MS => Ok(Some(t)),
        Some(_) => Err(Error::BadRequest(
            "expires_at: Unix milliseconds in the future, at most 10 years ahead, or null".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::platform::SystemRng;

    #[test]
    fn keys_have_the_documented_shape_and_differ() {
        let a = generate(&SystemRng);
        let b = generate(&SystemRng);
        assert_eq!(a.len(), 55);
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert!(!well_formed("gk_short"));
        assert!(!well_formed(&a.to_uppercase()));
        assert!(!well_formed(&format!("gk_{}", "1".repeat(52))));
    }

    #[test]
    fn the_hash_depends_on_the_pepper_and_hides_the_key() {
        let config =
            crate::domain::config::Config::for_tests(&[("API_KEY_PEPPER", &"p".repeat(32))]);
        let other =
            crate::domain::config::Config::for_tests(&[("API_KEY_PEPPER", &"q".repeat(32))]);
        let key = generate(&SystemRng);
        let h = hash(config.accounts.api_key_pepper.as_ref().unwrap(), &key);
        assert_eq!(h.as_str().len(), 64);
        assert!(!h.as_str().contains(&key[3..]));
        assert_ne!(
            h,
            hash(other.accounts.api_key_pepper.as_ref().unwrap(), &key)
        );
        assert!(!format!("{config:?}").contains(&"p".repeat(32)));
    }
}
