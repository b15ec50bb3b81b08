//! How a client or an account is named where it is only counted or correlated (rate-limit
//! counters, the audit log of a failed login): never as the text it came as. An email that is
//! not an account's may be a password typed into the wrong field, so it is kept only as a keyed
//! hash; an IPv6 client is counted by its /64, the block one subscriber usually holds, so that a
//! network cannot open 2^64 fresh counters.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::primitives::encoding::b64url;

/// The key of those hashes, derived from the signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct SubjectKey([u8; 32]);

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(…)")
    }
}

impl SubjectKey {
    /// Derives the key from the signing key's seed.
    pub fn derive(seed: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(seed).expect("HMAC takes any key length");
        mac.update(b"gatehouse subject key v1");
        Self(mac.finalize().into_bytes().into())
    }

    /// The stored name of an email (normalized first): `em_` and 128 bits of HMAC-SHA256, the
    /// same for the same address, useless to anyone without the key.
    pub fn email(&self, email: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"email:");
        mac.update(email.as_bytes());
        format!("em_{}", b64url(&mac.finalize().into_bytes()[..16]))
    }
}

/// The network a client address is counted by: an IPv4 address itself (also when written as
/// IPv4-mapped IPv6), an IPv6 address's /64; anything unparseable as it is.
pub fn client_network(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Err(_) => ip.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64_and_ipv4_by_address() {
        assert_eq!(client_network("192.0.2.7"), "192.0.2.7");
        assert_eq!(client_network("::ffff:192.0.2.7"), "192.0.2.7");
        let a = client_network("2001:db8:1:2:aaaa::1");
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(client_network("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"), a);
        assert_ne!(client_network("2001:db8:1:3::1"), a);
        assert_eq!(client_network("not an ip"), "not an ip");
    }

    #[test]
    fn emails_are_stored_as_keyed_hashes() {
        let key = SubjectKey::derive(&[7; 32]);
        let other = SubjectKey::derive(&[8; 32]);
        let h = key.email("tr0ub4dor@3xyz!");
        assert!(h.starts_with("em_") && h.len() == 3 + 22, "{h}");
        assert!(!h.contains("tr0ub4dor"));
        assert_eq!(h, key.email("tr0ub4dor@3xyz!"));
        assert_ne!(h, key.email("tr0ub4dor@3xyz?"));
        assert_ne!(h, other.email("tr0ub4dor@3xyz!"));
        assert_eq!(format!("{key:?}"), "SubjectKey(…)");
    }
}
