//! API keys: `gk_` + 52 base32 characters (256 random bits), stored only as
//! HMAC-SHA256(`API_KEY_PEPPER`, key), so a leaked D1 dump cannot be used to test guesses.
//!
//! A key carries one role (held by its minter and its owner), a scope (the proxy routes it may
//! use) and an optional expiry. Authentication reads the key's row on every request, so a
//! revocation takes effect on the next request; `last_used_at` is written at most once a minute.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::domain::store::ApiKey;
use crate::primitives::encoding::{base32_lower, hex};
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
pub fn hash(pepper: &Pepper, key: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(pepper.bytes()).expect("HMAC accepts any key length");
    mac.update(key.as_bytes());
    hex(&mac.finalize().into_bytes())
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

/// Whether `name` is a valid proxy route name for a scope: 1–64 of `a-z 0-9 _ - .`.
pub fn valid_scope(name: &str) -> bool {
    crate::domain::vars::valid_role(name)
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
        let h = hash(config.api_key_pepper.as_ref().unwrap(), &key);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&key[3..]));
        assert_ne!(h, hash(other.api_key_pepper.as_ref().unwrap(), &key));
        assert!(!format!("{config:?}").contains(&"p".repeat(32)));
    }
}
