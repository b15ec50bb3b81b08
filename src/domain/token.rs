//! Access tokens: EdDSA (Ed25519) JWTs made and checked with `jwt-compact`, and the JWKS.
//!
//! Verification never trusts the token's header: the algorithm is fixed to `EdDSA`
//! (jwt-compact refuses any other `alg`, `none` and HS256 included), the key is picked by `kid`
//! from the configured key set only, and the signature is checked before any claim is read.
//! The path is `UntrustedToken` (parsed, nothing trusted) → `Token` (signature verified) →
//! [`VerifiedAccess`] (issuer, audience and times checked).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ed25519_compact::{KeyPair, PublicKey, SecretKey, Seed};
use jwt_compact::alg::Ed25519;
use jwt_compact::{
    AlgorithmExt, Claims, Header, TimeOptions, Token, UntrustedToken, ValidationError,
};
use serde::{Deserialize, Serialize};

use crate::primitives::encoding::{b64url, b64url_decode, sha256};
use crate::primitives::error::{Error, TokenRejection};

/// The claims Gatehouse puts into an access token besides `iat` and `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer (`JWT_ISSUER`).
    pub iss: String,
    /// Audience (`JWT_AUDIENCE`).
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// A unique token id.
    pub jti: String,
    /// The user's roles at issuance.
    pub roles: Vec<String>,
    /// The session (refresh family) the token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Set on a scoped token (`POST /auth/token`) only: the credential that delegated it
    /// (RFC 8693 section 4.1). Its presence is what makes a token scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// A scoped token's grants as RFC 8693 section 4.2 `scope`: space-separated `role:<name>`
    /// and `route:<name>` entries, for other services; Gatehouse enforces `roles` and `routes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A scoped token's proxy routes (route names); `None`: every route its roles allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
}

/// The `act` claim of a scoped token: who delegated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The delegating credential's subject: the user id.
    pub sub: String,
    /// The API key (`key_…`) the token was minted from, directly or through other scoped
    /// tokens: the key's revocation, expiry and owner ends the token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// An access token whose signature, issuer, audience and lifetime have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAccess {
    /// The checked claims.
    pub claims: AccessClaims,
    /// `exp`, in Unix seconds.
    pub expires_at: i64,
    /// The later of `iat` and `nbf`, in Unix seconds.
    pub valid_from: i64,
}

/// The header fields jwt-compact does not model that verification must look at.
#[derive(Debug, Clone, Default, Deserialize)]
struct CriticalHeader {
    /// `Some` whenever the member is present, `"crit": null` included.
    #[serde(default, deserialize_with = "present")]
    crit: Option<serde_json::Value>,
}

/// Deserializes a member that is present, whatever its value (`null` too), as `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    <serde_json::Value as Deserialize>::deserialize(d).map(Some)
}

/// A public key Gatehouse accepts, with its `kid`.
#[derive(Clone)]
struct VerifyingKey {
    kid: String,
    key: PublicKey,
}

/// The signing key and every key whose tokens are still accepted (the signing key's public half
/// first, then previous keys kept for rotation).
pub struct KeySet {
    signing: SecretKey,
    verifying: Vec<VerifyingKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret: only which keys are configured.
        f.debug_struct("KeySet")
            .field("signing_kid", &self.current_kid())
            .field(
                "verifying_kids",
                &self
                    .verifying
                    .iter()
                    .map(|k| k.kid.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key, base64url: the `kid`.
pub fn thumbprint(public_key: &[u8; 32]) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 section 3; RFC 8037 section 2).
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64url(public_key)
    );
    b64url(&sha256(canonical.as_bytes()))
}

/// The public JWK of an Ed25519 key.
pub fn public_jwk(public_key: &[u8; 32]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_key),
        "kid": thumbprint(public_key),
        "alg": "EdDSA",
        "use": "sig",
    })
}

/// Decodes a base64url 32-byte value (a seed or a public key).
pub fn decode_key32(s: &str) -> Option<[u8; 32]> {
    b64url_decode(s.trim())?.try_into().ok()
}

impl KeySet {
    /// A key set from the signing key's 32-byte seed and the public keys of previous keys.
    pub fn new(seed: &[u8; 32], previous: &[[u8; 32]]) -> Result<Self, String> {
        let pair = KeyPair::from_seed(Seed::new(*seed));
        let mut verifying = vec![VerifyingKey {
            kid: thumbprint(&pair.pk),
            key: pair.pk,
        }];
        for raw in previous {
            let key = PublicKey::from_slice(raw).map_err(|_| "not an Ed25519 public key")?;
            let kid = thumbprint(raw);
            if verifying.iter().all(|k| k.kid != kid) {
                verifying.push(VerifyingKey { kid, key });
            }
        }
        Ok(Self {
            signing: pair.sk,
            verifying,
        })
    }

