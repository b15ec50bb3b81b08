//! The WebAuthn Level 3 test vectors (§16.2 `none` ES256, §16.3 packed self-attestation ES256),
//! a registration and login recorded from Chromium's virtual authenticator, and a software
//! authenticator (P-256 and Ed25519) for every refusal.

use ciborium::Value;

use super::*;
use crate::primitives::encoding::{b64url, hex_decode};

fn h(s: &str) -> Vec<u8> {
    hex_decode(s).expect("hex")
}

fn example_org(uv: UserVerification) -> RelyingParty {
    RelyingParty {
        id: "example.org".into(),
        name: "Example".into(),
        origins: vec!["https://example.org".into()],
        user_verification: uv,
    }
}

fn code(err: Error) -> &'static str {
    err.code()
}

// §16.2: ES256 credential with no attestation.
const NONE_REG_CDJ: &str = "7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765223a22414d4d507434557878475453746e63647134313759447742466938767049612d7077386f4f755657345441222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a20426b5165446a646354427258426941774a544c453551227d";
const NONE_REG_ATT: &str = "a363666d74646e6f6e656761747453746d74a068617574684461746158a4bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b559000000008446ccb9ab1db374750b2367ff6f3a1f0020f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220";
const NONE_AUTH_AD: &str =
    "bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b51900000000";
const NONE_AUTH_CDJ: &str = "7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a224f63446e55685158756c5455506f334a5558543049393770767a7a59425039745a63685879617630314167222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73657d";
const NONE_AUTH_SIG: &str = "3046022100f50a4e2e4409249c4a853ba361282f09841df4dd4547a13a87780218deffcd380221008480ac0f0b93538174f575bf11a1dd5d78c6e486013f937295ea13653e331e87";

// §16.3: ES256 credential with packed self-attestation.
const PACKED_REG_CDJ: &str = "7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765223a2265476e4374334c55745936366b336a506a796e6962506b31716e666644616966715a774c33417032392d55222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a205539685458764b453255526b4d6e625f307859485667227d";
const PACKED_REG_ATT: &str = "a363666d74667061636b65646761747453746d74a263616c672663736967584630440220067a20754ab925005dbf378097c92120031581c73228d1fb4f5b881bcd7da98302207fc7b147558c7c0eba3af18bd9d121fa3d3a26d17fe3f220272178f473b6006d68617574684461746158a4bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b55d00000000df850e09db6afbdfab51697791506cfc0020455ef34e2043a87db3d4afeb39bbcb6cc32df9347c789a865ecdca129cbef58ca5010203262001215820eb151c8176b225cc651559fecf07af450fd85802046656b34c18f6cf193843c5225820927b8aa427a2be1b8834d233a2d34f61f13bfd44119c325d5896e183fee484f2";
const PACKED_AUTH_AD: &str =
    "bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b50900000000";
const PACKED_AUTH_CDJ: &str = "7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a225248696843784e534e493352594d45314f7731476d3132786e726b634a5f6666707637546e2d4a71386773222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a206754623533727a36456853576f6d58477a696d433151227d";
const PACKED_AUTH_SIG: &str = "304402203310b9431903c401f1be2bdc8d23a4007682dbbddcf846994947b7f465daf84002204e94dd00047b316061b3b99772b7efd95994a83ef584b3b6b825ea3550251b66";

fn register(rp: &RelyingParty, cdj: &[u8], att: &[u8]) -> Result<NewCredential, Error> {
    let cd = ClientData::parse(cdj)?;
    verify_registration(rp, &cd, cdj, att)
}

fn login(
    rp: &RelyingParty,
    cdj: &[u8],
    ad: &[u8],
    sig: &[u8],
    key: &[u8],
) -> Result<Asserted, Error> {
    let cd = ClientData::parse(cdj)?;
    verify_assertion(rp, &cd, cdj, ad, sig, key)
}

