//! The TOTP second factor through the router, natively, with a clock the test moves: enrollment
//! (start, confirm), login with `mfa_required`, codes accepted once within ±1 step, recovery
//! codes used once, new recovery codes, removal, the key missing, and the storage operations
//! of a login with and without TOTP. Codes are computed with totp-rs directly from the base32
//! secret the API shows, not through Gatehouse's own wrapper.

mod common;

use serde_json::{json, Value};

use gatehouse::domain::config::Config;
use gatehouse::domain::store::Store;
use gatehouse::primitives::http::{Request, Response};

use common::{expect_error, expect_status, totp_code as code, PASSWORD, SECOND};

const MFA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

fn config(overrides: &[(&str, &str)]) -> Config {
    common::config(
        overrides,
        &[
            ("REGISTRATION", "open"),
            ("PBKDF2_ITERATIONS", "10000"),
            ("MFA_ENCRYPTION_KEY", MFA_KEY),
            ("TOTP_ISSUER", "Example Site"),
            ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "100"),
            ("RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL", "100"),
        ],
    )
}

struct Gate(common::Gate);

impl std::ops::Deref for Gate {
    type Target = common::Gate;
    fn deref(&self) -> &common::Gate {
        &self.0
    }
}

impl Gate {
    fn new(overrides: &[(&str, &str)]) -> Self {
        Self(common::Gate::new(config(overrides)))
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut req = Request::new(method, path).with_header("cf-connecting-ip", "203.0.113.9");
        if let Some(token) = token {
            req = req.with_header("authorization", &format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req.with_json(&body);
        }
        self.send(&req)
    }

    /// Registers `email` and answers its access token and user id.
    fn register(&self, email: &str) -> (String, String) {
        let res = self.call(
            "POST",
            "/auth/register",
            None,
            Some(json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true })),
        );
        let body = expect_status(&res, 201);
        (
            body["access_token"].as_str().unwrap().to_string(),
            body["user"]["id"].as_str().unwrap().to_string(),
        )
    }

    fn login(&self, email: &str, password: &str, otp: Option<&str>) -> Response {
        let mut body =
            json!({ "email": email, "password": password, "refresh_token_in_body": true });
        if let Some(otp) = otp {
            body["otp"] = json!(otp);
        }
        self.call("POST", "/auth/login", None, Some(body))
    }

    /// Starts and confirms an enrollment: the base32 secret and the recovery codes.
    fn enroll(&self, token: &str) -> (String, Vec<String>) {
        let res = self.call(
            "POST",
            "/auth/mfa/totp/start",
            Some(token),
            Some(json!({ "password": PASSWORD })),
        );
        let started = expect_status(&res, 200);
        let secret = started["secret"].as_str().unwrap().to_string();
        let code = code(&secret, self.now(), 0);
        let res = self.call(
            "POST",
            "/auth/mfa/totp/confirm",
            Some(token),
            Some(json!({ "otp": code })),
        );
        let confirmed = expect_status(&res, 200);
        let codes = confirmed["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        (secret, codes)
    }
}

/// A six-digit code that is none of `secret`'s codes around `now_ms`.
fn wrong_code(secret: &str, now_ms: i64) -> String {
    let taken: Vec<String> = (-2..=2).map(|s| code(secret, now_ms, s)).collect();
    (0..10u32)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !taken.contains(c))
        .unwrap()
}