    /// The `kid` of the signing key.
    pub fn current_kid(&self) -> &str {
        &self.verifying[0].kid
    }

    /// The signing key's public half.
    pub fn public_key(&self) -> [u8; 32] {
        *self.verifying[0].key
    }

    /// The JWKS document: every accepted key, the signing key first.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.verifying.iter().map(|k| public_jwk(&k.key)).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs an access token issued at `now_ms` that lives `ttl_secs`.
    pub fn sign(&self, claims: AccessClaims, now_ms: i64, ttl_secs: i64) -> Result<String, Error> {
        let issued = unix_seconds(now_ms.div_euclid(1000))?;
        let mut full = Claims::new(claims);
        full.issued_at = Some(issued);
        full.expiration = Some(issued + Duration::seconds(ttl_secs));
        let header = Header::empty()
            .with_key_id(self.current_kid())
            .with_token_type("JWT");
        Ed25519
            .token(&header, &full, &self.signing)
            .map_err(|err| Error::Internal(format!("signing an access token: {err}")))
    }

    /// Verifies `token` at `now_ms` with `leeway_secs` of clock skew, for `issuer`/`audience`.
    pub fn verify(
        &self,
        token: &str,
        now_ms: i64,
        leeway_secs: i64,
        issuer: &str,
        audience: &str,
    ) -> Result<VerifiedAccess, Error> {
        let verified = self.verify_signature(token)?;
        check_claims(verified.claims(), now_ms, leeway_secs, issuer, audience)
    }

    /// The token with its header and signature checked: `alg`, `kid`, the Ed25519 signature,
    /// `typ` and `crit`.
    fn verify_signature(&self, token: &str) -> Result<Token<AccessClaims, CriticalHeader>, Error> {
        let reject = |why| Error::InvalidToken(why);
        let untrusted = UntrustedToken::<CriticalHeader>::try_from(token)
            .map_err(|_| reject(TokenRejection::Malformed))?;
        if untrusted.algorithm() != "EdDSA" {
            return Err(reject(TokenRejection::Algorithm));
        }
        let kid = untrusted.header().key_id.as_deref();
        let key = self
            .verifying
            .iter()
            .find(|k| Some(k.kid.as_str()) == kid)
            .ok_or(reject(TokenRejection::UnknownKey))?;
        let verified = Ed25519
            .validator::<AccessClaims>(&key.key)
            .validate(&untrusted)
            .map_err(|err| {
                reject(match err {
                    ValidationError::AlgorithmMismatch { .. } => TokenRejection::Algorithm,
                    ValidationError::InvalidSignatureLen { .. }
                    | ValidationError::MalformedSignature(_)
                    | ValidationError::InvalidSignature => TokenRejection::Signature,
                    _ => TokenRejection::Claims,
                })
            })?;
        let header = verified.header();
        // RFC 7515 section 4.1.11: extensions listed in `crit` must be understood; none are.
        if header.token_type.as_deref() != Some("JWT") || header.other_fields.crit.is_some() {
            return Err(reject(TokenRejection::Claims));
        }
        Ok(verified)
    }
}

/// The time, issuer and audience checks of claims whose signature verified.
fn check_claims(
    claims: &Claims<AccessClaims>,
    now_ms: i64,
    leeway_secs: i64,
    issuer: &str,
    audience: &str,
) -> Result<VerifiedAccess, Error> {
    let reject = |why| Error::InvalidToken(why);
    let now = unix_seconds(now_ms.div_euclid(1000))?;
    let leeway = Duration::seconds(leeway_secs);
    let options = TimeOptions::new(leeway, move || now);
    match claims.validate_expiration(&options) {
        Ok(_) => {}
        Err(ValidationError::Expired) => return Err(Error::ExpiredToken),
        Err(_) => return Err(reject(TokenRejection::Claims)),
    }
    // `nbf` is optional (Gatehouse does not set it), but honoured when present.
    if claims.not_before.is_some() && claims.validate_maturity(&options).is_err() {
        return Err(reject(TokenRejection::NotYetValid));
    }
    match claims.issued_at {
        Some(iat) if iat <= now + leeway => {}
        Some(_) => return Err(reject(TokenRejection::NotYetValid)),
        None => return Err(reject(TokenRejection::Claims)),
    }
    if claims.custom.iss != issuer || claims.custom.aud != audience {
        return Err(reject(TokenRejection::IssuerOrAudience));
    }
    let expires_at = claims
        .expiration
        .map(|exp| exp.timestamp())
        .ok_or(reject(TokenRejection::Claims))?;
    let valid_from = claims
        .issued_at
        .iter()
        .chain(claims.not_before.iter())
        .map(|t| t.timestamp())
        .max()
        .unwrap_or(i64::MIN);
    Ok(VerifiedAccess {
        claims: claims.custom.clone(),
        expires_at,
        valid_from,
    })
}

