//! A passkey as the second factor of a password login and as the re-authentication of TOTP
//! changes, through the router, natively. The authenticator is a small Ed25519 one written
//! here (ed25519-compact keys, CBOR by ciborium), independent of Gatehouse's own WebAuthn
//! code; TOTP codes come from totp-rs.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ciborium::Value as Cbor;
use ed25519_compact::{KeyPair, Seed};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use gatehouse::domain::store::Store;
use gatehouse::primitives::http::{Request, Response};

use common::{expect_error, expect_status, PASSWORD};

const MFA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const RP_ID: &str = "example.org";
const ORIGIN: &str = "https://example.org";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A software authenticator holding one Ed25519 credential.
struct Authenticator {
    keys: KeyPair,
    credential_id: Vec<u8>,
    user_handle: Option<String>,
    counter: u32,
}

impl Authenticator {
    fn new(seed: u8) -> Self {
        Self {
            keys: KeyPair::from_seed(Seed::new([seed; 32])),
            credential_id: vec![seed; 16],
            user_handle: None,
            counter: 0,
        }
    }

    fn id(&self) -> String {
        b64(&self.credential_id)
    }

    fn auth_data(&self, flags: u8, attested: bool) -> Vec<u8> {
        let mut out = Sha256::digest(RP_ID.as_bytes()).to_vec();
        out.push(flags);
        out.extend_from_slice(&self.counter.to_be_bytes());
        if attested {
            out.extend_from_slice(&[0; 16]);
            out.extend_from_slice(
                &u16::try_from(self.credential_id.len())
                    .unwrap()
                    .to_be_bytes(),
            );
            out.extend_from_slice(&self.credential_id);
            let cose = Cbor::Map(vec![
                (Cbor::Integer(1.into()), Cbor::Integer(1.into())),
                (Cbor::Integer(3.into()), Cbor::Integer((-8).into())),
                (Cbor::Integer((-1).into()), Cbor::Integer(6.into())),
                (
                    Cbor::Integer((-2).into()),
                    Cbor::Bytes(self.keys.pk.to_vec()),
                ),
            ]);
            ciborium::into_writer(&cose, &mut out).unwrap();
        }
        out
    }

    fn client_data(kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(
            &json!({ "type": kind, "challenge": challenge, "origin": ORIGIN, "crossOrigin": false }),
        )
        .unwrap()
    }

    /// A `RegistrationResponseJSON` for creation options `opts` (a `none` attestation).
    fn register(&mut self, opts: &Value) -> Value {
        self.user_handle = Some(opts["user"]["id"].as_str().unwrap().to_string());
        let cdj = Self::client_data("webauthn.create", opts["challenge"].as_str().unwrap());
        let att = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(self.auth_data(0x45, true)),
            ),
        ]);
        let mut att_bytes = Vec::new();
        ciborium::into_writer(&att, &mut att_bytes).unwrap();
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": { "clientDataJSON": b64(&cdj), "attestationObject": b64(&att_bytes) },
        })
    }

    /// An `AuthenticationResponseJSON` for request options `opts`, the counter moved on by one.
    fn assert(&mut self, opts: &Value) -> Value {
        self.counter += 1;
        let cdj = Self::client_data("webauthn.get", opts["challenge"].as_str().unwrap());
        let auth_data = self.auth_data(0x05, false);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&cdj));
        let signature = self.keys.sk.sign(&signed, None);
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&cdj),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": self.user_handle,
            },
        })
    }
}

struct Gate(common::Gate);

impl Gate {
    fn new() -> Self {
        Self(common::Gate::new(common::config(
            &[],
            &[
                ("REGISTRATION", "open"),
                ("PBKDF2_ITERATIONS", "10000"),
                ("MFA_ENCRYPTION_KEY", MFA_KEY),
                ("WEBAUTHN_RP_ID", RP_ID),
                ("WEBAUTHN_ORIGINS", ORIGIN),
                ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "100"),
                ("RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL", "100"),
                ("RATE_LIMIT_LOGIN_PER_IP", "1000"),
            ],
        )))
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut req = Request::new(method, path).with_header("cf-connecting-ip", "203.0.113.9");
        if let Some(token) = token {
            req = req.with_header("authorization", &format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req.with_json(&body);
        }
        self.0.send(&req)
    }

    /// A user with a passkey and TOTP enrolled: (email, access token, user id, authenticator).
    fn account(&self, email: &str, seed: u8) -> (String, String, String, Authenticator) {
        let body = json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true });
        let res = expect_status(&self.call("POST", "/auth/register", None, Some(body)), 201);
        let token = res["access_token"].as_str().unwrap().to_string();
        let user_id = res["user"]["id"].as_str().unwrap().to_string();
        let mut auth = Authenticator::new(seed);
        let opts = self.call(
            "POST",
            "/auth/webauthn/register/options",
            Some(&token),
            None,
        );
        let opts = expect_status(&opts, 200);
        let reg = auth.register(&opts["publicKey"]);
        let res = self.call(
            "POST",
            "/auth/webauthn/register/verify",
            Some(&token),
            Some(reg),
        );
        expect_status(&res, 201);
        let started = self.call(
            "POST",
            "/auth/mfa/totp/start",
            Some(&token),
            Some(json!({ "password": PASSWORD })),
        );
        let secret = expect_status(&started, 200)["secret"]
            .as_str()
            .unwrap()
            .to_string();
        let code = common::totp_code(&secret, self.0.now(), 0);
        let res = self.call(
            "POST",
            "/auth/mfa/totp/confirm",
            Some(&token),
            Some(json!({ "otp": code })),
        );
        expect_status(&res, 200);
        (email.to_string(), token, user_id, auth)
    }

    fn options(&self, purpose: &str, token: Option<&str>) -> Value {
        let res = self.call(
            "POST",
            "/auth/webauthn/login/options",
            token,
            Some(json!({ "purpose": purpose })),
        );
        expect_status(&res, 200)["publicKey"].clone()
    }

    fn login(&self, email: &str, extra: Value) -> Response {
        let mut body =
            json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.call("POST", "/auth/login", None, Some(body))
    }

    fn events(&self, user_id: &str, kind: &str) -> Vec<Value> {
        let events = futures::executor::block_on(self.0.store.audit_events(Some(user_id), 100))
            .expect("events");
        events
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.detail.unwrap_or(Value::Null))
            .collect()
    }
}

