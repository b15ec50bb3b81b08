//! WebAuthn (passkeys): the relying party's configuration and the two verifications, of a
//! registration (attestation) and of a login (assertion), as WebAuthn Level 3 §7 describes them.
//!
//! Pure: the challenge is looked up and used up by the caller (it is the store's
//! compare-and-set), which hands in the parsed client data; nothing here reads a clock or
//! storage. CBOR (the attestation object, COSE keys) is read with `ciborium`, ES256 signatures are verified
//! with RustCrypto's `p256` and EdDSA (Ed25519) ones with `ed25519-compact`: all pure Rust, the
//! same code natively and on wasm32.
//!
//! Accepted: ES256 (P-256) and EdDSA (Ed25519) credentials; `none` attestation and packed
//! self-attestation (no certificate chain). Anything else is refused with its own code.

use ciborium::Value;
use serde::Deserialize;

use crate::domain::vars::{get, Lookup};
use crate::primitives::cors::AllowedOrigins;
use crate::primitives::encoding::{b64url_decode, sha256};
use crate::primitives::error::{ConfigError, Error, WebAuthnRejection};

/// How long a ceremony's challenge may be answered, ms (5 minutes).
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;
/// Bytes of randomness in a challenge.
pub const CHALLENGE_BYTES: usize = 32;
/// COSE algorithm number of ES256.
pub const ALG_ES256: i64 = -7;
/// COSE algorithm number of EdDSA.
pub const ALG_EDDSA: i64 = -8;

/// Authenticator data flags (WebAuthn §6.1).
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;

fn refuse(why: WebAuthnRejection, detail: &'static str) -> Error {
    Error::WebAuthn(why, detail)
}

fn malformed(what: &str) -> Error {
    Error::BadRequest(format!("{what} is malformed"))
}

/// `WEBAUTHN_USER_VERIFICATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserVerification {
    /// The user-verified flag must be set (the default).
    Required,
    /// Asked for, not required: user presence is enough.
    Preferred,
}

impl UserVerification {
    /// The value of the options' `userVerification`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Preferred => "preferred",
        }
    }
}

/// The relying party: who passkeys are made for and where they may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// `WEBAUTHN_RP_ID`: a host name, lower-case.
    pub id: String,
    /// `WEBAUTHN_RP_NAME` (default: the RP ID).
    pub name: String,
    /// `WEBAUTHN_ORIGINS` (default: those of `ALLOWED_ORIGINS` on the RP ID): the origins a
    /// ceremony may run on.
    pub origins: Vec<String>,
    /// `WEBAUTHN_USER_VERIFICATION`: `required` (default) or `preferred`.
    pub user_verification: UserVerification,
}

/// The host of an origin `scheme://host[:port]` (already checked by [`AllowedOrigins`]).
fn origin_host(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    if rest.starts_with('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| &h[1..]);
    }
    rest.rsplit_once(':').map_or(rest, |(h, _)| h)
}

/// Whether a passkey of RP ID `rp_id` may be used on `origin`: the origin's host is the RP ID
/// or one of its subdomains, over https (http only on `localhost`).
fn origin_fits(origin: &str, rp_id: &str) -> bool {
    let host = origin_host(origin);
    let on_rp = host == rp_id || host.ends_with(&format!(".{rp_id}"));
    let secure =
        origin.starts_with("https://") || host == "localhost" || host.ends_with(".localhost");
    on_rp && secure
}

