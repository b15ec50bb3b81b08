//! The second factor: TOTP (RFC 6238) secrets, codes and their `otpauth://` URI and QR code,
//! the secret sealed at rest with AES-256-GCM, and single-use recovery codes.
//!
//! Codes are computed by `totp-rs` (HMAC-SHA1, 6 digits, 30-second steps, the authenticator
//! apps' defaults) at the time of the [`crate::primitives::platform::Clock`] handed in, never the
//! system's. A code is accepted for the step before, the step of, and the step after now; the
//! step that matched is returned so the store can accept each step at most once
//! (`Store::use_totp_step`). The QR code is drawn as SVG from `qrcodegen`'s module grid.
//!
//! The secret is stored as `v1.` + base64url(nonce ‖ ciphertext ‖ tag), sealed under
//! `MFA_ENCRYPTION_KEY` with the user's id as associated data: a sealed secret copied onto
//! another user's row does not open. Recovery codes are stored only as HMAC-SHA256 under a key
//! derived from the same secret, over the user's id and the code.

use std::fmt;

use hmac::{Hmac, Mac};
use qrcodegen::{QrCode, QrCodeEcc};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

use crate::domain::store::RecoveryCodeHash;
use crate::primitives::encoding::{b64url, b64url_decode, base32_lower, hex};
use crate::primitives::error::Error;
use crate::primitives::platform::{random_array, AesGcm, Rng};

/// Seconds per TOTP step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes issued at a time.
pub const RECOVERY_CODES: usize = 10;
/// How long a started enrollment can be confirmed, ms.
pub const PENDING_TTL_MS: i64 = 15 * 60 * 1000;

const SEALED_PREFIX: &str = "v1.";
const RECOVERY_LABEL: &[u8] = b"gatehouse recovery codes v1";

/// `MFA_ENCRYPTION_KEY`: 32 bytes. `Debug` never shows it.
#[derive(Clone)]
pub struct MfaKey {
    aes: [u8; 32],
    recovery: [u8; 32],
}

impl fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaKey(<redacted>)")
    }
}

impl MfaKey {
    /// The key from its 32 bytes; the recovery-code key is derived from it.
    pub fn new(bytes: [u8; 32]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC accepts any key length");
        mac.update(RECOVERY_LABEL);
        Self {
            aes: bytes,
            recovery: mac.finalize().into_bytes().into(),
        }
    }
}

/// A TOTP secret in the clear: only ever in memory for one request. `Debug` never shows it.
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A new random secret.
    pub fn generate(rng: &dyn Rng) -> Self {
        Self(random_array::<SECRET_BYTES>(rng).to_vec())
    }

    /// A secret from its bytes (tests, known-answer vectors).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// RFC 4648 base32, upper case, no padding: what a person types into an authenticator app.
    pub fn base32(&self) -> String {
        base32_lower(&self.0).to_ascii_uppercase()
    }

    fn totp(&self, issuer: &str, account: &str) -> TOTP {
        // Checked by hand: the secret is at least 128 bits, the digits 6; the issuer and account
        // name are percent-encoded into the URI by totp-rs.
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            1,
            STEP_SECS as u64,
            self.0.clone(),
            Some(issuer.to_string()),
            account.to_string(),
        )
    }

    /// The code of time step `step` (Unix seconds / 30).
    pub fn code_at_step(&self, step: u64) -> String {
        self.totp("", "").generate(step * STEP_SECS as u64)
    }

    /// The step (of now - 1, now, now + 1) whose code `code` is, compared in constant time;
    /// `None` when it is none of them or not six digits.
    pub fn matching_step(&self, code: &str, now_ms: i64) -> Option<u64> {
        if !is_code(code) {
            return None;
        }
        let now_step = (now_ms.max(0) / 1000 / STEP_SECS) as u64;
        let mut found = None;
        for step in now_step.saturating_sub(1)..=now_step + 1 {
            let matches: bool = self
                .code_at_step(step)
                .as_bytes()
                .ct_eq(code.as_bytes())
                .into();
            if matches && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// The `otpauth://totp/…` URI an authenticator app reads (key URI format).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        self.totp(issuer, account).get_url()
    }

    /// Seals the secret for `user_id` under `key` with a fresh nonce.
    pub async fn seal(
        &self,
        aead: &dyn AesGcm,
        key: &MfaKey,
        rng: &dyn Rng,
        user_id: &str,
    ) -> Result<String, Error> {
        let nonce: [u8; 12] = random_array(rng);
        let ciphertext = aead
            .seal(&key.aes, &nonce, user_id.as_bytes(), &self.0)
            .await?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", b64url(&out)))
    }

    /// Opens what [`TotpSecret::seal`] made for `user_id`.
    pub async fn open(
        aead: &dyn AesGcm,
        key: &MfaKey,
        user_id: &str,
        sealed: &str,
    ) -> Result<Self, Error> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(b64url_decode)
            .filter(|b| b.len() > 12 + 16)
            .ok_or_else(|| Error::Internal("a stored TOTP secret is malformed".into()))?;
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("split at 12");
        let plain = aead
            .open(&key.aes, &nonce, user_id.as_bytes(), ciphertext)
            .await
            .map_err(|_| {
                Error::Internal(
                    "a stored TOTP secret does not open: MFA_ENCRYPTION_KEY changed, or the row was altered"
                        .into(),
                )
            })?;
        Ok(Self(plain))
    }
}

