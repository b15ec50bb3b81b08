//! Password hashing: PBKDF2-HMAC-SHA256 in PHC string format.
//!
//! `$pbkdf2-sha256$i=100000,l=32$<salt>$<hash>` with standard base64 without padding. The
//! parameters travel with the hash, so a hash made with another iteration count than configured is
//! recognised at login and upgraded. The derivation itself is a [`Pbkdf2`] passed in: Workers'
//! WebCrypto in the worker (native speed), RustCrypto natively; both give the same bytes.

use subtle::ConstantTimeEq;

use crate::domain::config::MAX_PBKDF2_ITERATIONS;
use crate::domain::store::PasswordPhc;
use crate::primitives::encoding::{b64_phc, b64_phc_decode};
use crate::primitives::error::Error;
use crate::primitives::platform::{random_array, Pbkdf2, Rng};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;

const PHC_ID: &str = "pbkdf2-sha256";
const SALT_BYTES: usize = 16;

/// A parsed PHC hash string.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    /// PBKDF2 iterations.
    pub iterations: u32,
    salt: Vec<u8>,
    hash: [u8; 32],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// Parses `$pbkdf2-sha256$i=N,l=32$salt$hash`.
    pub fn parse(phc: &str) -> Option<Self> {
        let mut parts = phc.split('$');
        if !parts.next()?.is_empty() || parts.next()? != PHC_ID {
            return None;
        }
        let mut iterations = None;
        let mut length = None;
        for param in parts.next()?.split(',') {
            let (key, value) = param.split_once('=')?;
            match key {
                "i" => iterations = Some(value.parse::<u32>().ok()?),
                "l" => length = Some(value.parse::<usize>().ok()?),
                _ => return None,
            }
        }
        let salt = b64_phc_decode(parts.next()?)?;
        let hash: [u8; 32] = b64_phc_decode(parts.next()?)?.try_into().ok()?;
        if parts.next().is_some() || length.unwrap_or(32) != 32 || salt.len() < 8 {
            return None;
        }
        let iterations = iterations.filter(|i| (1..=MAX_PBKDF2_ITERATIONS).contains(i))?;
        Some(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// The PHC string.
    pub fn to_phc(&self) -> String {
        format!(
            "${PHC_ID}$i={},l=32${}${}",
            self.iterations,
            b64_phc(&self.salt),
            b64_phc(&self.hash)
        )
    }
}

/// Checks the length rule (8 to 256 characters, no composition rules).
pub fn check_policy(password: &str) -> Result<(), Error> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::WeakPassword(
            "password must be at least 8 characters",
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(Error::WeakPassword(
            "password must be at most 256 characters",
        ));
    }
    Ok(())
}

/// Hashes `password` with a fresh random salt.
pub async fn hash(
    hasher: &impl Pbkdf2,
    rng: &dyn Rng,
    password: &str,
    iterations: u32,
) -> Result<PasswordPhc, Error> {
    let salt: [u8; SALT_BYTES] = random_array(rng);
    let hash = hasher
        .derive(password.as_bytes(), &salt, iterations)
        .await?;
    Ok(PasswordPhc::from_stored(
        PasswordHash {
            iterations,
            salt: salt.to_vec(),
            hash,
        }
        .to_phc(),
    ))
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password (or an unusable stored hash).
    Mismatch,
    /// Right password, hash parameters current.
    Match,
    /// Right password, but the hash should be redone with the configured parameters.
    MatchNeedsRehash,
}

/// Checks `password` against the PHC string `stored`; `iterations` is the configured count.
pub async fn verify(
    hasher: &impl Pbkdf2,
    stored: &PasswordPhc,
    password: &str,
    iterations: u32,
) -> Result<Verdict, Error> {
    let Some(parsed) = PasswordHash::parse(stored.as_str()) else {
        // An unusable stored hash must cost the same as a real check and must not log anyone in.
        dummy_verify(hasher, password, iterations).await?;
        return Ok(Verdict::Mismatch);
    };
    let computed = hasher
        .derive(password.as_bytes(), &parsed.salt, parsed.iterations)
        .await?;
    if !bool::from(computed.ct_eq(&parsed.hash)) {
        return Ok(Verdict::Mismatch);
    }
    // Any other count is redone, both ways: the dummy check for unknown emails costs the
    // configured count, so every stored hash converging on it keeps login timing uniform.
    Ok(if parsed.iterations != iterations {
        Verdict::MatchNeedsRehash
    } else {
        Verdict::Match
    })
}

/// The same work as a real verification, for unknown emails: the answer time does not tell
/// whether an account exists.
pub async fn dummy_verify(
    hasher: &impl Pbkdf2,
    password: &str,
    iterations: u32,
) -> Result<(), Error> {
    const DUMMY_SALT: [u8; SALT_BYTES] = *b"gatehouse-dummy!";
    hasher
        .derive(password.as_bytes(), &DUMMY_SALT, iterations)
        .await
        .map(drop)
}

/// Known-answer vectors for PBKDF2-HMAC-SHA256 (RFC 7914 section 11, first 32 bytes of each
/// output), used natively and by the worker's self-test to compare WebCrypto with RustCrypto.
pub const KNOWN_ANSWERS: &[(&str, &str, u32, &str)] = &[
    (
        "passwd",
        "salt",
        1,
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
    ),
    (
        "Password",
        "NaCl",
        80_000,
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56",
    ),
];