impl RelyingParty {
    /// Reads `WEBAUTHN_*`; `None` (passkeys off) when `WEBAUTHN_RP_ID` is unset. Every error
    /// names its variable.
    pub fn parse(lookup: Lookup<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(id) = get(lookup, "WEBAUTHN_RP_ID") else {
            for var in [
                "WEBAUTHN_RP_NAME",
                "WEBAUTHN_ORIGINS",
                "WEBAUTHN_USER_VERIFICATION",
            ] {
                if get(lookup, var).is_some() {
                    return Err(ConfigError::new(
                        var,
                        "set without WEBAUTHN_RP_ID, which switches passkeys on",
                    ));
                }
            }
            return Ok(None);
        };
        let id = id.to_ascii_lowercase();
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if id.len() > 253 || !id.split('.').all(valid_label) {
            return Err(ConfigError::new(
                "WEBAUTHN_RP_ID",
                format!("{id:?} is not a host name (e.g. example.com, no scheme or port)"),
            ));
        }
        let name = get(lookup, "WEBAUTHN_RP_NAME").unwrap_or_else(|| id.clone());
        if name.chars().count() > 64 {
            return Err(ConfigError::new(
                "WEBAUTHN_RP_NAME",
                "longer than 64 characters",
            ));
        }
        let origins = match get(lookup, "WEBAUTHN_ORIGINS") {
            Some(raw) => {
                let listed = AllowedOrigins::parse(Some(&raw))
                    .map_err(|e| ConfigError::new("WEBAUTHN_ORIGINS", e.reason))?;
                if let Some(bad) = listed.list().iter().find(|o| !origin_fits(o, &id)) {
                    return Err(ConfigError::new(
                        "WEBAUTHN_ORIGINS",
                        format!(
                            "{bad:?} is not on WEBAUTHN_RP_ID {id:?} over https (http only on localhost)"
                        ),
                    ));
                }
                listed.list().to_vec()
            }
            None => {
                // ALLOWED_ORIGINS is checked (and its errors reported) by the browser section.
                let allowed = AllowedOrigins::parse(get(lookup, "ALLOWED_ORIGINS").as_deref())
                    .unwrap_or_default();
                allowed
                    .list()
                    .iter()
                    .filter(|o| origin_fits(o, &id))
                    .cloned()
                    .collect()
            }
        };
        if origins.is_empty() {
            return Err(ConfigError::new(
                "WEBAUTHN_ORIGINS",
                format!("no origin on WEBAUTHN_RP_ID {id:?}: list the site's origins (e.g. https://{id})"),
            ));
        }
        let user_verification = match get(lookup, "WEBAUTHN_USER_VERIFICATION")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("required") => UserVerification::Required,
            Some("preferred") => UserVerification::Preferred,
            Some(other) => {
                return Err(ConfigError::new(
                    "WEBAUTHN_USER_VERIFICATION",
                    format!("expected required or preferred, got {other:?}"),
                ))
            }
        };
        Ok(Some(Self {
            id,
            name,
            origins,
            user_verification,
        }))
    }
}

/// Which ceremony a challenge and a client data belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    /// Creating a passkey for a signed-in user.
    Register,
    /// Signing in with a passkey.
    Login,
    /// A passkey as the second factor of a password login.
    SecondFactor,
    /// A signed-in user showing one of their passkeys again before a sensitive change.
    Reauthenticate,
}

impl Ceremony {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::SecondFactor => "second_factor",
            Self::Reauthenticate => "reauthenticate",
        }
    }

    fn client_data_type(self) -> &'static str {
        match self {
            Self::Register => "webauthn.create",
            Self::Login | Self::SecondFactor | Self::Reauthenticate => "webauthn.get",
        }
    }
}

/// What the browser says it signed (`clientDataJSON`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientData {
    /// `type`.
    pub kind: String,
    /// The challenge, decoded.
    pub challenge: Vec<u8>,
    /// `origin`.
    pub origin: String,
    /// `crossOrigin`.
    pub cross_origin: bool,
}

#[derive(Deserialize)]
struct RawClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

impl ClientData {
    /// Parses `clientDataJSON` (its bytes). Extra members are ignored, as the spec asks.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        let raw: RawClientData =
            serde_json::from_slice(json).map_err(|_| malformed("response.clientDataJSON"))?;
        let challenge = b64url_decode(&raw.challenge)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| malformed("response.clientDataJSON's challenge"))?;
        Ok(Self {
            kind: raw.kind,
            challenge,
            origin: raw.origin,
            cross_origin: raw.cross_origin.unwrap_or(false),
        })
    }

    /// Checks the type against the ceremony and the origin against the relying party's.
    pub fn check(&self, rp: &RelyingParty, ceremony: Ceremony) -> Result<(), Error> {
        if self.kind != ceremony.client_data_type() {
            return Err(Error::BadRequest(format!(
                "response.clientDataJSON's type must be {}",
                ceremony.client_data_type()
            )));
        }
        if !rp.origins.iter().any(|o| o == &self.origin) {
            return Err(refuse(
                WebAuthnRejection::OriginMismatch,
                "origin not in WEBAUTHN_ORIGINS",
            ));
        }
        if self.cross_origin {
            return Err(refuse(
                WebAuthnRejection::OriginMismatch,
                "ceremony ran in a cross-origin frame",
            ));
        }
        Ok(())
    }
}

