//! Properties of access tokens (`domain::token`): what the key set signs verifies exactly within
//! its lifetime (with leeway); any change to a token, another algorithm, a `crit` header, a
//! missing `typ`, another issuer or audience is refused; nothing panics on arbitrary input; the
//! verify cache answers as a fresh verification would.

mod common;

use std::sync::LazyLock;

use ed25519_compact::{KeyPair, Seed};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use gatehouse::domain::token::{thumbprint, AccessClaims, KeySet, VerifiedAccess, VerifyCache};
use gatehouse::primitives::encoding::{b64url, b64url_decode};
use gatehouse::primitives::error::{Error, TokenRejection};

const ISSUER: &str = "gatehouse";
const AUDIENCE: &str = "site";
/// The seed of the signing key, of a previous key still accepted, and of a stranger's key.
const CURRENT: [u8; 32] = [1; 32];
const PREVIOUS: [u8; 32] = [7; 32];
const STRANGER: [u8; 32] = [2; 32];
/// Instants between 2024 and 2030, in ms.
const EPOCH_MS: std::ops::Range<i64> = 1_700_000_000_000..1_900_000_000_000;

struct Keys {
    /// The verifier: the current key, and the previous one kept for rotation.
    set: KeySet,
    /// The previous key, as it signed before the rotation.
    previous: KeySet,
    current_pair: KeyPair,
    stranger_pair: KeyPair,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let previous = KeySet::new(&PREVIOUS, &[]).unwrap();
    Keys {
        set: KeySet::new(&CURRENT, &[previous.public_key()]).unwrap(),
        previous,
        current_pair: KeyPair::from_seed(Seed::new(CURRENT)),
        stranger_pair: KeyPair::from_seed(Seed::new(STRANGER)),
    }
});

fn verify(token: &str, now_ms: i64, leeway: i64) -> Result<VerifiedAccess, Error> {
    KEYS.set.verify(token, now_ms, leeway, ISSUER, AUDIENCE)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9_]{1,12}",
        1 => "\\PC{0,12}",
    ]
}

fn claims() -> impl Strategy<Value = AccessClaims> {
    (
        text(),
        text(),
        proptest::collection::vec("[a-z][a-z0-9_.-]{0,8}", 0..4),
        proptest::option::of(text()),
    )
        .prop_map(|(sub, jti, roles, sid)| AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub,
            jti,
            roles,
            sid,
            act: None,
            scope: None,
            routes: None,
        })
}

/// A token signed with the signing key's seed over `header` and `payload` exactly as given.
fn sign_raw(pair: &KeyPair, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    );
    let signature = pair.sk.sign(input.as_bytes(), None);
    format!("{input}.{}", b64url(&signature[..]))
}

fn good_header(kid: &str) -> Map<String, Value> {
    let mut header = Map::new();
    header.insert("alg".into(), json!("EdDSA"));
    header.insert("typ".into(), json!("JWT"));
    header.insert("kid".into(), json!(kid));
    header
}

fn good_payload(iat_secs: i64, ttl: i64) -> Map<String, Value> {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "usr_a", "jti": "j", "roles": ["user"],
        "iat": iat_secs, "exp": iat_secs + ttl,
    })
    .as_object()
    .unwrap()
    .clone()
}

fn current_kid() -> String {
    thumbprint(&KEYS.current_pair.pk)
}

/// Small JSON values of every type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What verifying a token issued at `iat` (s) expiring at `exp` (s) at `now_ms` must answer:
/// expired after `exp + leeway`, not yet valid before `iat - leeway`, else accepted.
fn expected_time_verdict(iat: i64, exp: i64, now_ms: i64, leeway: i64) -> Result<(), Error> {
    let now = now_ms.div_euclid(1000);
    if now > exp + leeway {
        Err(Error::ExpiredToken)
    } else if iat > now + leeway {
        Err(Error::InvalidToken(TokenRejection::NotYetValid))
    } else {
        Ok(())
    }
}

/// An instant near one of the edges of a token's validity (or anywhere in between).
fn instant_near(iat: i64, exp: i64, leeway: i64) -> impl Strategy<Value = i64> {
    let edges = [iat - leeway, exp + leeway, iat, exp];
    prop_oneof![
        (proptest::sample::select(edges.to_vec()), -3_000i64..3_000)
            .prop_map(|(edge, jitter)| edge * 1000 + jitter),
        ((iat - leeway - 100) * 1000..(exp + leeway + 100) * 1000),
    ]
}

