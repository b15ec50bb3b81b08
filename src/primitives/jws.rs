//! Public keys of other issuers (JWK, RFC 7517) and the check of a JWS signature with one.
//!
//! Three algorithms, each bound to one key type: `RS256` (RSA, PKCS#1 v1.5 with SHA-256, 2048
//! to 4096 bits), `ES256` (ECDSA on P-256 with SHA-256, the signature as `r || s`) and `EdDSA`
//! (Ed25519). A key serves only the algorithm of its type, so a token cannot make an RSA key
//! verify an HMAC or an ECDSA signature. `none` and the HMAC algorithms are not algorithms here.
//!
//! The check itself is a [`SignatureVerifier`]: natively [`RustVerifier`] (RustCrypto's `rsa`
//! and `p256`, and `ed25519-compact`), in the worker WebCrypto, so the RSA and ECDSA code never
//! reaches the wasm build. `tests/fixtures/jws-vectors.json` holds known answers both check.

use futures_util::future::LocalBoxFuture;

use crate::primitives::encoding::{b64url, b64url_decode};
use crate::primitives::error::Error;

/// An accepted JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl JwsAlg {
    /// The algorithm of a JOSE `alg` value; `None` for anything else (`none`, `HS256`…).
    pub fn parse(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// The JOSE `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// The key material of a public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// A P-256 point.
    P256 {
        /// x coordinate.
        x: [u8; 32],
        /// y coordinate.
        y: [u8; 32],
    },
    /// An Ed25519 public key.
    Ed25519 {
        /// The key.
        x: [u8; 32],
    },
}

/// A public signing key read from a JWK: its `kid` and what it verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The JWK's `kid`, if it has one.
    pub kid: Option<String>,
    /// The one algorithm this key verifies.
    pub alg: JwsAlg,
    /// The key.
    pub material: KeyMaterial,
}

/// Fewest and most bytes of an accepted RSA modulus (2048 and 4096 bits).
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=512;

fn fixed<const N: usize>(value: Option<&str>) -> Option<[u8; N]> {
    b64url_decode(value?)?.try_into().ok()
}

fn unsigned(value: Option<&str>) -> Option<Vec<u8>> {
    let bytes = b64url_decode(value?)?;
    let start = bytes.iter().position(|&b| b != 0)?;
    Some(bytes[start..].to_vec())
}