/// A credential's attested data (in a registration's authenticator data).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attested {
    aaguid: [u8; 16],
    credential_id: Vec<u8>,
    /// The COSE_Key, as its bytes.
    public_key: Vec<u8>,
}

/// Authenticator data (WebAuthn §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthData {
    rp_id_hash: [u8; 32],
    flags: u8,
    sign_count: u32,
    attested: Option<Attested>,
}

/// How many bytes the one CBOR item at the start of `bytes` takes.
fn cbor_item_len(bytes: &[u8]) -> Option<usize> {
    let mut rest = bytes;
    let _: Value = ciborium::de::from_reader(&mut rest).ok()?;
    Some(bytes.len() - rest.len())
}

impl AuthData {
    fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = || malformed("authenticator data");
        if bytes.len() < 37 {
            return Err(bad());
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = bytes[32];
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let attested = if flags & FLAG_AT != 0 {
            let rest = &bytes[37..];
            if rest.len() < 18 {
                return Err(bad());
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            if id_len == 0 || id_len > 1023 || rest.len() < 18 + id_len {
                return Err(bad());
            }
            let credential_id = rest[18..18 + id_len].to_vec();
            let key_bytes = &rest[18 + id_len..];
            let key_len = cbor_item_len(key_bytes).ok_or_else(bad)?;
            Some(Attested {
                aaguid,
                credential_id,
                public_key: key_bytes[..key_len].to_vec(),
            })
        } else {
            None
        };
        Ok(Self {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }

    /// The RP ID hash and the user-present / user-verified flags.
    fn check(&self, rp: &RelyingParty) -> Result<(), Error> {
        if self.rp_id_hash != sha256(rp.id.as_bytes()) {
            return Err(refuse(
                WebAuthnRejection::RpIdMismatch,
                "rpIdHash is not SHA-256 of WEBAUTHN_RP_ID",
            ));
        }
        if self.flags & FLAG_BS != 0 && self.flags & FLAG_BE == 0 {
            // WebAuthn §6.1: a credential that cannot be backed up is never backed up.
            return Err(malformed(
                "authenticator data (backed up, not backup eligible)",
            ));
        }
        if self.flags & FLAG_UP == 0 {
            return Err(refuse(
                WebAuthnRejection::UserNotVerified,
                "user-present flag not set",
            ));
        }
        if rp.user_verification == UserVerification::Required && self.flags & FLAG_UV == 0 {
            return Err(refuse(
                WebAuthnRejection::UserNotVerified,
                "user-verified flag not set",
            ));
        }
        Ok(())
    }
}

/// A credential public key that Gatehouse can verify with.
#[derive(Debug, Clone)]
pub enum PublicKey {
    /// ES256: ECDSA over P-256 with SHA-256, DER signatures.
    Es256(p256::ecdsa::VerifyingKey),
    /// EdDSA over Ed25519.
    Ed25519(ed25519_compact::PublicKey),
}

/// COSE_Key labels and values (RFC 9052 §7, RFC 9053).
mod cose {
    pub const KTY: i64 = 1;
    pub const ALG: i64 = 3;
    pub const CRV: i64 = -1;
    pub const X: i64 = -2;
    pub const Y: i64 = -3;
    pub const KTY_OKP: i64 = 1;
    pub const KTY_EC2: i64 = 2;
    pub const CRV_P256: i64 = 1;
    pub const CRV_ED25519: i64 = 6;
}

impl PublicKey {
    /// Reads a COSE_Key (RFC 9052 §7): an EC2 P-256 key with `alg` ES256, or an OKP Ed25519 key
    /// with `alg` EdDSA. Returns the key and its COSE algorithm. A map with a repeated or
    /// non-integer label, or bytes after it, is malformed.
    pub fn from_cose(bytes: &[u8]) -> Result<(Self, i64), Error> {
        let bad = || malformed("the credential public key");
        let unsupported = |detail| refuse(WebAuthnRejection::AlgorithmUnsupported, detail);
        let mut rest = bytes;
        let value: Value = ciborium::de::from_reader(&mut rest).map_err(|_| bad())?;
        let (Value::Map(entries), true) = (value, rest.is_empty()) else {
            return Err(bad());
        };
        let mut labels = Vec::with_capacity(entries.len());
        for (label, _) in &entries {
            let label = match label {
                Value::Integer(i) => i64::try_from(*i).map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            if labels.contains(&label) {
                return Err(bad());
            }
            labels.push(label);
        }
        let get = |label: i64| {
            labels
                .iter()
                .position(|l| *l == label)
                .map(|i| &entries[i].1)
        };
        let int = |label| match get(label) {
            Some(Value::Integer(i)) => i64::try_from(*i).ok(),
            _ => None,
        };
        let coordinate = |label| match get(label) {
            Some(Value::Bytes(b)) => <[u8; 32]>::try_from(b.as_slice()).ok(),
            _ => None,
        };
        match (int(cose::KTY), int(cose::ALG)) {
            (Some(cose::KTY_EC2), Some(ALG_ES256)) => {
                if int(cose::CRV) != Some(cose::CRV_P256) {
                    return Err(unsupported("ES256 key not on P-256"));
                }
                let (Some(x), Some(y)) = (coordinate(cose::X), coordinate(cose::Y)) else {
                    return Err(bad());
                };
                let mut sec1 = [0u8; 65];
                sec1[0] = 0x04;
                sec1[1..33].copy_from_slice(&x);
                sec1[33..].copy_from_slice(&y);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| bad())?;
                Ok((Self::Es256(key), ALG_ES256))
            }
            (Some(cose::KTY_OKP), Some(ALG_EDDSA)) => {
                if int(cose::CRV) != Some(cose::CRV_ED25519) {
                    return Err(unsupported("EdDSA key not on Ed25519"));
                }
                let x = coordinate(cose::X).ok_or_else(bad)?;
                let key = ed25519_compact::PublicKey::from_slice(&x).map_err(|_| bad())?;
                Ok((Self::Ed25519(key), ALG_EDDSA))
            }
            (None, _) => Err(bad()),
            (Some(_), Some(ALG_ES256 | ALG_EDDSA)) => {
                Err(unsupported("key type does not match its alg"))
            }
            (Some(_), _) => Err(unsupported("COSE alg is not ES256 or EdDSA")),
        }
    }

    /// Whether `signature` signs `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Es256(key) => {
                use p256::ecdsa::signature::Verifier;
                p256::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
            Self::Ed25519(key) => ed25519_compact::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        }
    }
}

/// `authenticatorData ‖ SHA-256(clientDataJSON)`: what an assertion or a self-attestation signs.
fn signed_message(auth_data: &[u8], client_data_json: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(auth_data.len() + 32);
    message.extend_from_slice(auth_data);
    message.extend_from_slice(&sha256(client_data_json));
    message
}

/// A credential that passed registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// Its COSE_Key, as registered.
    pub public_key: Vec<u8>,
    /// Its COSE algorithm ([`ALG_ES256`] or [`ALG_EDDSA`]).
    pub algorithm: i64,
    /// The signature counter at registration.
    pub sign_count: u32,
    /// The authenticator model's AAGUID (all zero when not told).
    pub aaguid: [u8; 16],
    /// Backup eligible (a synced passkey can be).
    pub backup_eligible: bool,
    /// Backed up now.
    pub backed_up: bool,
    /// `none` or `self`.
    pub attestation: &'static str,
}