#[test]
fn spec_vector_none_es256() {
    let rp = example_org(UserVerification::Preferred);
    let (cdj, att) = (h(NONE_REG_CDJ), h(NONE_REG_ATT));
    let cd = ClientData::parse(&cdj).unwrap();
    assert_eq!(
        cd.challenge,
        h("00c30fb78531c464d2b6771dab8d7b603c01162f2fa486bea70f283ae556e130")
    );
    let cred = register(&rp, &cdj, &att).unwrap();
    assert_eq!(
        cred.credential_id,
        h("f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4")
    );
    assert_eq!(cred.aaguid.to_vec(), h("8446ccb9ab1db374750b2367ff6f3a1f"));
    assert_eq!(
        (cred.algorithm, cred.sign_count, cred.attestation),
        (ALG_ES256, 0, "none")
    );
    assert!(cred.backup_eligible && cred.backed_up);

    let (ad, cdj, sig) = (h(NONE_AUTH_AD), h(NONE_AUTH_CDJ), h(NONE_AUTH_SIG));
    let ok = login(&rp, &cdj, &ad, &sig, &cred.public_key).unwrap();
    assert_eq!(ok.sign_count, 0);
    assert!(counter_advanced(0, 0));

    // One flipped byte of the signed data or of the signature, and it no longer verifies.
    let mut ad2 = ad.clone();
    ad2[33] ^= 1;
    assert_eq!(
        code(login(&rp, &cdj, &ad2, &sig, &cred.public_key).unwrap_err()),
        "webauthn_signature_invalid"
    );
    let mut sig2 = sig.clone();
    let last = sig2.len() - 1;
    sig2[last] ^= 1;
    assert_eq!(
        code(login(&rp, &cdj, &ad, &sig2, &cred.public_key).unwrap_err()),
        "webauthn_signature_invalid"
    );
    // The vector's authenticator did not verify the user: refused when UV is required.
    let strict = example_org(UserVerification::Required);
    assert_eq!(
        code(login(&strict, &cdj, &ad, &sig, &cred.public_key).unwrap_err()),
        "webauthn_user_not_verified"
    );
    assert_eq!(
        code(register(&strict, &h(NONE_REG_CDJ), &att).unwrap_err()),
        "webauthn_user_not_verified"
    );
}

#[test]
fn spec_vector_packed_self_attestation_es256() {
    let rp = example_org(UserVerification::Preferred);
    let (cdj, att) = (h(PACKED_REG_CDJ), h(PACKED_REG_ATT));
    let cred = register(&rp, &cdj, &att).unwrap();
    assert_eq!(cred.attestation, "self");
    assert_eq!(
        cred.credential_id,
        h("455ef34e2043a87db3d4afeb39bbcb6cc32df9347c789a865ecdca129cbef58c")
    );
    login(
        &rp,
        &h(PACKED_AUTH_CDJ),
        &h(PACKED_AUTH_AD),
        &h(PACKED_AUTH_SIG),
        &cred.public_key,
    )
    .unwrap();
    // The other vector's key does not verify this assertion.
    let other = register(&rp, &h(NONE_REG_CDJ), &h(NONE_REG_ATT)).unwrap();
    assert_eq!(
        code(
            login(
                &rp,
                &h(PACKED_AUTH_CDJ),
                &h(PACKED_AUTH_AD),
                &h(PACKED_AUTH_SIG),
                &other.public_key,
            )
            .unwrap_err()
        ),
        "webauthn_signature_invalid"
    );
    // A self-attestation whose signature was tampered with.
    let mut bad = att.clone();
    let at = bad
        .windows(4)
        .position(|w| w == [0x30, 0x44, 0x02, 0x20])
        .unwrap();
    bad[at + 10] ^= 1;
    assert_eq!(
        code(register(&rp, &cdj, &bad).unwrap_err()),
        "webauthn_signature_invalid"
    );
}

#[test]
fn spec_vectors_on_another_origin_or_rp_id() {
    let other_origin = RelyingParty {
        origins: vec!["https://login.example.org".into()],
        ..example_org(UserVerification::Preferred)
    };
    assert_eq!(
        code(register(&other_origin, &h(NONE_REG_CDJ), &h(NONE_REG_ATT)).unwrap_err()),
        "webauthn_origin_mismatch"
    );
    let other_rp = RelyingParty {
        id: "org".into(),
        ..example_org(UserVerification::Preferred)
    };
    assert_eq!(
        code(register(&other_rp, &h(NONE_REG_CDJ), &h(NONE_REG_ATT)).unwrap_err()),
        "webauthn_rp_id_mismatch"
    );
    // A login's client data in a registration.
    assert_eq!(
        code(
            register(
                &example_org(UserVerification::Preferred),
                &h(NONE_AUTH_CDJ),
                &h(NONE_REG_ATT)
            )
            .unwrap_err()
        ),
        "bad_request"
    );
}