/// Access tokens this isolate has verified, keyed by the token itself (a hash map lookup costs
/// well under a microsecond; a SHA-256 of the token in wasm cost about ten). At most
/// [`VerifyCache::CAPACITY`] tokens of a few hundred bytes each: a few megabytes.
///
/// A token seen again skips the Ed25519 check (about 0.45 ms of wasm per request on the proxy's
/// hot path) but never the time checks: a hit outside `[valid_from, expires_at]` (with leeway)
/// is verified afresh, which answers with the right error. Only successes are kept; the cache
/// lives with the configuration (its keys), so a key change starts an empty one.
#[derive(Debug, Default)]
pub struct VerifyCache {
    entries: RefCell<HashMap<String, VerifiedAccess>>,
}

impl VerifyCache {
    /// Most entries kept; when full, expired entries go, and if none had expired, all.
    pub const CAPACITY: usize = 4096;

    /// [`KeySet::verify`], remembering successes.
    pub fn verify(
        &self,
        keys: &KeySet,
        token: &str,
        now_ms: i64,
        leeway_secs: i64,
        issuer: &str,
        audience: &str,
    ) -> Result<VerifiedAccess, Error> {
        let now = now_ms.div_euclid(1000);
        if let Some(hit) = self.entries.borrow().get(token) {
            if now + leeway_secs >= hit.valid_from && now - leeway_secs <= hit.expires_at {
                return Ok(hit.clone());
            }
        }
        let verified = keys.verify(token, now_ms, leeway_secs, issuer, audience)?;
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, e| now - leeway_secs <= e.expires_at);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token.to_string(), verified.clone());
        Ok(verified)
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }
}

