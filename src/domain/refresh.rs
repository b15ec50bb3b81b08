//! Refresh tokens and the family state machine.
//!
//! A refresh token is `ghr_` + 43 base64url characters (256 random bits). Storage holds only its
//! SHA-256. Each use rotates it: the store's atomic [`Store::rotate_refresh`] lets exactly one
//! caller replace it by that caller's successor; [`decide`] then reads the resulting state:
//!
//! | state after the attempt | answer |
//! |---|---|
//! | family revoked, expired or idle too long | `invalid_refresh_token` |
//! | rotated by this caller | this caller's successor |
//! | rotated by another caller within the grace window | **the same** successor the winner got |
//! | rotated earlier than the grace window | `refresh_token_reused`; the family is revoked |
//!
//! To hand a late caller the winner's successor without storing any token in plaintext, the
//! winner stores its successor *sealed* under the presented token: the successor's 32 random
//! bytes XOR HMAC-SHA256(presented token, label). Only someone who holds the presented token can
//! unseal it, and a database dump alone reveals nothing usable. The unsealed value is checked
//! against the stored successor hash before it is handed out. Each rotation drops the seals of
//! the family's older tokens, so an old token plus a database copy cannot unseal a chain up to
//! the live token: at most the newest rotation's seal exists, and using what it reveals makes
//! the rightful holder's next refresh a detected reuse.
//!
//! [`Store::rotate_refresh`]: crate::domain::store::Store::rotate_refresh

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::store::{TokenHash, TokenState};
use crate::primitives::encoding::{b64url, b64url_decode, hex, hex_decode, sha256};
use crate::primitives::error::Error;
use crate::primitives::platform::{random_array, Rng};

const PREFIX: &str = "ghr_";
const SEAL_LABEL: &[u8] = b"gatehouse refresh successor seal v1";

/// A new random refresh token.
pub fn generate(rng: &dyn Rng) -> String {
    let bytes: [u8; 32] = random_array(rng);
    format!("{PREFIX}{}", b64url(&bytes))
}

/// The 32 random bytes of a well-formed token.
fn token_bytes(token: &str) -> Option<[u8; 32]> {
    b64url_decode(token.strip_prefix(PREFIX)?)?.try_into().ok()
}

/// Whether `token` has the shape of a Gatehouse refresh token.
pub fn well_formed(token: &str) -> bool {
    token_bytes(token).is_some()
}

/// The stored form of a token: hex SHA-256 of its full text.
pub fn hash(token: &str) -> TokenHash {
    TokenHash::from_stored(hex(&sha256(token.as_bytes())))
}

fn pad(predecessor: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(predecessor.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(SEAL_LABEL);
    mac.finalize().into_bytes().into()
}

/// Seals `successor` under the token text `predecessor`; the result is hex.
pub fn seal(predecessor: &str, successor: &str) -> String {
    let bytes = token_bytes(successor).expect("successor made by generate()");
    let pad = pad(predecessor);
    let sealed: Vec<u8> = bytes.iter().zip(pad).map(|(b, p)| b ^ p).collect();
    hex(&sealed)
}

/// Unseals a successor and checks it against its stored hash.
pub fn unseal(predecessor: &str, sealed: &str, successor_hash: &TokenHash) -> Option<String> {
    let sealed: [u8; 32] = hex_decode(sealed)?.try_into().ok()?;
    let pad = pad(predecessor);
    let bytes: Vec<u8> = sealed.iter().zip(pad).map(|(b, p)| b ^ p).collect();
    let token = format!("{PREFIX}{}", b64url(&bytes));
    (hash(&token) == *successor_hash).then_some(token)
}

/// Why a reuse revoked a family (recorded in the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseCause {
    /// Generation of the replayed token.
    pub generation: i64,
    /// How long ago it was rotated, in ms.
    pub rotated_ms_ago: i64,
}