/// Whether `code` has the shape of a TOTP code: six ASCII digits.
pub fn is_code(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// New recovery codes: each 50 random bits as ten base32 characters, shown `xxxxx-xxxxx`.
pub fn generate_recovery_codes(rng: &dyn Rng) -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; 7] = random_array(rng);
            let chars = base32_lower(&bytes);
            format!("{}-{}", &chars[..5], &chars[5..10])
        })
        .collect()
}

/// A recovery code as typed, in its one form: lower case, without spaces or hyphens; `None`
/// when it cannot be one.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == 10
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)))
    .then_some(code)
}

/// The stored form of a (normalized) recovery code of `user_id`: hex HMAC-SHA256.
pub fn recovery_hash(key: &MfaKey, user_id: &str, code: &str) -> RecoveryCodeHash {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key.recovery).expect("HMAC accepts any key length");
    mac.update(user_id.as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    RecoveryCodeHash::from_stored(hex(&mac.finalize().into_bytes()))
}

/// `text` as a QR code (error correction M), drawn as an SVG of dark modules on white with a
/// four-module quiet zone; `None` if it does not fit a QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let border = 4;
    let size = qr.size();
    let dim = size + 2 * border;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {dim} {dim}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{dim}\" height=\"{dim}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::primitives::encoding::hex_decode;
    use crate::primitives::platform::RustAesGcm;

    struct CountingRng(std::cell::Cell<u8>);
    impl Rng for CountingRng {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                let v = self.0.get();
                *b = v;
                self.0.set(v.wrapping_add(1));
            }
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("ready")
    }

    /// RFC 6238 appendix B, SHA-1 (seed "12345678901234567890"): the 8-digit codes through
    /// totp-rs itself, and the same codes' last six digits through Gatehouse's 6-digit codes.
    #[test]
    fn rfc6238_sha1_vectors() {
        let seed = b"12345678901234567890".to_vec();
        let vectors: [(u64, &str); 6] = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let eight =
            TOTP::new(Algorithm::SHA1, 8, 1, 30, seed.clone(), None, String::new()).unwrap();
        let secret = TotpSecret::from_bytes(seed);
        for (time, code) in vectors {
            assert_eq!(eight.generate(time), code, "T={time}");
            assert_eq!(secret.code_at_step(time / 30), code[2..], "T={time}");
            let now_ms = time as i64 * 1000;
            assert_eq!(secret.matching_step(&code[2..], now_ms), Some(time / 30));
        }
    }

    #[test]
    fn codes_match_one_step_either_side_only() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let step = 1_111_111_111 / 30;
        let now_ms = step as i64 * 30_000 + 5_000;
        for (offset, expect) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let s = (step as i64 + offset) as u64;
            let code = secret.code_at_step(s);
            let found = secret.matching_step(&code, now_ms);
            assert_eq!(found.is_some(), expect, "offset {offset}");
            if expect {
                assert_eq!(found, Some(s));
            }
        }
        for bad in ["", "12345", "1234567", "12345a", " 12345", "１２３４５６"] {
            assert_eq!(secret.matching_step(bad, now_ms), None, "{bad:?}");
        }
    }

    #[test]
    fn otpauth_uri_and_base32() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            secret.otpauth_uri("Example Site", "ada@example.com"),
            "otpauth://totp/Example%20Site:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Site"
        );
        assert!(format!("{secret:?}").contains("redacted"));
    }

    /// The known answer the worker's WebCrypto must give too (`/__selftest/aes-gcm`): the GCM
    /// specification's test case 16 (AES-256, 96-bit IV, with associated data).
    #[test]
    fn aes_gcm_kat() {
        let (key, nonce, aad, plaintext, expected) = KAT;
        let key: [u8; 32] = hex_decode(key).unwrap().try_into().unwrap();
        let nonce: [u8; 12] = hex_decode(nonce).unwrap().try_into().unwrap();
        let aad = hex_decode(aad).unwrap();
        let plaintext = hex_decode(plaintext).unwrap();
        let sealed = block_on(RustAesGcm.seal(&key, &nonce, &aad, &plaintext)).unwrap();
        assert_eq!(hex(&sealed), expected);
        let opened = block_on(RustAesGcm.open(&key, &nonce, &aad, &sealed)).unwrap();
        assert_eq!(opened, plaintext);
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(block_on(RustAesGcm.open(&key, &nonce, &aad, &tampered)).is_err());
        assert!(block_on(RustAesGcm.open(&key, &nonce, b"other", &sealed)).is_err());
        let report = block_on(aes_gcm_known_answer(&RustAesGcm));
        assert_eq!(report["ok"], true, "{report}");
    }

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        let rng = CountingRng(std::cell::Cell::new(1));
        let key = MfaKey::new([7; 32]);
        let secret = TotpSecret::generate(&rng);
        let sealed = block_on(secret.seal(&RustAesGcm, &key, &rng, "usr_a")).unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains(&secret.base32()));
        let opened = block_on(TotpSecret::open(&RustAesGcm, &key, "usr_a", &sealed)).unwrap();
        assert_eq!(opened.0, secret.0);
        assert!(block_on(TotpSecret::open(&RustAesGcm, &key, "usr_b", &sealed)).is_err());
        let other = MfaKey::new([8; 32]);
        assert!(block_on(TotpSecret::open(&RustAesGcm, &other, "usr_a", &sealed)).is_err());
        for bad in ["", "v1.", "v2.AAAA", "v1.!!!"] {
            assert!(block_on(TotpSecret::open(&RustAesGcm, &key, "usr_a", bad)).is_err());
        }
        assert!(format!("{key:?}").contains("redacted"));
    }

    #[test]
    fn recovery_codes_normalize_and_hash_per_user() {
        let rng = CountingRng(std::cell::Cell::new(0));
        let codes = generate_recovery_codes(&rng);
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 11);
            let norm = normalize_recovery_code(code).unwrap();
            assert_eq!(
                normalize_recovery_code(&code.to_uppercase()),
                Some(norm.clone())
            );
            assert_eq!(normalize_recovery_code(&norm), Some(norm));
        }
        for bad in [
            "",
            "abcde-fghi",
            "abcde-fghij1",
            "abcde-fgh1j",
            "ábcde-fghij",
        ] {
            assert_eq!(normalize_recovery_code(bad), None, "{bad:?}");
        }
        let key = MfaKey::new([7; 32]);
        let a = recovery_hash(&key, "usr_a", "abcdefghij");
        assert_eq!(a.as_str().len(), 64);
        assert_ne!(a, recovery_hash(&key, "usr_b", "abcdefghij"));
        assert_ne!(
            a,
            recovery_hash(&MfaKey::new([8; 32]), "usr_a", "abcdefghij")
        );
    }

    #[test]
    fn the_qr_code_is_an_svg_of_the_uri() {
        let svg = qr_svg("otpauth://totp/x:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.matches('M').count() > 100);
        let qr = QrCode::encode_text("x", QrCodeEcc::Medium).unwrap();
        assert!(qr.get_module(0, 0), "finder pattern corner is dark");
        assert!(qr_svg(&"x".repeat(5000)).is_none());
    }
}