// ---------------------------------------------------------------------------------------------
// A software authenticator.

enum Signer {
    P256(p256::ecdsa::SigningKey),
    Ed(ed25519_compact::KeyPair),
}

impl Signer {
    fn p256(seed: u8) -> Self {
        Self::P256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    fn ed(seed: u8) -> Self {
        Self::Ed(ed25519_compact::KeyPair::from_seed(
            ed25519_compact::Seed::new([seed; 32]),
        ))
    }

    fn cose(&self) -> Vec<u8> {
        let int = |i: i64| Value::Integer(i.into());
        let map = match self {
            Self::P256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                vec![
                    (int(1), int(2)),
                    (int(3), int(-7)),
                    (int(-1), int(1)),
                    (int(-2), Value::Bytes(point.x().unwrap().to_vec())),
                    (int(-3), Value::Bytes(point.y().unwrap().to_vec())),
                ]
            }
            Self::Ed(k) => vec![
                (int(1), int(1)),
                (int(3), int(-8)),
                (int(-1), int(6)),
                (int(-2), Value::Bytes(k.pk.to_vec())),
            ],
        };
        cbor(&Value::Map(map))
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::P256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            Self::Ed(k) => k.sk.sign(message, None).to_vec(),
        }
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

fn client_data(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"{origin}","crossOrigin":false}}"#,
        b64url(challenge)
    )
    .into_bytes()
}

fn auth_data(rp_id: &str, flags: u8, count: u32, attested: Option<(&[u8], &[u8])>) -> Vec<u8> {
    let mut out = sha256(rp_id.as_bytes()).to_vec();
    out.push(flags | if attested.is_some() { FLAG_AT } else { 0 });
    out.extend_from_slice(&count.to_be_bytes());
    if let Some((id, key)) = attested {
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(key);
    }
    out
}

fn attestation(fmt: &str, statement: Vec<(Value, Value)>, auth: &[u8]) -> Vec<u8> {
    cbor(&Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text(fmt.into())),
        (Value::Text("attStmt".into()), Value::Map(statement)),
        (Value::Text("authData".into()), Value::Bytes(auth.to_vec())),
    ]))
}

fn local_rp() -> RelyingParty {
    RelyingParty {
        id: "localhost".into(),
        name: "Gatehouse".into(),
        origins: vec!["http://localhost:3000".into()],
        user_verification: UserVerification::Required,
    }
}

const UP_UV: u8 = FLAG_UP | FLAG_UV;