fn map_get<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == name))
        .map(|(_, v)| v)
}

/// Verifies a registration's `attestationObject` (WebAuthn §7.1, steps 12 on) for client data
/// whose challenge the caller has matched and used up. `client_data` must be the parse of
/// `client_data_json`.
pub fn verify_registration(
    rp: &RelyingParty,
    client_data: &ClientData,
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<NewCredential, Error> {
    client_data.check(rp, Ceremony::Register)?;
    let bad = || malformed("response.attestationObject");
    let object: Value = ciborium::de::from_reader(attestation_object).map_err(|_| bad())?;
    let Value::Map(object) = object else {
        return Err(bad());
    };
    let (Some(Value::Text(fmt)), Some(Value::Map(statement)), Some(Value::Bytes(auth_bytes))) = (
        map_get(&object, "fmt"),
        map_get(&object, "attStmt"),
        map_get(&object, "authData"),
    ) else {
        return Err(bad());
    };
    let auth = AuthData::parse(auth_bytes)?;
    auth.check(rp)?;
    let Some(attested) = auth.attested else {
        return Err(malformed("authenticator data (no attested credential)"));
    };
    let (key, algorithm) = PublicKey::from_cose(&attested.public_key)?;
    let attestation = match fmt.as_str() {
        "none" if statement.is_empty() => "none",
        "none" => return Err(bad()),
        "packed" => {
            if map_get(statement, "x5c").is_some() {
                return Err(refuse(
                    WebAuthnRejection::AttestationUnsupported,
                    "packed attestation with a certificate chain",
                ));
            }
            let (Some(Value::Integer(alg)), Some(Value::Bytes(sig))) =
                (map_get(statement, "alg"), map_get(statement, "sig"))
            else {
                return Err(bad());
            };
            if i128::from(*alg) != i128::from(algorithm) {
                return Err(refuse(
                    WebAuthnRejection::AlgorithmUnsupported,
                    "self-attestation alg differs from the credential's",
                ));
            }
            if !key.verifies(&signed_message(auth_bytes, client_data_json), sig) {
                return Err(refuse(
                    WebAuthnRejection::SignatureInvalid,
                    "self-attestation signature",
                ));
            }
            "self"
        }
        _ => {
            return Err(refuse(
                WebAuthnRejection::AttestationUnsupported,
                "attestation format not none or packed",
            ))
        }
    };
    Ok(NewCredential {
        credential_id: attested.credential_id,
        public_key: attested.public_key,
        algorithm,
        sign_count: auth.sign_count,
        aaguid: attested.aaguid,
        backup_eligible: auth.flags & FLAG_BE != 0,
        backed_up: auth.flags & FLAG_BS != 0,
        attestation,
    })
}

/// A login's assertion that verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    /// The authenticator's signature counter now.
    pub sign_count: u32,
    /// Backed up now.
    pub backed_up: bool,
}