#[test]
fn a_passkey_answers_mfa_required_once_and_only_for_its_own_user() {
    let gate = Gate::new();
    let (ada, _, ada_id, mut ada_key) = gate.account("ada@example.com", 1);
    let (_, _, _, mut bob_key) = gate.account("bob@example.com", 2);

    expect_error(&gate.login(&ada, json!({})), 401, "mfa_required");

    // Bob's passkey for Ada's password.
    let bob_answer = bob_key.assert(&gate.options("second_factor", None));
    let res = gate.login(&ada, json!({ "webauthn": bob_answer }));
    expect_error(&res, 401, "passkey_user_mismatch");

    // Ada's own: signed in; the same answer again is a used challenge.
    let answer = ada_key.assert(&gate.options("second_factor", None));
    let res = gate.login(&ada, json!({ "webauthn": answer }));
    let body = expect_status(&res, 200);
    assert_eq!(body["user"]["id"], ada_id.as_str());
    let res = gate.login(&ada, json!({ "webauthn": answer }));
    expect_error(&res, 400, "webauthn_challenge_invalid");

    // A sign-in's challenge does not serve as a second factor.
    let answer = ada_key.assert(&gate.options("login", None));
    expect_error(
        &gate.login(&ada, json!({ "webauthn": answer })),
        400,
        "webauthn_challenge_invalid",
    );

    // Both factors at once.
    let answer = ada_key.assert(&gate.options("second_factor", None));
    expect_error(
        &gate.login(&ada, json!({ "otp": "123456", "webauthn": answer })),
        400,
        "bad_request",
    );

    let succeeded = gate.events(&ada_id, "login_succeeded");
    assert!(
        succeeded.iter().any(|d| d["mfa"] == "passkey"),
        "{succeeded:?}"
    );
    let failed = gate.events(&ada_id, "login_failed");
    assert!(
        failed
            .iter()
            .any(|d| d["cause"] == "passkey_user_mismatch" && d["mfa"] == "passkey"),
        "{failed:?}"
    );
}

#[test]
fn a_passkey_of_the_caller_re_authenticates_totp_removal() {
    let gate = Gate::new();
    let (ada, ada_token, ada_id, mut ada_key) = gate.account("ada@example.com", 3);
    let (_, bob_token, _, mut bob_key) = gate.account("bob@example.com", 4);
    let remove = |body: Value| gate.call("DELETE", "/auth/mfa/totp", Some(&ada_token), Some(body));

    // No access token: no re-authentication challenge.
    let res = gate.call(
        "POST",
        "/auth/webauthn/login/options",
        None,
        Some(json!({ "purpose": "reauthenticate" })),
    );
    expect_error(&res, 401, "no_auth");

    let opts = gate.options("reauthenticate", Some(&ada_token));
    assert_eq!(opts["allowCredentials"][0]["id"], ada_key.id().as_str());

    // Bob's passkey, on Ada's challenge.
    let answer = bob_key.assert(&opts);
    expect_error(
        &remove(json!({ "webauthn": answer })),
        401,
        "passkey_user_mismatch",
    );
    // Ada's passkey, on a challenge issued to Bob.
    let answer = ada_key.assert(&gate.options("reauthenticate", Some(&bob_token)));
    expect_error(
        &remove(json!({ "webauthn": answer })),
        400,
        "webauthn_challenge_invalid",
    );
    // Neither or both.
    expect_error(&remove(json!({})), 400, "bad_request");
    let answer = ada_key.assert(&gate.options("reauthenticate", Some(&ada_token)));
    expect_error(
        &remove(json!({ "password": PASSWORD, "webauthn": answer })),
        400,
        "bad_request",
    );
    let causes: Vec<Value> = gate
        .events(&ada_id, "totp_removal_failed")
        .into_iter()
        .map(|d| d["cause"].clone())
        .collect();
    assert_eq!(causes, vec![json!("passkey_user_mismatch")]);

    // Ada's own passkey: removed; the password login needs no second factor any more.
    let answer = ada_key.assert(&gate.options("reauthenticate", Some(&ada_token)));
    assert_eq!(remove(json!({ "webauthn": answer })).status, 204);
    expect_status(&gate.login(&ada, json!({})), 200);
    let stored = futures::executor::block_on(gate.0.store.user_passkeys(&ada_id)).unwrap();
    assert_eq!(stored[0].sign_count, i64::from(ada_key.counter));
}