fn unix_seconds(secs: i64) -> Result<DateTime<Utc>, Error> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| Error::Internal(format!("time out of range: {secs}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::encoding::{b64url, hex_decode};
    use hmac::{Hmac, Mac};

    const NOW: i64 = 1_800_000_000_000;

    fn seed(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "gatehouse".into(),
            aud: "gatehouse".into(),
            sub: "usr_a".into(),
            jti: "j1".into(),
            roles: vec!["user".into()],
            sid: Some("fam_1".into()),
            act: None,
            scope: None,
            routes: None,
        }
    }

    fn verify(keys: &KeySet, token: &str, now: i64) -> Result<VerifiedAccess, Error> {
        keys.verify(token, now, 30, "gatehouse", "gatehouse")
    }

    fn rejection(result: Result<VerifiedAccess, Error>) -> TokenRejection {
        match result {
            Err(Error::InvalidToken(why)) => why,
            other => panic!("expected invalid_token, got {other:?}"),
        }
    }

    fn part(json: &str) -> String {
        b64url(json.as_bytes())
    }

    #[test]
    fn the_verify_cache_skips_the_signature_but_not_the_clock() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let cache = VerifyCache::default();
        let token = keys.sign(claims(), NOW, 900).unwrap();
        let check = |now: i64| cache.verify(&keys, &token, now, 30, "gatehouse", "gatehouse");
        assert_eq!(check(NOW).unwrap().claims, claims());
        assert_eq!(cache.len(), 1);
        assert!(check(NOW + 500_000).is_ok(), "a hit within the lifetime");
        assert_eq!(cache.len(), 1);
        // Past exp + leeway the hit is verified afresh and refused; before iat - leeway too.
        assert_eq!(check(NOW + 931_000), Err(Error::ExpiredToken));
        assert_eq!(rejection(check(NOW - 31_000)), TokenRejection::NotYetValid);
        // A tampered token is a different key: verified, refused, not remembered.
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(cache
            .verify(&keys, &forged, NOW, 30, "gatehouse", "gatehouse")
            .is_err());
        assert_eq!(cache.len(), 1);
        // Another issuer or audience is still checked on a miss (the cache keeps successes only).
        let other = keys
            .sign(
                AccessClaims {
                    aud: "other".into(),
                    ..claims()
                },
                NOW,
                900,
            )
            .unwrap();
        assert_eq!(
            rejection(cache.verify(&keys, &other, NOW, 30, "gatehouse", "gatehouse")),
            TokenRejection::IssuerOrAudience
        );
    }

    #[test]
    fn the_verify_cache_stays_bounded() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let cache = VerifyCache::default();
        for i in 0..=VerifyCache::CAPACITY {
            let token = keys
                .sign(
                    AccessClaims {
                        jti: format!("j{i}"),
                        ..claims()
                    },
                    NOW,
                    900,
                )
                .unwrap();
            cache
                .verify(&keys, &token, NOW, 30, "gatehouse", "gatehouse")
                .unwrap();
        }
        assert!(cache.len() <= VerifyCache::CAPACITY);
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1: empty message.
        let sk =
            hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let pk =
            hex_decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a").unwrap();
        let sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        let pair = KeyPair::from_seed(Seed::from_slice(&sk).unwrap());
        assert_eq!(&pair.pk[..], &pk[..]);
        let signature = pair.sk.sign(b"", None);
        assert_eq!(crate::primitives::encoding::hex(&signature[..]), sig);
        assert!(pair.pk.verify(b"", &signature).is_ok());
    }

    #[test]
    fn rfc8037_thumbprint_vector() {
        // RFC 8037 appendix A.3: the thumbprint of the example public key.
        let x = decode_key32("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn sign_then_verify_round_trip() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let token = keys.sign(claims(), NOW, 900).unwrap();
        let verified = verify(&keys, &token, NOW + 1000).unwrap();
        assert_eq!(verified.claims, claims());
        assert_eq!(verified.expires_at, NOW / 1000 + 900);
        let header: serde_json::Value =
            serde_json::from_slice(&b64url_decode(token.split('.').next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], keys.current_kid());
    }

    #[test]
    fn expiry_respects_leeway() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let token = keys.sign(claims(), NOW, 60).unwrap();
        assert!(verify(&keys, &token, NOW + 60_000 + 29_000).is_ok());
        assert!(matches!(
            verify(&keys, &token, NOW + 60_000 + 31_000),
            Err(Error::ExpiredToken)
        ));
    }

    #[test]
    fn issued_in_the_future_is_refused() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let token = keys.sign(claims(), NOW + 120_000, 900).unwrap();
        assert_eq!(
            rejection(verify(&keys, &token, NOW)),
            TokenRejection::NotYetValid
        );
    }

    #[test]
    fn another_key_with_the_same_kid_is_refused() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let other = KeySet::new(&seed(2), &[]).unwrap();
        let forged = other.sign(claims(), NOW, 900).unwrap();
        // Swap the header for one naming the real kid: the signature no longer matches.
        let header = part(&format!(
            r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#,
            keys.current_kid()
        ));
        let rest: Vec<_> = forged.split('.').collect();
        let token = format!("{header}.{}.{}", rest[1], rest[2]);
        assert_eq!(
            rejection(verify(&keys, &token, NOW)),
            TokenRejection::Signature
        );
        assert_eq!(
            rejection(verify(&keys, &forged, NOW)),
            TokenRejection::UnknownKey
        );
    }

    #[test]
    fn alg_none_and_hs256_with_the_public_key_are_refused() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let kid = keys.current_kid().to_string();
        let payload = part(&format!(
            r#"{{"iss":"gatehouse","aud":"gatehouse","sub":"usr_a","jti":"x","roles":["admin"],"iat":{},"exp":{}}}"#,
            NOW / 1000,
            NOW / 1000 + 900
        ));
        let none = format!("{}.{payload}.", part(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(
            rejection(verify(&keys, &none, NOW)),
            TokenRejection::Algorithm
        );
        let none_sig = format!("{}.{payload}.AAAA", part(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(
            rejection(verify(&keys, &none_sig, NOW)),
            TokenRejection::Algorithm
        );

        let header = part(&format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#));
        let signing_input = format!("{header}.{payload}");
        for secret in [
            keys.public_key().to_vec(),
            b64url(&keys.public_key()).into_bytes(),
        ] {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
            mac.update(signing_input.as_bytes());
            let token = format!("{signing_input}.{}", b64url(&mac.finalize().into_bytes()));
            assert_eq!(
                rejection(verify(&keys, &token, NOW)),
                TokenRejection::Algorithm
            );
        }
    }

    #[test]
    fn tampered_payload_is_refused() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let token = keys.sign(claims(), NOW, 900).unwrap();
        let parts: Vec<_> = token.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
        payload["roles"] = serde_json::json!(["admin"]);
        let tampered = format!("{}.{}.{}", parts[0], part(&payload.to_string()), parts[2]);
        assert_eq!(
            rejection(verify(&keys, &tampered, NOW)),
            TokenRejection::Signature
        );
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let token = keys.sign(claims(), NOW, 900).unwrap();
        let err = keys.verify(&token, NOW, 30, "other", "gatehouse");
        assert_eq!(rejection(err), TokenRejection::IssuerOrAudience);
        let err = keys.verify(&token, NOW, 30, "gatehouse", "other");
        assert_eq!(rejection(err), TokenRejection::IssuerOrAudience);
    }

    #[test]
    fn garbage_is_malformed() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        for junk in ["", "a.b", "a.b.c", "....", "eyJ.eyJ.sig", "ä.ö.ü"] {
            assert!(matches!(
                verify(&keys, junk, NOW),
                Err(Error::InvalidToken(_))
            ));
        }
    }

    #[test]
    fn previous_keys_verify_and_are_published() {
        let old = KeySet::new(&seed(7), &[]).unwrap();
        let token = old.sign(claims(), NOW, 900).unwrap();
        let keys = KeySet::new(&seed(1), &[old.public_key()]).unwrap();
        assert!(verify(&keys, &token, NOW).is_ok());
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(jwks["keys"][0]["kid"], keys.current_kid());
        assert_eq!(jwks["keys"][1]["kid"], old.current_kid());
        // New tokens are signed with the current key only.
        let fresh = keys.sign(claims(), NOW, 900).unwrap();
        assert!(verify(&old, &fresh, NOW).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let keys = KeySet::new(&seed(9), &[]).unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains(keys.current_kid()));
        assert!(!shown.contains(&b64url(&seed(9))));
        assert!(!shown.contains("9, 9, 9"));
    }

    fn sign_raw(keys: &KeySet, header: &str, payload: &serde_json::Value) -> String {
        let input = format!("{}.{}", part(header), part(&payload.to_string()));
        let signature = keys.signing.sign(input.as_bytes(), None);
        format!("{input}.{}", b64url(&signature[..]))
    }

    fn payload(extra: serde_json::Value) -> serde_json::Value {
        let mut p = serde_json::json!({
            "iss": "gatehouse", "aud": "gatehouse", "sub": "usr_a", "jti": "j", "roles": [],
            "iat": NOW / 1000, "exp": NOW / 1000 + 900,
        });
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    }

    #[test]
    fn raw_signing_matches_what_verify_expects() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let header = format!(
            r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#,
            keys.current_kid()
        );
        let token = sign_raw(&keys, &header, &payload(serde_json::json!({})));
        assert!(verify(&keys, &token, NOW).is_ok());
        let no_typ = format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, keys.current_kid());
        let token = sign_raw(&keys, &no_typ, &payload(serde_json::json!({})));
        assert_eq!(
            rejection(verify(&keys, &token, NOW)),
            TokenRejection::Claims
        );
    }

    #[test]
    fn future_nbf_and_crit_headers_are_refused() {
        let keys = KeySet::new(&seed(1), &[]).unwrap();
        let header = format!(
            r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#,
            keys.current_kid()
        );
        let nbf = payload(serde_json::json!({ "nbf": NOW / 1000 + 600 }));
        let token = sign_raw(&keys, &header, &nbf);
        assert_eq!(
            rejection(verify(&keys, &token, NOW)),
            TokenRejection::NotYetValid
        );
        assert!(verify(&keys, &token, NOW + 600_000).is_ok());
        let crit = format!(
            r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}","crit":["exp"]}}"#,
            keys.current_kid()
        );
        let token = sign_raw(&keys, &crit, &payload(serde_json::json!({})));
        assert_eq!(
            rejection(verify(&keys, &token, NOW)),
            TokenRejection::Claims
        );
        // A `crit` member is refused whatever its value, `null` and `[]` included.
        for value in ["null", "[]", "{}"] {
            let crit = format!(
                r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}","crit":{value}}}"#,
                keys.current_kid()
            );
            let token = sign_raw(&keys, &crit, &payload(serde_json::json!({})));
            assert_eq!(
                rejection(verify(&keys, &token, NOW)),
                TokenRejection::Claims,
                "crit: {value}"
            );
        }
    }
}