#[test]
fn enrollment_login_replay_recovery_and_removal() {
    let gate = Gate::new(&[]);
    let (token, user_id) = gate.register("ada@example.com");

    // Status before: available, not enrolled.
    let status = expect_status(&gate.call("GET", "/auth/mfa", Some(&token), None), 200);
    assert_eq!(status["totp"]["available"], true);
    assert_eq!(status["totp"]["enrolled"], false);

    // Start: the password again; a wrong one is refused and recorded.
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/start",
        Some(&token),
        Some(json!({ "password": "wrong password" })),
    );
    expect_error(&res, 401, "invalid_credentials");
    // Confirm before any start: nothing pending.
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/confirm",
        Some(&token),
        Some(json!({ "otp": "123456" })),
    );
    expect_error(&res, 409, "mfa_not_enrolled");

    let res = gate.call(
        "POST",
        "/auth/mfa/totp/start",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    let started = expect_status(&res, 200);
    let secret = started["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = started["otpauth_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!(
            "otpauth://totp/Example%20Site:ada%40example.com?secret={secret}&issuer=Example%20Site"
        )
    );
    assert!(started["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert_eq!(res.header("cache-control"), Some("no-store"));

    // Not enrolled until confirmed: login needs no code yet.
    expect_status(&gate.login("ada@example.com", PASSWORD, None), 200);

    // A wrong code does not confirm; a code two steps off neither.
    for bad in [
        wrong_code(&secret, gate.now()),
        code(&secret, gate.now(), 2),
        "abc".into(),
    ] {
        let res = gate.call(
            "POST",
            "/auth/mfa/totp/confirm",
            Some(&token),
            Some(json!({ "otp": bad })),
        );
        expect_error(&res, 401, "invalid_otp");
    }
    let confirm_code = code(&secret, gate.now(), 0);
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/confirm",
        Some(&token),
        Some(json!({ "otp": confirm_code })),
    );
    let codes: Vec<String> = expect_status(&res, 200)["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);

    // Stored sealed: the secret is nowhere in the record, the codes only as hashes.
    let record = futures::executor::block_on(gate.store.totp(&user_id))
        .unwrap()
        .unwrap();
    let sealed = record.secret_sealed.clone().unwrap();
    assert!(sealed.starts_with("v1.") && !sealed.contains(&secret));
    assert!(
        !format!("{record:?}").contains(&sealed),
        "Debug shows the sealed secret"
    );
    assert_eq!(record.recovery_codes_left, 10);

    // Login: a wrong password stays invalid_credentials; the right one asks for the code.
    expect_error(
        &gate.login("ada@example.com", "wrong password", None),
        401,
        "invalid_credentials",
    );
    expect_error(
        &gate.login("ada@example.com", "wrong password", Some(&codes[0])),
        401,
        "invalid_credentials",
    );
    expect_error(
        &gate.login("ada@example.com", PASSWORD, None),
        401,
        "mfa_required",
    );
    expect_error(
        &gate.login("ada@example.com", PASSWORD, Some("")),
        401,
        "mfa_required",
    );
    // The confirming code was used by the confirmation.
    expect_error(
        &gate.login("ada@example.com", PASSWORD, Some(&confirm_code)),
        401,
        "invalid_otp",
    );

    // The next step's code works once, then is a replay.
    gate.advance(30 * SECOND);
    let now_code = code(&secret, gate.now(), 0);
    let res = gate.login("ada@example.com", PASSWORD, Some(&now_code));
    let body = expect_status(&res, 200);
    assert!(body["access_token"].is_string());
    expect_error(
        &gate.login("ada@example.com", PASSWORD, Some(&now_code)),
        401,
        "invalid_otp",
    );
    // An older step's code is refused once a newer one was used.
    gate.advance(30 * SECOND);
    let next = code(&secret, gate.now(), 1);
    expect_status(&gate.login("ada@example.com", PASSWORD, Some(&next)), 200);
    expect_error(
        &gate.login(
            "ada@example.com",
            PASSWORD,
            Some(&code(&secret, gate.now(), 0)),
        ),
        401,
        "invalid_otp",
    );
    // Two steps away is outside the window.
    gate.advance(5 * 60 * SECOND);
    expect_error(
        &gate.login(
            "ada@example.com",
            PASSWORD,
            Some(&code(&secret, gate.now(), -2)),
        ),
        401,
        "invalid_otp",
    );
    expect_status(
        &gate.login(
            "ada@example.com",
            PASSWORD,
            Some(&code(&secret, gate.now(), -1)),
        ),
        200,
    );

    // A recovery code works once, in any case and with or without its hyphen.
    let recovery = codes[3].to_uppercase().replace('-', "");
    expect_status(
        &gate.login("ada@example.com", PASSWORD, Some(&recovery)),
        200,
    );
    expect_error(
        &gate.login("ada@example.com", PASSWORD, Some(&codes[3])),
        401,
        "invalid_otp",
    );
    expect_error(
        &gate.login("ada@example.com", PASSWORD, Some("not-a-code")),
        401,
        "invalid_otp",
    );
    let status = expect_status(&gate.call("GET", "/auth/mfa", Some(&token), None), 200);
    assert_eq!(status["totp"]["enrolled"], true);
    assert_eq!(status["totp"]["recovery_codes_left"], 9);

    // New recovery codes: the password again; the old ones stop working.
    let res = gate.call(
        "POST",
        "/auth/mfa/recovery-codes",
        Some(&token),
        Some(json!({ "password": "nope nope" })),
    );
    expect_error(&res, 401, "invalid_credentials");
    let res = gate.call(
        "POST",
        "/auth/mfa/recovery-codes",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    let fresh = expect_status(&res, 200)["recovery_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(fresh.len(), 10);
    expect_error(
        &gate.login("ada@example.com", PASSWORD, Some(&codes[4])),
        401,
        "invalid_otp",
    );
    expect_status(
        &gate.login(
            "ada@example.com",
            PASSWORD,
            Some(fresh[0].as_str().unwrap()),
        ),
        200,
    );

    // The audit log: enrollment, each use (on login_succeeded) and each failure.
    let events = futures::executor::block_on(gate.store.audit_events(Some(&user_id), 100)).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "totp_enrollment_started",
        "totp_enrolled",
        "totp_enrollment_failed",
        "recovery_codes_regenerated",
        "recovery_codes_failed",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let causes: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "login_failed")
        .map(|e| {
            e.detail.as_ref().unwrap()["cause"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for cause in ["otp_replayed", "wrong_otp", "invalid_recovery_code"] {
        assert!(
            causes.iter().any(|c| c == cause),
            "{cause} missing from {causes:?}"
        );
    }
    let uses: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "login_succeeded")
        .filter_map(|e| e.detail.as_ref()?["mfa"].as_str())
        .collect();
    assert!(
        uses.contains(&"totp") && uses.contains(&"recovery_code"),
        "{uses:?}"
    );
    let all = serde_json::to_string(&events.iter().map(|e| &e.detail).collect::<Vec<_>>()).unwrap();
    assert!(
        !all.contains(&secret) && !all.contains(&codes[0]),
        "a secret in the audit log"
    );

    // Removal: the password again; then login needs no code and removal again is refused.
    let res = gate.call(
        "DELETE",
        "/auth/mfa/totp",
        Some(&token),
        Some(json!({ "password": "bad password" })),
    );
    expect_error(&res, 401, "invalid_credentials");
    let res = gate.call(
        "DELETE",
        "/auth/mfa/totp",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    assert_eq!(res.status, 204);
    expect_status(&gate.login("ada@example.com", PASSWORD, None), 200);
    let res = gate.call(
        "DELETE",
        "/auth/mfa/totp",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    expect_error(&res, 409, "mfa_not_enrolled");
    let res = gate.call(
        "POST",
        "/auth/mfa/recovery-codes",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    expect_error(&res, 409, "mfa_not_enrolled");
    let events = futures::executor::block_on(gate.store.audit_events(Some(&user_id), 100)).unwrap();
    assert!(events.iter().any(|e| e.kind == "totp_removed"));
}

#[test]
fn a_new_enrollment_replaces_the_old_only_once_confirmed_and_pending_ones_expire() {
    let gate = Gate::new(&[]);
    let (token, _) = gate.register("bo@example.com");
    let (old_secret, _) = gate.enroll(&token);
    gate.advance(30 * SECOND);
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/start",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    let new_secret = expect_status(&res, 200)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(old_secret, new_secret);
    // Until confirmed, the old secret is the one login takes.
    expect_error(
        &gate.login(
            "bo@example.com",
            PASSWORD,
            Some(&code(&new_secret, gate.now(), 0)),
        ),
        401,
        "invalid_otp",
    );
    expect_status(
        &gate.login(
            "bo@example.com",
            PASSWORD,
            Some(&code(&old_secret, gate.now(), 0)),
        ),
        200,
    );
    // A pending enrollment expires after 15 minutes.
    gate.advance(15 * 60 * SECOND);
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/confirm",
        Some(&token),
        Some(json!({ "otp": code(&new_secret, gate.now(), 0) })),
    );
    expect_error(&res, 409, "mfa_not_enrolled");
    // Started again and confirmed, the new secret replaces the old.
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/start",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    let newer = expect_status(&res, 200)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/confirm",
        Some(&token),
        Some(json!({ "otp": code(&newer, gate.now(), 0) })),
    );
    expect_status(&res, 200);
    gate.advance(30 * SECOND);
    expect_error(
        &gate.login(
            "bo@example.com",
            PASSWORD,
            Some(&code(&old_secret, gate.now(), 0)),
        ),
        401,
        "invalid_otp",
    );
    expect_status(
        &gate.login(
            "bo@example.com",
            PASSWORD,
            Some(&code(&newer, gate.now(), 0)),
        ),
        200,
    );
}

#[test]
fn without_the_key_totp_is_unavailable_and_enrolled_users_cannot_bypass_it() {
    let mut gate = Gate::new(&[]);
    let (token, _) = gate.register("cy@example.com");
    let (secret, codes) = gate.enroll(&token);
    gate.0.config = common::config(
        &[],
        &[("REGISTRATION", "open"), ("PBKDF2_ITERATIONS", "10000")],
    );
    let res = gate.call(
        "POST",
        "/auth/mfa/totp/start",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    expect_error(&res, 403, "mfa_unavailable");
    let res = gate.call(
        "POST",
        "/auth/mfa/recovery-codes",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    expect_error(&res, 403, "mfa_unavailable");
    let status = expect_status(&gate.call("GET", "/auth/mfa", Some(&token), None), 200);
    assert_eq!(status["totp"]["available"], false);
    assert_eq!(status["totp"]["enrolled"], true);
    // An enrolled user still needs a code, which cannot be checked: refused, never let in.
    expect_error(
        &gate.login("cy@example.com", PASSWORD, None),
        401,
        "mfa_required",
    );
    gate.advance(30 * SECOND);
    expect_error(
        &gate.login(
            "cy@example.com",
            PASSWORD,
            Some(&code(&secret, gate.now(), 0)),
        ),
        403,
        "mfa_unavailable",
    );
    expect_error(
        &gate.login("cy@example.com", PASSWORD, Some(&codes[0])),
        403,
        "mfa_unavailable",
    );
    // Removal needs no key.
    let res = gate.call(
        "DELETE",
        "/auth/mfa/totp",
        Some(&token),
        Some(json!({ "password": PASSWORD })),
    );
    assert_eq!(res.status, 204);
    expect_status(&gate.login("cy@example.com", PASSWORD, None), 200);
}

#[test]
fn self_service_needs_an_access_token_and_valid_bodies() {
    let gate = Gate::new(&[]);
    let (token, _) = gate.register("di@example.com");
    for (method, path) in [
        ("GET", "/auth/mfa"),
        ("POST", "/auth/mfa/totp/start"),
        ("POST", "/auth/mfa/totp/confirm"),
        ("DELETE", "/auth/mfa/totp"),
        ("POST", "/auth/mfa/recovery-codes"),
    ] {
        expect_error(&gate.call(method, path, None, None), 401, "no_auth");
        expect_error(
            &gate.call(method, path, Some("not.a.token"), None),
            401,
            "invalid_token",
        );
    }
    for (path, body) in [
        ("/auth/mfa/totp/start", json!({})),
        ("/auth/mfa/totp/start", json!({ "password": 5 })),
        ("/auth/mfa/totp/confirm", json!({ "otp": 123456 })),
        ("/auth/mfa/recovery-codes", json!([])),
    ] {
        expect_error(
            &gate.call("POST", path, Some(&token), Some(body)),
            400,
            "bad_request",
        );
    }
}

#[test]
fn a_login_with_totp_reads_the_record_and_accepts_its_step_in_two_more_operations() {
    let gate = Gate::new(&[]);
    let (token, _) = gate.register("ops@example.com");
    let (secret, _) = gate.enroll(&token);
    gate.advance(30 * SECOND);
    let before = gate.store.operations();
    expect_error(
        &gate.login("ops@example.com", PASSWORD, None),
        401,
        "mfa_required",
    );
    // The rate-limit counters and the user (with its TOTP flag), in one round trip: nothing
    // more to ask for a code.
    assert_eq!(gate.store.operations() - before, 1);
    let before = gate.store.operations();
    expect_status(
        &gate.login(
            "ops@example.com",
            PASSWORD,
            Some(&code(&secret, gate.now(), 0)),
        ),
        200,
    );
    // The two of a login, plus the TOTP record and the compare-and-set of its step.
    assert_eq!(gate.store.operations() - before, 4);
}

#[test]
fn wrong_codes_count_against_the_login_rate_limit() {
    let gate = Gate::new(&[("RATE_LIMIT_LOGIN_PER_ACCOUNT", "3")]);
    let (token, _) = gate.register("eve@example.com");
    let (secret, _) = gate.enroll(&token);
    gate.advance(30 * SECOND);
    for _ in 0..3 {
        let wrong = wrong_code(&secret, gate.now());
        expect_error(
            &gate.login("eve@example.com", PASSWORD, Some(&wrong)),
            401,
            "invalid_otp",
        );
    }
    // Even the right code waits for the window to pass.
    let right = code(&secret, gate.now(), 0);
    expect_error(
        &gate.login("eve@example.com", PASSWORD, Some(&right)),
        429,
        "auth_rate_limited",
    );
    gate.advance(15 * 60 * SECOND);
    expect_status(
        &gate.login(
            "eve@example.com",
            PASSWORD,
            Some(&code(&secret, gate.now(), 0)),
        ),
        200,
    );
}

#[test]
fn the_console_password_sign_in_of_an_admin_with_totp_needs_the_code_too() {
    let gate = Gate::new(&[]);
    let (token, user_id) = gate.register("root@example.com");
    let ev = gatehouse::domain::store::AuditEvent {
        at: gate.now(),
        kind: "role_changed".into(),
        actor_user_id: None,
        subject_user_id: Some(user_id.clone()),
        family_id: None,
        ip: None,
        user_agent: None,
        detail: None,
    };
    let roles = vec!["admin".to_string()];
    assert!(
        futures::executor::block_on(gate.store.set_roles(&user_id, &roles, gate.now(), &ev))
            .unwrap()
    );
    let (secret, codes) = gate.enroll(&token);
    gate.advance(30 * SECOND);
    let sign_in = |body: Value| {
        gate.send(
            &Request::new("POST", "/admin/session")
                .with_header("host", "gatehouse.example")
                .with_header("origin", "https://gatehouse.example")
                .with_json(&body),
        )
    };
    let creds = json!({ "email": "root@example.com", "password": PASSWORD });
    expect_error(&sign_in(creds.clone()), 401, "mfa_required");
    let mut wrong = creds.clone();
    wrong["otp"] = json!(wrong_code(&secret, gate.now()));
    expect_error(&sign_in(wrong), 401, "invalid_otp");
    let mut right = creds.clone();
    right["otp"] = json!(code(&secret, gate.now(), 0));
    let res = sign_in(right.clone());
    expect_status(&res, 200);
    // The same code again is a replay.
    expect_error(&sign_in(right), 401, "invalid_otp");
    let mut recovery = creds;
    recovery["otp"] = json!(codes[0]);
    expect_status(&sign_in(recovery), 200);
    let events = futures::executor::block_on(gate.store.audit_events(Some(&user_id), 100)).unwrap();
    let mfa: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "console_signed_in")
        .filter_map(|e| e.detail.as_ref()?["mfa"].as_str())
        .collect();
    assert_eq!(mfa, ["recovery_code", "totp"]);
}