/// Verifies a login's assertion (WebAuthn §7.2, steps 11 on) against the registered COSE key,
/// for client data whose challenge the caller has matched and used up. The counter is left to
/// [`counter_advanced`].
pub fn verify_assertion(
    rp: &RelyingParty,
    client_data: &ClientData,
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
    public_key: &[u8],
) -> Result<Asserted, Error> {
    client_data.check(rp, Ceremony::Login)?;
    let auth = AuthData::parse(authenticator_data)?;
    auth.check(rp)?;
    let (key, _) = PublicKey::from_cose(public_key)?;
    if !key.verifies(
        &signed_message(authenticator_data, client_data_json),
        signature,
    ) {
        return Err(refuse(
            WebAuthnRejection::SignatureInvalid,
            "assertion signature",
        ));
    }
    Ok(Asserted {
        sign_count: auth.sign_count,
        backed_up: auth.flags & FLAG_BS != 0,
    })
}

/// Whether a presented signature counter is acceptable after `stored` (WebAuthn §7.2 step 22):
/// both zero (an authenticator without a counter), or greater than the stored one.
pub fn counter_advanced(stored: i64, presented: u32) -> bool {
    (stored == 0 && presented == 0) || i64::from(presented) > stored
}

#[cfg(test)]
mod tests;