impl PublicKey {
    /// The signing key of one JWK. `Ok(None)`: a key that is not for signatures (`use` other
    /// than `sig`, `key_ops` without `verify`) or of a type not accepted here, to be skipped;
    /// `Err`: a signing key of an accepted type that is malformed, or a private key.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Option<Self>, String> {
        let Some(raw) = jwk.as_object() else {
            return Err("a key that is not a JSON object".into());
        };
        let member = |name: &str| raw.get(name).and_then(serde_json::Value::as_str);
        let kid = member("kid").map(str::to_string);
        let named = || match &kid {
            Some(kid) => format!("key {kid:?}"),
            None => "a key without kid".to_string(),
        };
        if raw.contains_key("d") {
            return Err(format!(
                "{} is a private key; publish public keys only",
                named()
            ));
        }
        if member("use").is_some_and(|u| u != "sig")
            || raw.get("key_ops").is_some_and(|ops| {
                !ops.as_array()
                    .is_some_and(|ops| ops.iter().any(|o| o == "verify"))
            })
        {
            return Ok(None);
        }
        let (alg, material) = match (member("kty"), member("crv")) {
            (Some("RSA"), _) => {
                let n = unsigned(member("n"))
                    .ok_or_else(|| format!("{}: n is not base64url", named()))?;
                let e = unsigned(member("e"))
                    .ok_or_else(|| format!("{}: e is not base64url", named()))?;
                if !RSA_MODULUS_BYTES.contains(&n.len()) {
                    return Err(format!(
                        "{}: an RSA modulus of {} bits (2048 to 4096 are accepted)",
                        named(),
                        n.len() * 8
                    ));
                }
                if e.len() > 4 {
                    return Err(format!("{}: the RSA exponent is too large", named()));
                }
                (JwsAlg::Rs256, KeyMaterial::Rsa { n, e })
            }
            (Some("EC"), Some("P-256")) => {
                let x = fixed::<32>(member("x"));
                let y = fixed::<32>(member("y"));
                let (Some(x), Some(y)) = (x, y) else {
                    return Err(format!(
                        "{}: x and y must be 32 bytes of base64url",
                        named()
                    ));
                };
                (JwsAlg::Es256, KeyMaterial::P256 { x, y })
            }
            (Some("OKP"), Some("Ed25519")) => {
                let x = fixed::<32>(member("x"))
                    .ok_or_else(|| format!("{}: x must be 32 bytes of base64url", named()))?;
                (JwsAlg::EdDsa, KeyMaterial::Ed25519 { x })
            }
            _ => return Ok(None),
        };
        // A key that names another algorithm than its type's is skipped, never bent.
        if member("alg").is_some_and(|a| a != alg.as_str()) {
            return Ok(None);
        }
        Ok(Some(Self { kid, alg, material }))
    }

    /// Whether `signature` has the length this key's signatures have (the modulus length for
    /// RSA, 64 bytes for ES256's `r || s` and for Ed25519). WebCrypto throws, rather than
    /// answering false, on some wrong lengths; a signature of another length never verifies.
    pub fn signature_fits(&self, signature: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Rsa { n, .. } => signature.len() == n.len(),
            KeyMaterial::P256 { .. } | KeyMaterial::Ed25519 { .. } => signature.len() == 64,
        }
    }

    /// The key as a minimal public JWK (what WebCrypto imports): only the type's members.
    /// Written directly: base64url never needs escaping in a JSON string.
    pub fn to_jwk_json(&self) -> String {
        match &self.material {
            KeyMaterial::Rsa { n, e } => {
                format!(r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#, b64url(n), b64url(e))
            }
            KeyMaterial::P256 { x, y } => format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#,
                b64url(x),
                b64url(y)
            ),
            KeyMaterial::Ed25519 { x } => {
                format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, b64url(x))
            }
        }
    }
}

/// Checks a signature with a public key, for the key's algorithm.
pub trait SignatureVerifier {
    /// Whether `signature` is `key`'s over `message`: `Ok(false)` for a signature that does
    /// not verify (including one of the wrong length); `Err` only when the check could not run.
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        message: &'a [u8],
        signature: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<bool, Error>>;
}

/// The native checks: RustCrypto's `rsa` (PKCS#1 v1.5, SHA-256) and `p256` (ECDSA), and
/// `ed25519-compact`. Not in the wasm build, where WebCrypto does the same.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct RustVerifier;