#[test]
fn software_authenticators_register_and_sign_in() {
    let rp = local_rp();
    for (signer, alg) in [(Signer::p256(7), ALG_ES256), (Signer::ed(9), ALG_EDDSA)] {
        let cdj = client_data("webauthn.create", b"challenge-1", "http://localhost:3000");
        let ad = auth_data("localhost", UP_UV, 0, Some((b"cred-1", &signer.cose())));
        let cred = register(&rp, &cdj, &attestation("none", vec![], &ad)).unwrap();
        assert_eq!(cred.algorithm, alg);
        assert_eq!(cred.credential_id, b"cred-1");

        // Packed self-attestation with the credential's own key.
        let sig = signer.sign(&signed_message(&ad, &cdj));
        let packed = attestation(
            "packed",
            vec![
                (Value::Text("alg".into()), Value::Integer(alg.into())),
                (Value::Text("sig".into()), Value::Bytes(sig)),
            ],
            &ad,
        );
        assert_eq!(register(&rp, &cdj, &packed).unwrap().attestation, "self");

        let cdj = client_data("webauthn.get", b"challenge-2", "http://localhost:3000");
        let ad = auth_data("localhost", UP_UV, 5, None);
        let sig = signer.sign(&signed_message(&ad, &cdj));
        let ok = login(&rp, &cdj, &ad, &sig, &cred.public_key).unwrap();
        assert_eq!(ok.sign_count, 5);
        assert!(counter_advanced(4, 5) && !counter_advanced(5, 5) && !counter_advanced(6, 5));
        assert!(!counter_advanced(3, 0));

        // Without user presence, or signed over other data.
        let ad_np = auth_data("localhost", FLAG_UV, 6, None);
        let sig_np = signer.sign(&signed_message(&ad_np, &cdj));
        assert_eq!(
            code(login(&rp, &cdj, &ad_np, &sig_np, &cred.public_key).unwrap_err()),
            "webauthn_user_not_verified"
        );
        let other = client_data("webauthn.get", b"challenge-3", "http://localhost:3000");
        assert_eq!(
            code(login(&rp, &other, &ad, &sig, &cred.public_key).unwrap_err()),
            "webauthn_signature_invalid"
        );
        // Backed up without being backup eligible: not what an authenticator can say.
        let ad_bs = auth_data("localhost", UP_UV | FLAG_BS, 7, None);
        let sig_bs = signer.sign(&signed_message(&ad_bs, &cdj));
        assert_eq!(
            code(login(&rp, &cdj, &ad_bs, &sig_bs, &cred.public_key).unwrap_err()),
            "bad_request"
        );
        // On an origin the relying party does not list.
        let evil = client_data("webauthn.get", b"challenge-2", "http://localhost:3001");
        let sig = signer.sign(&signed_message(&ad, &evil));
        assert_eq!(
            code(login(&rp, &evil, &ad, &sig, &cred.public_key).unwrap_err()),
            "webauthn_origin_mismatch"
        );
    }
}

#[test]
fn unsupported_attestations_and_algorithms_are_refused() {
    let rp = local_rp();
    let signer = Signer::p256(3);
    let cdj = client_data("webauthn.create", b"c", "http://localhost:3000");
    let ad = auth_data("localhost", UP_UV, 0, Some((b"id", &signer.cose())));
    for fmt in ["fido-u2f", "tpm", "android-key", "apple"] {
        assert_eq!(
            code(register(&rp, &cdj, &attestation(fmt, vec![], &ad)).unwrap_err()),
            "webauthn_attestation_unsupported",
            "{fmt}"
        );
    }
    let x5c = vec![(
        Value::Text("x5c".into()),
        Value::Array(vec![Value::Bytes(vec![1, 2, 3])]),
    )];
    assert_eq!(
        code(register(&rp, &cdj, &attestation("packed", x5c, &ad)).unwrap_err()),
        "webauthn_attestation_unsupported"
    );
    // An RS256 key (kty RSA, alg -257) and an ES384 key.
    let int = |i: i64| Value::Integer(i.into());
    for key in [
        vec![
            (int(1), int(3)),
            (int(3), int(-257)),
            (int(-1), Value::Bytes(vec![1; 256])),
            (int(-2), Value::Bytes(vec![1, 0, 1])),
        ],
        vec![
            (int(1), int(2)),
            (int(3), int(-35)),
            (int(-1), int(2)),
            (int(-2), Value::Bytes(vec![1; 48])),
            (int(-3), Value::Bytes(vec![1; 48])),
        ],
    ] {
        let ad = auth_data(
            "localhost",
            UP_UV,
            0,
            Some((b"id", &cbor(&Value::Map(key)))),
        );
        assert_eq!(
            code(register(&rp, &cdj, &attestation("none", vec![], &ad)).unwrap_err()),
            "webauthn_algorithm_unsupported"
        );
    }
}

#[test]
fn malformed_input_is_a_bad_request_never_a_panic() {
    let rp = local_rp();
    let cdj = client_data("webauthn.create", b"c", "http://localhost:3000");
    let signer = Signer::ed(1);
    let ad = auth_data("localhost", UP_UV, 0, Some((b"id", &signer.cose())));
    let good = attestation("none", vec![], &ad);
    for cut in 0..good.len() {
        let err = register(&rp, &cdj, &good[..cut]).unwrap_err();
        assert_eq!(code(err), "bad_request", "cut at {cut}");
    }
    for cut in 0..ad.len() {
        let short = attestation("none", vec![], &ad[..cut]);
        assert!(register(&rp, &cdj, &short).is_err(), "cut at {cut}");
    }
    for json in [&b"{}"[..], b"null", b"[]", b"{\"type\":1}", b"\xff"] {
        assert_eq!(code(ClientData::parse(json).unwrap_err()), "bad_request");
    }
    let get = client_data("webauthn.get", b"c", "http://localhost:3000");
    for cut in 0..37 {
        assert_eq!(
            code(login(&rp, &get, &ad[..cut], &[0; 64], &signer.cose()).unwrap_err()),
            "bad_request"
        );
    }
}