/// How a token's text is changed: at a position, replace, insert or delete a character.
#[derive(Debug, Clone)]
enum Edit {
    Replace(proptest::sample::Index, char),
    Insert(proptest::sample::Index, char),
    Delete(proptest::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        8 => proptest::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect::<Vec<_>>()
        ),
        1 => proptest::sample::select(vec!['.', '=', '+', '/', ' ', '\0']),
        1 => any::<char>(),
    ];
    prop_oneof![
        (any::<proptest::sample::Index>(), c.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<proptest::sample::Index>(), c).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<proptest::sample::Index>().prop_map(Edit::Delete),
    ]
}

fn apply(token: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    for e in edits {
        match e {
            Edit::Replace(i, c) if !chars.is_empty() => {
                let i = i.index(chars.len());
                chars[i] = *c;
            }
            Edit::Insert(i, c) => {
                let i = i.index(chars.len() + 1);
                chars.insert(i, *c);
            }
            Edit::Delete(i) if !chars.is_empty() => {
                let i = i.index(chars.len());
                chars.remove(i);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(common::prop::config())]

    /// A token the key set signs (with the current key, or with the previous key before the
    /// rotation) verifies exactly while `iat - leeway <= now <= exp + leeway`, to its claims.
    #[test]
    fn signed_tokens_verify_exactly_within_their_lifetime(
        claims in claims(),
        (iat_ms, ttl, leeway, now_ms) in (EPOCH_MS, 0i64..100_000, 0i64..=300)
            .prop_flat_map(|(iat_ms, ttl, leeway)| {
                let iat = iat_ms.div_euclid(1000);
                (Just(iat_ms), Just(ttl), Just(leeway), instant_near(iat, iat + ttl, leeway))
            }),
        by_previous in proptest::bool::weighted(0.2),
    ) {
        let signer = if by_previous { &KEYS.previous } else { &KEYS.set };
        let token = signer.sign(claims.clone(), iat_ms, ttl).unwrap();
        let iat = iat_ms.div_euclid(1000);
        let got = verify(&token, now_ms, leeway);
        match expected_time_verdict(iat, iat + ttl, now_ms, leeway) {
            Ok(()) => {
                let verified = got.unwrap();
                prop_assert_eq!(verified.claims, claims);
                prop_assert_eq!(verified.expires_at, iat + ttl);
                prop_assert_eq!(verified.valid_from, iat);
            }
            Err(expected) => prop_assert_eq!(got, Err(expected)),
        }
    }

    /// Replacing, inserting or deleting any characters of a signed token gets it refused as
    /// `invalid_token`, whatever the part changed.
    #[test]
    fn any_change_to_a_signed_token_is_refused(
        claims in claims(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let token = KEYS.set.sign(claims, EPOCH_MS.start, 900).unwrap();
        let changed = apply(&token, &edits);
        prop_assume!(changed != token);
        let got = verify(&changed, EPOCH_MS.start, 30);
        prop_assert!(matches!(got, Err(Error::InvalidToken(_))), "{changed:?}: {got:?}");
    }

    /// Flipping any bit of the decoded header, payload or signature (re-encoded as valid
    /// base64url) gets the token refused; a changed signature always as a bad signature.
    #[test]
    fn a_flipped_bit_in_any_part_is_refused(
        claims in claims(),
        part in 0usize..3,
        byte in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let token = KEYS.set.sign(claims, EPOCH_MS.start, 900).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut bytes = b64url_decode(&parts[part]).unwrap();
        let i = byte.index(bytes.len());
        bytes[i] ^= 1 << bit;
        parts[part] = b64url(&bytes);
        let got = verify(&parts.join("."), EPOCH_MS.start, 30);
        if part == 2 {
            prop_assert_eq!(got, Err(Error::InvalidToken(TokenRejection::Signature)));
        } else {
            prop_assert!(matches!(got, Err(Error::InvalidToken(_))), "{got:?}");
        }
    }

    /// Correctly signed by the signing key, a token is accepted only with `alg` `EdDSA`, `typ`
    /// `JWT`, the key's `kid` and no `crit` member (whatever its value); other header members
    /// change nothing.
    #[test]
    fn only_a_plain_eddsa_header_is_accepted(
        alg in prop_oneof![
            3 => Just("EdDSA".to_string()),
            1 => proptest::sample::select(vec!["none", "HS256", "RS256", "ES256", "eddsa", "EDDSA", "Ed25519", "EdDSA ", ""])
                .prop_map(str::to_string),
            1 => "\\PC{0,8}",
        ],
        typ in prop_oneof![
            3 => Just(Some("JWT".to_string())),
            1 => Just(None),
            1 => proptest::option::of(prop_oneof![Just("jwt".to_string()), Just("at+jwt".to_string()), "\\PC{0,6}"]),
        ],
        kid in prop_oneof![
            4 => Just(None),
            1 => Just(Some("previous")),
            1 => Just(Some("absent")),
            1 => Just(Some("other")),
        ],
        crit in proptest::option::weighted(0.3, json_value()),
        extra in proptest::collection::btree_map("ext_[a-z]{1,4}", json_value(), 0..3),
    ) {
        let mut header = good_header(&current_kid());
        header.insert("alg".into(), json!(alg));
        match &typ {
            Some(t) => header.insert("typ".into(), json!(t)),
            None => header.remove("typ"),
        };
        match kid {
            None => {}
            Some("previous") => {
                header.insert("kid".into(), json!(KEYS.previous.current_kid()));
            }
            Some("absent") => {
                header.remove("kid");
            }
            Some(_) => {
                header.insert("kid".into(), json!("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"));
            }
        }
        if let Some(c) = &crit {
            header.insert("crit".into(), c.clone());
        }
        header.extend(extra);
        let now = EPOCH_MS.start;
        let payload = Value::Object(good_payload(now / 1000, 900)).to_string();
        let token = sign_raw(&KEYS.current_pair, &Value::Object(header).to_string(), &payload);
        let got = verify(&token, now, 30);
        let rejection = match got {
            Ok(_) => None,
            Err(Error::InvalidToken(why)) => Some(why),
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        let expected = if alg != "EdDSA" {
            Some(TokenRejection::Algorithm)
        } else if matches!(kid, Some("absent" | "other")) {
            Some(TokenRejection::UnknownKey)
        } else if kid == Some("previous") {
            Some(TokenRejection::Signature)
        } else if typ.as_deref() != Some("JWT") || crit.is_some() {
            Some(TokenRejection::Claims)
        } else {
            None
        };
        prop_assert_eq!(rejection, expected);
    }

    /// A token signed by a key outside the set is refused even when its header names a key of
    /// the set, and never reaches the claim checks.
    #[test]
    fn a_strangers_signature_is_refused(
        name_current in any::<bool>(),
        iss in prop_oneof![Just(ISSUER.to_string()), text()],
    ) {
        let kid = if name_current { current_kid() } else { thumbprint(&KEYS.stranger_pair.pk) };
        let now = EPOCH_MS.start;
        let mut payload = good_payload(now / 1000, 900);
        payload.insert("iss".into(), json!(iss));
        let token = sign_raw(
            &KEYS.stranger_pair,
            &Value::Object(good_header(&kid)).to_string(),
            &Value::Object(payload).to_string(),
        );
        let expected = if name_current { TokenRejection::Signature } else { TokenRejection::UnknownKey };
        prop_assert_eq!(verify(&token, now, 30), Err(Error::InvalidToken(expected)));
    }

    /// Validly signed claims of any shape: whatever is accepted names this issuer and audience,
    /// has every claim of the right type and its times within the leeway; another issuer or
    /// audience on otherwise good claims is refused as such. Nothing panics.
    #[test]
    fn accepted_claims_are_complete_and_for_this_gateway(
        changes in proptest::collection::btree_map(
            proptest::sample::select(vec!["iss", "aud", "sub", "jti", "roles", "sid", "iat", "exp", "nbf"]),
            proptest::option::of(prop_oneof![
                2 => json_value(),
                1 => (EPOCH_MS.start / 1000 - 1_000..EPOCH_MS.start / 1000 + 1_000).prop_map(Value::from),
                1 => proptest::sample::select(vec![ISSUER, AUDIENCE, "other"]).prop_map(Value::from),
                1 => Just(json!(["user", "admin"])),
            ]),
            0..4,
        ),
        leeway in 0i64..=300,
    ) {
        let now = EPOCH_MS.start;
        let mut payload = good_payload(now / 1000, 900);
        for (name, value) in &changes {
            match value {
                Some(v) => payload.insert(name.to_string(), v.clone()),
                None => payload.remove(*name),
            };
        }
        let token = sign_raw(
            &KEYS.current_pair,
            &Value::Object(good_header(&current_kid())).to_string(),
            &Value::Object(payload.clone()).to_string(),
        );
        let got = verify(&token, now, leeway);
        // Timestamps are whole seconds; jwt-compact truncates a fractional one.
        let secs = |name: &str| {
            payload.get(name).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        };
        match &got {
            Ok(v) => {
                prop_assert_eq!(payload.get("iss"), Some(&json!(ISSUER)));
                prop_assert_eq!(payload.get("aud"), Some(&json!(AUDIENCE)));
                prop_assert_eq!(payload.get("sub"), Some(&json!(v.claims.sub)));
                prop_assert_eq!(payload.get("jti"), Some(&json!(v.claims.jti)));
                prop_assert_eq!(payload.get("roles"), Some(&json!(v.claims.roles)));
                let sid = payload.get("sid").filter(|s| !s.is_null()).cloned();
                prop_assert_eq!(sid, v.claims.sid.as_ref().map(|s| json!(s)));
                let (iat, exp) = (secs("iat").unwrap(), secs("exp").unwrap());
                prop_assert!(iat <= now / 1000 + leeway && now / 1000 <= exp + leeway);
                prop_assert!(payload.get("nbf").is_none_or(|_| secs("nbf").is_some_and(|nbf| nbf <= now / 1000 + leeway)));
                prop_assert_eq!(v.expires_at, exp);
            }
            Err(Error::InvalidToken(_) | Error::ExpiredToken) => {}
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
        let only_names_changed = changes.iter().all(|(name, v)| {
            matches!(*name, "iss" | "aud") && v.as_ref().is_some_and(Value::is_string)
        });
        let foreign = payload.get("iss") != Some(&json!(ISSUER))
            || payload.get("aud") != Some(&json!(AUDIENCE));
        if only_names_changed && foreign {
            prop_assert_eq!(got, Err(Error::InvalidToken(TokenRejection::IssuerOrAudience)));
        }
    }

    /// Arbitrary text, and three arbitrary base64url parts, are refused without a panic.
    #[test]
    fn arbitrary_strings_never_verify(
        junk in prop_oneof![
            any::<String>(),
            common::prop::pieces(&["eyJ", ".", "..", "A", "_", "-", "=", "e30", "bnVsbA", "W10"], 0..12),
            (json_value(), json_value(), proptest::collection::vec(any::<u8>(), 0..70)).prop_map(|(h, p, s)| {
                format!("{}.{}.{}", b64url(h.to_string().as_bytes()), b64url(p.to_string().as_bytes()), b64url(&s))
            }),
        ],
        now in EPOCH_MS,
    ) {
        let got = verify(&junk, now, 30);
        prop_assert!(matches!(got, Err(Error::InvalidToken(_))), "{got:?}");
    }

    /// The verify cache, over any sequence of tokens and instants, answers exactly as a fresh
    /// verification: a remembered success never outlives its token's times.
    #[test]
    fn the_verify_cache_answers_as_a_fresh_verification(
        steps in proptest::collection::vec((0usize..POOL, -400i64..1_400), 1..6),
        leeway in 0i64..=60,
    ) {
        let cache = VerifyCache::default();
        for (which, offset_secs) in steps {
            let (token, iat, exp, ours) = &TOKEN_POOL[which];
            let now = (POOL_IAT + offset_secs) * 1000 + (offset_secs.rem_euclid(7) * 137);
            let got = cache.verify(&KEYS.set, token, now, leeway, ISSUER, AUDIENCE);
            let expected = if *ours {
                expected_time_verdict(*iat, *exp, now, leeway)
            } else {
                // Another audience: refused whenever the times hold.
                expected_time_verdict(*iat, *exp, now, leeway)
                    .and(Err(Error::InvalidToken(TokenRejection::IssuerOrAudience)))
            };
            match expected {
                Ok(()) => prop_assert_eq!(got.map(|v| v.expires_at), Ok(*exp)),
                Err(e) => prop_assert_eq!(got, Err(e)),
            }
        }
    }
}

const POOL: usize = 6;
const POOL_IAT: i64 = 1_800_000_000;

/// Tokens signed once for the cache property: (token, iat, exp, for this audience).
static TOKEN_POOL: LazyLock<Vec<(String, i64, i64, bool)>> = LazyLock::new(|| {
    (0..POOL as i64)
        .map(|i| {
            let iat = POOL_IAT + i * 150;
            let ttl = 60 + i * 100;
            let ours = i != 3;
            let claims = AccessClaims {
                iss: ISSUER.into(),
                aud: if ours {
                    AUDIENCE.into()
                } else {
                    "other".into()
                },
                sub: format!("usr_{i}"),
                jti: format!("j{i}"),
                roles: vec![],
                sid: None,
                act: None,
                scope: None,
                routes: None,
            };
            let token = KEYS.set.sign(claims, iat * 1000, ttl).unwrap();
            (token, iat, iat + ttl, ours)
        })
        .collect()
});
