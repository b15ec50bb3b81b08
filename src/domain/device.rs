//! Device cookies: a browser's proof that it logged in to an account before.
//!
//! A successful login or registration in cookie mode sets `gatehouse_device`, a signed value
//! bound to the account and an expiry; nothing is stored. A later login to the same account that
//! shows a valid one skips the account-wide rate limit (`RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL`),
//! so an attacker spreading guesses over many networks cannot lock the owner out of the browser
//! they use. The per-account-and-network limit still applies to it. The cookie grants nothing
//! else: it is not a credential, and a stolen one only spares its thief that one limit.
//!
//! Value: `ghd_<expiry, Unix seconds>.<base64url HMAC-SHA256>` over the expiry and a keyed hash
//! of the normalised email, under a key derived from the signing key (rotating the signing key
//! ends every device cookie).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::primitives::encoding::b64url;

/// Name of the device cookie.
pub const DEVICE_COOKIE: &str = "gatehouse_device";
/// How long a device cookie lives: 90 days.
pub const DEVICE_TTL_SECS: i64 = 90 * 86_400;
/// Most `gatehouse_device` values of one request that are checked.
const MAX_CHECKED: usize = 4;

/// The key device cookies are signed with. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey([u8; 32]);

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    /// Derives the key from the signing key's seed (HMAC-SHA256 with a fixed label).
    pub fn derive(seed: &[u8; 32]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(seed).expect("HMAC takes any key length");
        mac.update(b"gatehouse device key v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, account: &str, expires_at: i64) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"device:");
        mac.update(account.as_bytes());
        mac.update(b":");
        mac.update(expires_at.to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The cookie value for `account` (the keyed hash of its normalised email), valid until
    /// `now_ms` + [`DEVICE_TTL_SECS`].
    pub fn issue(&self, account: &str, now_ms: i64) -> String {
        let expires_at = now_ms / 1000 + DEVICE_TTL_SECS;
        format!(
            "ghd_{expires_at}.{}",
            b64url(&self.mac(account, expires_at))
        )
    }

    /// Whether `value` is an unexpired device cookie of `account` (MAC compared in constant
    /// time).
    pub fn verify(&self, account: &str, value: &str, now_ms: i64) -> bool {
        let Some((expires, mac)) = value
            .strip_prefix("ghd_")
            .and_then(|rest| rest.split_once('.'))
        else {
            return false;
        };
        let Ok(expires_at) = expires.parse::<i64>() else {
            return false;
        };
        if expires.starts_with(['+', '-', '0']) || expires_at <= now_ms / 1000 {
            return false;
        }
        let expected = b64url(&self.mac(account, expires_at));
        expected.len() == mac.len() && bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
    }

    /// Whether any of the `values` (the request's `gatehouse_device` cookies; the first few
    /// only) is a valid device cookie of `account`.
    pub fn any_valid<'a>(
        &self,
        account: &str,
        values: impl IntoIterator<Item = &'a str>,
        now_ms: i64,
    ) -> bool {
        values
            .into_iter()
            .take(MAX_CHECKED)
            .any(|v| self.verify(account, v, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_cookie_is_bound_to_its_account_key_and_lifetime() {
        let key = DeviceKey::derive(&[1; 32]);
        let value = key.issue("em_ada", NOW);
        assert!(value.starts_with("ghd_"), "{value}");
        assert!(key.verify("em_ada", &value, NOW));
        assert!(key.verify("em_ada", &value, NOW + (DEVICE_TTL_SECS - 1) * 1000));
        assert!(!key.verify("em_ada", &value, NOW + DEVICE_TTL_SECS * 1000));
        assert!(!key.verify("em_bob", &value, NOW));
        assert!(!DeviceKey::derive(&[2; 32]).verify("em_ada", &value, NOW));
        assert_eq!(format!("{key:?}"), "DeviceKey(..)");
    }

    #[test]
    fn tampered_and_malformed_values_are_refused() {
        let key = DeviceKey::derive(&[1; 32]);
        let value = key.issue("em_ada", NOW);
        let (exp, mac) = value["ghd_".len()..].split_once('.').unwrap();
        let later = exp.parse::<i64>().unwrap() + 86_400;
        for bad in [
            String::new(),
            "ghd_".into(),
            format!("ghd_{exp}"),
            format!("ghd_{exp}."),
            format!("ghd_{later}.{mac}"),
            format!("ghd_+{exp}.{mac}"),
            format!("ghd_0{exp}.{mac}"),
            format!("ghd_{exp}.{}", &mac[1..]),
            format!("ghd_{exp}.{mac}A"),
            format!("ghx_{exp}.{mac}"),
            value.to_uppercase(),
        ] {
            assert!(!key.verify("em_ada", &bad, NOW), "{bad}");
        }
        assert!(key.any_valid("em_ada", ["junk", value.as_str()], NOW));
        assert!(!key.any_valid("em_ada", ["a", "b", "c", "d", value.as_str()], NOW));
    }
}