/// What a refresh attempt comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Hand out this refresh token (ours, or the winner's within the grace window).
    Issue {
        /// The refresh token for the client.
        token: String,
        /// True when another caller won and this is a grace-window replay.
        replay: bool,
    },
    /// Revoke the family: a rotated token came back after the grace window.
    Reuse(ReuseCause),
    /// Refuse without touching anything.
    Reject(Error),
}

/// The windows a decision is made with, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// A family last used at or before this instant has idled out.
    pub idle_cutoff: i64,
    /// How long after a rotation a replay still gets the same successor.
    pub grace_ms: i64,
}

/// Reads the state after a rotation attempt. `presented` is the client's token, `ours` the
/// successor this caller tried to install.
pub fn decide(
    state: &TokenState,
    presented: &str,
    ours: &str,
    now: i64,
    windows: Windows,
) -> Decision {
    decide_hashed(state, presented, ours, &hash(ours), now, windows)
}

/// [`decide`] with the hash of `ours` already made (the rotation's `successor_hash`), so the
/// successor is hashed once.
pub fn decide_hashed(
    state: &TokenState,
    presented: &str,
    ours: &str,
    ours_hash: &TokenHash,
    now: i64,
    windows: Windows,
) -> Decision {
    let family = &state.family;
    if family.revoked_at.is_some() {
        return Decision::Reject(Error::InvalidRefreshToken("family revoked"));
    }
    if family.expires_at <= now {
        return Decision::Reject(Error::InvalidRefreshToken("family expired"));
    }
    if state.successor_hash.as_ref() == Some(ours_hash) {
        return Decision::Issue {
            token: ours.to_string(),
            replay: false,
        };
    }
    // Not ours: the store refused (the family idled out) or another caller won. A family that
    // has idled out is dead whatever token comes back to it, and that is not recorded as reuse.
    let Some(rotated_at) = state
        .rotated_at
        .filter(|_| family.last_used_at > windows.idle_cutoff)
    else {
        return Decision::Reject(Error::InvalidRefreshToken("family idle too long"));
    };
    let grace_ms = windows.grace_ms;
    let age = now - rotated_at;
    if age <= grace_ms {
        let unsealed = state
            .successor_sealed
            .as_deref()
            .zip(state.successor_hash.as_ref())
            .and_then(|(sealed, h)| unseal(presented, sealed, h));
        return match unsealed {
            Some(token) => Decision::Issue {
                token,
                replay: true,
            },
            // The seal is gone once a later rotation happened: this token is two rotations
            // old. Refused, but within the grace window, so not treated as reuse.
            None if state.successor_sealed.is_none() => {
                Decision::Reject(Error::InvalidRefreshToken("superseded twice"))
            }
            None => Decision::Reject(Error::Internal(
                "rotated token without a usable sealed successor".into(),
            )),
        };
    }
    Decision::Reuse(ReuseCause {
        generation: state.generation,
        rotated_ms_ago: age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::store::Family;
    use crate::primitives::platform::SystemRng;

    const NOW: i64 = 1_800_000_000_000;
    const W: Windows = Windows {
        idle_cutoff: NOW - 7 * 86_400_000,
        grace_ms: 10_000,
    };

    fn family() -> Family {
        Family {
            id: "fam_1".into(),
            user_id: "usr_1".into(),
            created_at: NOW - 1000,
            last_used_at: NOW - 1000,
            expires_at: NOW + 86_400_000,
            revoked_at: None,
            revoke_reason: None,
            user_agent: None,
            console: None,
        }
    }

    fn rotated(presented: &str, winner: &str, at: i64) -> TokenState {
        TokenState {
            family: family(),
            generation: 3,
            rotated_at: Some(at),
            successor_hash: Some(hash(winner)),
            successor_sealed: Some(seal(presented, winner)),
        }
    }

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = generate(&SystemRng);
        let b = generate(&SystemRng);
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert!(well_formed(&a));
        assert!(!well_formed("ghr_short"));
        assert!(!well_formed(&a[4..]));
        assert_eq!(hash(&a).as_str().len(), 64);
    }

    #[test]
    fn seal_round_trip_needs_the_predecessor() {
        let pred = generate(&SystemRng);
        let succ = generate(&SystemRng);
        let sealed = seal(&pred, &succ);
        assert!(!sealed.contains(&succ[4..]));
        assert_eq!(unseal(&pred, &sealed, &hash(&succ)), Some(succ.clone()));
        let other = generate(&SystemRng);
        assert_eq!(unseal(&other, &sealed, &hash(&succ)), None);
        assert_eq!(unseal(&pred, "zz", &hash(&succ)), None);
    }

    #[test]
    fn the_winner_gets_its_own_successor() {
        let (p, ours) = (generate(&SystemRng), generate(&SystemRng));
        let state = rotated(&p, &ours, NOW);
        assert_eq!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Issue {
                token: ours,
                replay: false
            }
        );
    }

    #[test]
    fn a_loser_within_grace_gets_the_winners_successor() {
        let (p, winner, ours) = (
            generate(&SystemRng),
            generate(&SystemRng),
            generate(&SystemRng),
        );
        let state = rotated(&p, &winner, NOW - 10_000);
        assert_eq!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Issue {
                token: winner,
                replay: true
            }
        );
    }

    #[test]
    fn after_grace_it_is_reuse() {
        let (p, winner, ours) = (
            generate(&SystemRng),
            generate(&SystemRng),
            generate(&SystemRng),
        );
        let state = rotated(&p, &winner, NOW - 10_001);
        assert_eq!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reuse(ReuseCause {
                generation: 3,
                rotated_ms_ago: 10_001
            })
        );
    }

    #[test]
    fn revoked_expired_and_idle_families_are_rejected() {
        let (p, winner, ours) = (
            generate(&SystemRng),
            generate(&SystemRng),
            generate(&SystemRng),
        );
        let mut state = rotated(&p, &winner, NOW);
        state.family.revoked_at = Some(NOW);
        assert!(matches!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reject(Error::InvalidRefreshToken(_))
        ));
        let mut state = rotated(&p, &winner, NOW);
        state.family.expires_at = NOW;
        assert!(matches!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reject(Error::InvalidRefreshToken(_))
        ));
        let mut state = rotated(&p, &winner, NOW);
        state.rotated_at = None;
        state.successor_hash = None;
        assert!(matches!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reject(Error::InvalidRefreshToken(_))
        ));
    }

    #[test]
    fn a_forged_seal_is_never_handed_out() {
        let (p, winner, ours) = (
            generate(&SystemRng),
            generate(&SystemRng),
            generate(&SystemRng),
        );
        let mut state = rotated(&p, &winner, NOW);
        state.successor_sealed = Some(seal(&p, &generate(&SystemRng)));
        assert!(matches!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reject(Error::Internal(_))
        ));
    }

    #[test]
    fn a_rotated_token_of_an_idle_family_is_not_reuse() {
        let (p, winner, ours) = (
            generate(&SystemRng),
            generate(&SystemRng),
            generate(&SystemRng),
        );
        let long_ago = NOW - 8 * 86_400_000;
        let mut state = rotated(&p, &winner, long_ago);
        state.family.last_used_at = long_ago;
        assert_eq!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reject(Error::InvalidRefreshToken("family idle too long"))
        );
        // The same replay in a family still in use is reuse.
        state.family.last_used_at = NOW - 1000;
        assert!(matches!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reuse(_)
        ));
    }

    #[test]
    fn a_token_two_rotations_old_within_grace_is_refused_not_reuse() {
        let (p, winner, ours) = (
            generate(&SystemRng),
            generate(&SystemRng),
            generate(&SystemRng),
        );
        let mut state = rotated(&p, &winner, NOW - 1000);
        state.successor_sealed = None; // dropped by the next rotation
        assert_eq!(
            decide(&state, &p, &ours, NOW, W),
            Decision::Reject(Error::InvalidRefreshToken("superseded twice"))
        );
    }
}