#[test]
fn configuration_names_its_variable() {
    let parse = |vars: &[(&str, &str)]| {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        RelyingParty::parse(&lookup)
    };
    assert_eq!(parse(&[]), Ok(None));
    let rp = parse(&[
        ("WEBAUTHN_RP_ID", "Example.com"),
        (
            "ALLOWED_ORIGINS",
            "https://example.com,https://www.example.com,https://other.test",
        ),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(rp.id, "example.com");
    assert_eq!(rp.name, "example.com");
    assert_eq!(
        rp.origins,
        ["https://example.com", "https://www.example.com"]
    );
    assert_eq!(rp.user_verification, UserVerification::Required);
    let local = parse(&[
        ("WEBAUTHN_RP_ID", "localhost"),
        ("WEBAUTHN_ORIGINS", "http://localhost:3000"),
        ("WEBAUTHN_USER_VERIFICATION", "preferred"),
        ("WEBAUTHN_RP_NAME", "Demo"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(local.user_verification, UserVerification::Preferred);
    assert_eq!(local.name, "Demo");
    for (vars, var) in [
        (
            vec![("WEBAUTHN_ORIGINS", "https://example.com")],
            "WEBAUTHN_ORIGINS",
        ),
        (
            vec![("WEBAUTHN_RP_ID", "https://example.com")],
            "WEBAUTHN_RP_ID",
        ),
        (vec![("WEBAUTHN_RP_ID", "example.com")], "WEBAUTHN_ORIGINS"),
        (
            vec![
                ("WEBAUTHN_RP_ID", "example.com"),
                ("WEBAUTHN_ORIGINS", "http://example.com"),
            ],
            "WEBAUTHN_ORIGINS",
        ),
        (
            vec![
                ("WEBAUTHN_RP_ID", "example.com"),
                ("WEBAUTHN_ORIGINS", "https://evil.test"),
            ],
            "WEBAUTHN_ORIGINS",
        ),
        (
            vec![
                ("WEBAUTHN_RP_ID", "example.com"),
                ("WEBAUTHN_ORIGINS", "https://example.com/path"),
            ],
            "WEBAUTHN_ORIGINS",
        ),
        (
            vec![
                ("WEBAUTHN_RP_ID", "example.com"),
                ("WEBAUTHN_ORIGINS", "https://example.com"),
                ("WEBAUTHN_USER_VERIFICATION", "discouraged"),
            ],
            "WEBAUTHN_USER_VERIFICATION",
        ),
    ] {
        assert_eq!(parse(&vars).unwrap_err().var, var, "{vars:?}");
    }
}

/// A registration and a sign-in recorded from Chromium's virtual authenticator (CTAP2,
/// internal transport, resident key, user verification) by tests/e2e/browser-nuxt.test.mjs
/// with `GATEHOUSE_RECORD_WEBAUTHN=tests/vectors/chromium-passkey.json`.
#[test]
fn chromium_virtual_authenticator_recording() {
    let rec: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/chromium-passkey.json")).unwrap();
    let s = |v: &serde_json::Value| v.as_str().expect("a string").to_string();
    let bytes = |v: &serde_json::Value| {
        crate::primitives::encoding::b64url_decode(v.as_str().unwrap()).unwrap()
    };
    let rp = RelyingParty {
        id: s(&rec["rp_id"]),
        name: "Gatehouse".into(),
        origins: vec![s(&rec["origin"])],
        user_verification: UserVerification::Required,
    };
    let reg = &rec["register_verify"]["request"];
    let cdj = bytes(&reg["response"]["clientDataJSON"]);
    let cd = ClientData::parse(&cdj).unwrap();
    assert_eq!(
        b64url(&cd.challenge),
        s(&rec["register_options"]["response"]["publicKey"]["challenge"])
    );
    let cred = register(&rp, &cdj, &bytes(&reg["response"]["attestationObject"])).unwrap();
    assert_eq!(b64url(&cred.credential_id), s(&reg["id"]));
    assert_eq!(cred.attestation, "none");
    assert_eq!(
        cred.algorithm, ALG_EDDSA,
        "Chromium picks the first listed: EdDSA"
    );

    let login_req = &rec["login_verify"]["request"];
    let r = &login_req["response"];
    assert_eq!(s(&login_req["id"]), s(&reg["id"]));
    assert_eq!(bytes(&r["userHandle"]), s(&rec["user_id"]).into_bytes());
    let (cdj, ad, sig) = (
        bytes(&r["clientDataJSON"]),
        bytes(&r["authenticatorData"]),
        bytes(&r["signature"]),
    );
    assert_eq!(
        b64url(&ClientData::parse(&cdj).unwrap().challenge),
        s(&rec["login_options"]["response"]["publicKey"]["challenge"])
    );
    let ok = login(&rp, &cdj, &ad, &sig, &cred.public_key).unwrap();
    assert!(counter_advanced(i64::from(cred.sign_count), ok.sign_count));
    // The same answer elsewhere: another origin, another RP ID, a flipped signature byte.
    let elsewhere = RelyingParty {
        origins: vec!["http://localhost:1".into()],
        ..rp.clone()
    };
    assert_eq!(
        code(login(&elsewhere, &cdj, &ad, &sig, &cred.public_key).unwrap_err()),
        "webauthn_origin_mismatch"
    );
    let other_rp = RelyingParty {
        id: "example.com".into(),
        ..rp.clone()
    };
    assert_eq!(
        code(login(&other_rp, &cdj, &ad, &sig, &cred.public_key).unwrap_err()),
        "webauthn_rp_id_mismatch"
    );
    let mut bad = sig.clone();
    bad[0] ^= 0x80;
    assert_eq!(
        code(login(&rp, &cdj, &ad, &bad, &cred.public_key).unwrap_err()),
        "webauthn_signature_invalid"
    );
}

#[test]
fn cose_keys_are_read_strictly() {
    let int = |i: i64| Value::Integer(i.into());
    let x = Value::Bytes(Signer::ed(4).cose()[10..42].to_vec());
    let ok = vec![
        (int(1), int(1)),
        (int(3), int(-8)),
        (int(-1), int(6)),
        (int(-2), x.clone()),
    ];
    assert!(PublicKey::from_cose(&cbor(&Value::Map(ok.clone()))).is_ok());
    let mut trailing = cbor(&Value::Map(ok.clone()));
    trailing.push(0);
    let mut repeated = ok.clone();
    repeated.push((int(3), int(-8)));
    let mut text_label = ok.clone();
    text_label.push((Value::Text("kty".into()), int(1)));
    let short_x = vec![
        (int(1), int(1)),
        (int(3), int(-8)),
        (int(-1), int(6)),
        (int(-2), Value::Bytes(vec![1; 31])),
    ];
    let no_kty = vec![(int(3), int(-8)), (int(-1), int(6)), (int(-2), x.clone())];
    for bytes in [
        trailing,
        cbor(&Value::Map(repeated)),
        cbor(&Value::Map(text_label)),
        cbor(&Value::Map(short_x)),
        cbor(&Value::Map(no_kty)),
        cbor(&Value::Array(vec![])),
    ] {
        assert_eq!(
            code(PublicKey::from_cose(&bytes).unwrap_err()),
            "bad_request"
        );
    }
    // An Ed25519 key claiming ES256, and an EdDSA key on another curve.
    let wrong_alg = vec![
        (int(1), int(1)),
        (int(3), int(-7)),
        (int(-1), int(6)),
        (int(-2), x.clone()),
    ];
    let wrong_curve = vec![
        (int(1), int(1)),
        (int(3), int(-8)),
        (int(-1), int(7)),
        (int(-2), x),
    ];
    for key in [wrong_alg, wrong_curve] {
        assert_eq!(
            code(PublicKey::from_cose(&cbor(&Value::Map(key))).unwrap_err()),
            "webauthn_algorithm_unsupported"
        );
    }
}