#[cfg(not(target_arch = "wasm32"))]
impl RustVerifier {
    /// The check, synchronously.
    pub fn check(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        match &key.material {
            KeyMaterial::Rsa { n, e } => {
                use rsa::pkcs1v15::{Signature, VerifyingKey};
                use rsa::signature::Verifier;
                use rsa::{BigUint, RsaPublicKey};
                let Ok(public) =
                    RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                else {
                    return false;
                };
                let Ok(signature) = Signature::try_from(signature) else {
                    return false;
                };
                VerifyingKey::<sha2::Sha256>::new(public)
                    .verify(message, &signature)
                    .is_ok()
            }
            KeyMaterial::P256 { x, y } => {
                use p256::ecdsa::signature::Verifier;
                use p256::ecdsa::{Signature, VerifyingKey};
                use p256::EncodedPoint;
                let point = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
                let Ok(public) = VerifyingKey::from_encoded_point(&point) else {
                    return false;
                };
                let Ok(signature) = Signature::from_slice(signature) else {
                    return false;
                };
                public.verify(message, &signature).is_ok()
            }
            KeyMaterial::Ed25519 { x } => {
                let public = ed25519_compact::PublicKey::new(*x);
                let Ok(signature) = ed25519_compact::Signature::from_slice(signature) else {
                    return false;
                };
                public.verify(message, &signature).is_ok()
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl SignatureVerifier for RustVerifier {
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        message: &'a [u8],
        signature: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move { Ok(Self::check(key, message, signature)) })
    }
}

/// One known answer: a public JWK, a message and a signature, and whether it verifies.
#[cfg(any(feature = "selftest", not(target_arch = "wasm32")))]
#[derive(Debug, serde::Deserialize)]
pub struct Vector {
    /// What the case shows.
    pub name: String,
    /// The public key.
    pub jwk: serde_json::Value,
    /// The message, base64url.
    pub message: String,
    /// The signature, base64url.
    pub signature: String,
    /// Whether the signature is the key's over the message.
    pub valid: bool,
}

/// The known answers of `tests/fixtures/jws-vectors.json`, checked with `verifier`: `(all
/// agree, per case: name and whether it agreed)`.
#[cfg(any(feature = "selftest", not(target_arch = "wasm32")))]
pub async fn check_vectors(
    verifier: &dyn SignatureVerifier,
    vectors_json: &str,
) -> (bool, Vec<(String, bool)>) {
    let vectors: Vec<Vector> = match serde_json::from_str(vectors_json) {
        Ok(v) => v,
        Err(err) => return (false, vec![(format!("vectors: {err}"), false)]),
    };
    let mut all = !vectors.is_empty();
    let mut cases = Vec::new();
    for v in vectors {
        let agreed = match (
            PublicKey::from_jwk(&v.jwk),
            b64url_decode(&v.message),
            b64url_decode(&v.signature),
        ) {
            (Ok(Some(key)), Some(message), Some(signature)) => {
                verifier.verify(&key, &message, &signature).await == Ok(v.valid)
            }
            _ => false,
        };
        all &= agreed;
        cases.push((v.name, agreed));
    }
    (all, cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_jwk_is_json_with_only_the_types_members() {
        let keys = [
            serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&[7; 32]), "kid": "a", "use": "sig" }),
            serde_json::json!({ "kty": "EC", "crv": "P-256", "x": b64url(&[1; 32]), "y": b64url(&[2; 32]), "alg": "ES256" }),
            serde_json::json!({ "kty": "RSA", "n": b64url(&[0xc5; 256]), "e": "AQAB" }),
        ];
        for jwk in keys {
            let key = PublicKey::from_jwk(&jwk).unwrap().unwrap();
            let minimal: serde_json::Value = serde_json::from_str(&key.to_jwk_json()).unwrap();
            let mut expected = jwk.clone();
            for extra in ["kid", "use", "alg"] {
                expected.as_object_mut().unwrap().remove(extra);
            }
            assert_eq!(minimal, expected);
            assert_eq!(
                PublicKey::from_jwk(&minimal).unwrap().unwrap().material,
                key.material
            );
        }
    }

    #[test]
    fn keys_for_other_uses_or_algorithms_are_skipped_and_private_keys_refused() {
        let x = b64url(&[7; 32]);
        let skipped = [
            serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "use": "enc" }),
            serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "key_ops": ["encrypt"] }),
            serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "RS256" }),
            serde_json::json!({ "kty": "oct", "k": x }),
            serde_json::json!({ "kty": "EC", "crv": "P-384", "x": x, "y": x }),
        ];
        for jwk in skipped {
            assert_eq!(PublicKey::from_jwk(&jwk), Ok(None), "{jwk}");
        }
        let private = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "d": x });
        assert!(PublicKey::from_jwk(&private)
            .unwrap_err()
            .contains("private"));
        let small = serde_json::json!({ "kty": "RSA", "n": b64url(&[0xc5; 128]), "e": "AQAB" });
        assert!(PublicKey::from_jwk(&small)
            .unwrap_err()
            .contains("1024 bits"));
    }
}