/// Compares `hasher` with the RFC 7914 known answers and with the Rust implementation on extra
/// inputs (including the 100,000-iteration production setting). Returns `(all ok, details)`.
#[cfg(any(test, feature = "selftest"))]
pub async fn pbkdf2_cross_check(hasher: &impl Pbkdf2) -> (bool, Vec<serde_json::Value>) {
    use crate::primitives::encoding::hex;
    use crate::primitives::platform::RustPbkdf2;
    use serde_json::json;

    let mut cases = Vec::new();
    let mut all_ok = true;
    for (password, salt, iterations, want) in KNOWN_ANSWERS {
        let got = hasher
            .derive(password.as_bytes(), salt.as_bytes(), *iterations)
            .await;
        let got = got.map(|g| hex(&g)).unwrap_or_else(|e| e.to_string());
        let ok = got == *want;
        all_ok &= ok;
        cases.push(json!({ "case": format!("rfc7914 {password}/{salt}/{iterations}"), "ok": ok }));
    }
    let extra: [(&str, &[u8], u32); 3] = [
        ("correct horse battery staple", b"0123456789abcdef", 100_000),
        ("pässwörd ✓ unicode", b"gatehouse-salt-16", 1_000),
        ("", b"empty-password!!", 10),
    ];
    for (password, salt, iterations) in extra {
        let a = hasher.derive(password.as_bytes(), salt, iterations).await;
        let b = RustPbkdf2
            .derive(password.as_bytes(), salt, iterations)
            .await;
        let ok = matches!((&a, &b), (Ok(x), Ok(y)) if x == y);
        all_ok &= ok;
        cases.push(json!({ "case": format!("matches rust, {iterations} iterations"), "ok": ok }));
    }
    (all_ok, cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::encoding::hex;
    use crate::primitives::platform::{RustPbkdf2, SystemRng};
    use futures::executor::block_on;

    #[test]
    fn rfc7914_known_answers() {
        for (password, salt, iterations, want) in KNOWN_ANSWERS {
            let got =
                block_on(RustPbkdf2.derive(password.as_bytes(), salt.as_bytes(), *iterations))
                    .unwrap();
            assert_eq!(hex(&got), *want, "{password}/{salt}/{iterations}");
        }
    }

    #[test]
    fn known_phc_string_verifies() {
        // Computed independently (Python hashlib.pbkdf2_hmac), salt "saltsaltsaltsalt".
        let phc = "$pbkdf2-sha256$i=10000,l=32$c2FsdHNhbHRzYWx0c2FsdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs";
        let parsed = PasswordHash::parse(phc).unwrap();
        assert_eq!(parsed.to_phc(), phc);
        let got =
            block_on(RustPbkdf2.derive(b"correct horse", b"saltsaltsaltsalt", 10_000)).unwrap();
        assert_eq!(b64_phc(&got), phc.rsplit('$').next().unwrap());
    }

    #[test]
    fn hash_verify_and_rehash() {
        let phc = block_on(hash(&RustPbkdf2, &SystemRng, "correct horse", 10_000)).unwrap();
        assert!(phc.as_str().starts_with("$pbkdf2-sha256$i=10000,l=32$"));
        let check =
            |pw: &str, iterations| block_on(verify(&RustPbkdf2, &phc, pw, iterations)).unwrap();
        assert_eq!(check("correct horse", 10_000), Verdict::Match);
        assert_eq!(check("correct horsf", 10_000), Verdict::Mismatch);
        assert_eq!(check("correct horse", 20_000), Verdict::MatchNeedsRehash);
        assert_eq!(
            check("correct horse", 10_000 - 1),
            Verdict::MatchNeedsRehash
        );
    }

    #[test]
    fn salts_differ() {
        let a = block_on(hash(&RustPbkdf2, &SystemRng, "same password", 10_000)).unwrap();
        let b = block_on(hash(&RustPbkdf2, &SystemRng, "same password", 10_000)).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_hashes_never_match() {
        for bad in [
            "",
            "plaintext",
            "$pbkdf2-sha256$i=0,l=32$c2FsdHNhbHRzYWx0c2FsdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs",
            "$pbkdf2-sha256$i=100001,l=32$c2FsdHNhbHRzYWx0c2FsdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs",
            "$pbkdf2-sha512$i=10000,l=32$c2FsdHNhbHRzYWx0c2FsdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs",
            "$pbkdf2-sha256$i=10000,l=32$c2FsdHNhbHRzYWx0c2FsdA$short",
        ] {
            assert!(PasswordHash::parse(bad).is_none(), "{bad}");
            assert_eq!(
                block_on(verify(&RustPbkdf2, &PasswordPhc::from_stored(bad.into()), "correct horse", 10_000)).unwrap(),
                Verdict::Mismatch
            );
        }
    }

    #[test]
    fn length_policy_counts_characters() {
        assert!(check_policy("1234567").is_err());
        assert!(check_policy("12345678").is_ok());
        assert!(check_policy("ééééééé").is_err()); // 7 characters, 14 bytes
        assert!(check_policy(&"x".repeat(256)).is_ok());
        assert!(check_policy(&"x".repeat(257)).is_err());
    }

    #[test]
    fn debug_hides_salt_and_hash() {
        let parsed = PasswordHash::parse("$pbkdf2-sha256$i=10000,l=32$c2FsdHNhbHRzYWx0c2FsdA$M5fgfTQFdt/UZ9ItXSpJUbfh+t3SP1e/381emb1bpCs").unwrap();
        assert_eq!(
            format!("{parsed:?}"),
            "PasswordHash { iterations: 10000, .. }"
        );
    }

    #[test]
    fn pbkdf2_cross_check_passes_natively() {
        let (ok, cases) = futures::executor::block_on(pbkdf2_cross_check(&RustPbkdf2));
        assert!(ok, "{cases:?}");
        assert_eq!(cases.len(), KNOWN_ANSWERS.len() + 3);
    }
}