/// Runs [`KAT`] through `aead`: `{ok, ciphertext, opened, tampered_refused, other_aad_refused}`
/// (hex). The selftest build answers it from the worker's WebCrypto at `/__selftest/aes-gcm`.
#[cfg(any(test, feature = "selftest"))]
pub async fn aes_gcm_known_answer(aead: &dyn AesGcm) -> serde_json::Value {
    use crate::primitives::encoding::hex_decode;
    let (key, nonce, aad, plaintext, expected) = KAT;
    let key: [u8; 32] = hex_decode(key)
        .and_then(|k| k.try_into().ok())
        .unwrap_or_default();
    let nonce: [u8; 12] = hex_decode(nonce)
        .and_then(|n| n.try_into().ok())
        .unwrap_or_default();
    let aad = hex_decode(aad).unwrap_or_default();
    let plaintext = hex_decode(plaintext).unwrap_or_default();
    let sealed = aead
        .seal(&key, &nonce, &aad, &plaintext)
        .await
        .unwrap_or_default();
    let opened = aead
        .open(&key, &nonce, &aad, &sealed)
        .await
        .unwrap_or_default();
    let mut tampered = sealed.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 1;
    }
    let tampered_refused = aead.open(&key, &nonce, &aad, &tampered).await.is_err();
    let other_aad_refused = aead
        .open(&key, &nonce, b"usr_other", &sealed)
        .await
        .is_err();
    let ok =
        hex(&sealed) == expected && opened == plaintext && tampered_refused && other_aad_refused;
    serde_json::json!({
        "ok": ok,
        "ciphertext": hex(&sealed),
        "opened": hex(&opened),
        "tampered_refused": tampered_refused,
        "other_aad_refused": other_aad_refused,
    })
}

/// The known-answer vector of AES-256-GCM both implementations are checked against:
/// `(key, nonce, aad, plaintext, ciphertext ‖ tag)`, hex (the GCM specification's test case 16).
pub const KAT: (&str, &str, &str, &str, &str) = (
    "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
    "cafebabefacedbaddecaf888",
    "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b",
);
