//! Native tests of API keys, the admin API, self-service sessions, rate limits and the prune,
//! through `gatehouse::routes::handle` over the in-memory store with a clock moved by hand.

mod common;

use futures::executor::block_on;
use serde_json::{json, Value};

use gatehouse::domain::caller::CredentialKind;
use gatehouse::domain::config::Config;
use gatehouse::domain::store::{AuditQuery, Store, User};
use gatehouse::primitives::encoding::b64url;
use gatehouse::primitives::http::{Request, Response};
use gatehouse::services::auth::authenticate;

use common::{expect_error, expect_status, PASSWORD, SECOND, T0};

const MINUTE: i64 = 60 * SECOND;
const DAY: i64 = 86_400 * SECOND;
const PEPPER: &str = "pepper-pepper-pepper-pepper-pepper-42";

/// The shared [`common::Gate`] with the admin tests' helpers.
struct Gate(common::Gate);

impl std::ops::Deref for Gate {
    type Target = common::Gate;

    fn deref(&self) -> &common::Gate {
        &self.0
    }
}

fn config(overrides: &[(&str, &str)]) -> Config {
    common::config(
        overrides,
        &[
            ("REGISTRATION", "open"),
            ("PBKDF2_ITERATIONS", "10000"),
            ("API_KEY_PEPPER", PEPPER),
        ],
    )
}

impl Gate {
    fn new(overrides: &[(&str, &str)]) -> Self {
        Self(common::Gate::new(config(overrides)))
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut req =
            Request::new(method, path).with_header("authorization", &format!("Bearer {token}"));
        if let Some(body) = body {
            req = req.with_json(&body);
        }
        self.send(&req)
    }

    /// Registers `email` and gives it `roles`; returns (user id, access token, refresh token).
    fn user(&self, email: &str, roles: &[&str]) -> (String, String, String) {
        let res = self.send(&Request::new("POST", "/auth/register").with_json(
            &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
        ));
        let body = expect_status(&res, 201);
        let id = body["user"]["id"].as_str().unwrap().to_string();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let ev = gatehouse::domain::store::AuditEvent {
            at: self.now(),
            kind: "role_changed".into(),
            actor_user_id: None,
            subject_user_id: Some(id.clone()),
            family_id: None,
            ip: None,
            user_agent: None,
            detail: None,
        };
        assert!(block_on(self.store.set_roles(&id, &roles, self.now(), &ev)).unwrap());
        // Log in again so the access token carries the roles.
        let res = self.send(&Request::new("POST", "/auth/login").with_json(
            &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
        ));
        let body = expect_status(&res, 200);
        (
            id,
            body["access_token"].as_str().unwrap().into(),
            body["refresh_token"].as_str().unwrap().into(),
        )
    }

    fn stored(&self, id: &str) -> User {
        block_on(self.store.user_by_id(id)).unwrap().unwrap()
    }

    fn mint(&self, admin: &str, body: Value) -> (String, Value) {
        let res = self.call("POST", "/admin/api-keys", admin, Some(body));
        let body = expect_status(&res, 201);
        (
            body["key"].as_str().unwrap().to_string(),
            body["api_key"].clone(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limits

#[test]
fn login_per_account_trips_exactly_at_the_threshold_and_releases_after_the_window() {
    let gate = Gate::new(&[
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "3"),
        ("RATE_LIMIT_WINDOW_SECONDS", "60"),
    ]);
    gate.user("ada@example.com", &["user"]); // one login already counted
                                             // Start at a window boundary so the arithmetic below is exact.
    gate.clock.0.set((gate.now() / MINUTE + 1) * MINUTE);
    let login = |pw: &str| {
        gate.send(
            &Request::new("POST", "/auth/login")
                .with_json(&json!({ "email": "ADA@example.com", "password": pw })),
        )
    };
    expect_error(&login("wrong password"), 401, "invalid_credentials");
    expect_error(&login("wrong password"), 401, "invalid_credentials");
    expect_status(&login(PASSWORD), 200);
    gate.advance(20 * SECOND);
    let res = login(PASSWORD);
    expect_error(&res, 429, "auth_rate_limited");
    assert_eq!(res.header("retry-after"), Some("40"));
    gate.advance(40 * SECOND - 1);
    expect_error(&login(PASSWORD), 429, "auth_rate_limited");
    gate.advance(1);
    expect_status(&login(PASSWORD), 200);
    // Other accounts were never affected.
    gate.user("bob@example.com", &["user"]);
}

/// A login of `email` from `ip`, with `cookie` (a `Cookie` header value) if any, in cookie mode.
fn login_from(email: &str, password: &str, ip: &str, cookie: Option<&str>) -> Request {
    let req = Request::new("POST", "/auth/login")
        .with_json(&json!({ "email": email, "password": password }))
        .with_header("cf-connecting-ip", ip);
    match cookie {
        Some(cookie) => req.with_header("cookie", cookie),
        None => req,
    }
}

/// The `gatehouse_device=…` pair a response sets.
#[track_caller]
fn device_cookie(res: &Response) -> String {
    let set: Vec<&str> = res
        .headers
        .iter()
        .filter(|(name, value)| name == "set-cookie" && value.starts_with("gatehouse_device="))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(set.len(), 1, "{:?}", res.headers);
    assert!(
        set[0].ends_with(&format!(
            "; Path=/auth; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
            90 * 86_400
        )),
        "{}",
        set[0]
    );
    set[0].split(';').next().unwrap().to_string()
}

#[test]
fn an_attacker_exhausting_one_network_does_not_lock_the_owner_out_of_another() {
    let gate = Gate::new(&[
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "3"),
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL", "100"),
        ("RATE_LIMIT_WINDOW_SECONDS", "600"),
    ]);
    gate.user("ada@example.com", &["user"]);
    gate.clock.0.set(T0 - T0 % (600 * SECOND) + 600 * SECOND);
    let attacker = "203.0.113.9";
    for _ in 0..3 {
        let res = gate.send(&login_from("ada@example.com", "guess", attacker, None));
        expect_error(&res, 401, "invalid_credentials");
    }
    // Network A is spent, the right password included; an IPv6 attacker's whole /64 likewise.
    let res = gate.send(&login_from("ada@example.com", PASSWORD, attacker, None));
    expect_error(&res, 429, "auth_rate_limited");
    for ip in ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::3"] {
        let res = gate.send(&login_from("ada@example.com", "guess", ip, None));
        expect_error(&res, 401, "invalid_credentials");
    }
    let res = gate.send(&login_from(
        "ada@example.com",
        "guess",
        "2001:db8:5:6::4",
        None,
    ));
    expect_error(&res, 429, "auth_rate_limited");
    // The owner, from their own network and with no cookie of any kind, gets in.
    let res = gate.send(&login_from(
        "ada@example.com",
        PASSWORD,
        "198.51.100.7",
        None,
    ));
    expect_status(&res, 200);
}

#[test]
fn the_account_wide_ceiling_stops_a_distributed_attack_but_not_a_known_browser() {
    let gate = Gate::new(&[
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "3"),
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL", "5"),
        ("RATE_LIMIT_LOGIN_PER_IP", "0"),
        ("RATE_LIMIT_WINDOW_SECONDS", "600"),
    ]);
    gate.user("ada@example.com", &["user"]);
    gate.user("bob@example.com", &["user"]);
    gate.clock.0.set(T0 - T0 % (600 * SECOND) + 600 * SECOND);
    // The owner logged in from this browser before: it holds the device cookie.
    let res = gate.send(&login_from(
        "ada@example.com",
        PASSWORD,
        "198.51.100.7",
        None,
    ));
    let ada_device = device_cookie(&res);
    let res = gate.send(&login_from(
        "bob@example.com",
        PASSWORD,
        "198.51.100.8",
        None,
    ));
    let bob_device = device_cookie(&res);
    // Four more attempts from four networks reach the ceiling of 5 (the owner's counted too).
    for i in 1..=4 {
        let res = gate.send(&login_from(
            "ada@example.com",
            "guess",
            &format!("192.0.2.{i}"),
            None,
        ));
        expect_error(&res, 401, "invalid_credentials");
    }
    // A fresh network, even with the right password, meets the ceiling.
    let res = gate.send(&login_from("ada@example.com", PASSWORD, "192.0.2.50", None));
    expect_error(&res, 429, "auth_rate_limited");
    assert_eq!(res.header("retry-after"), Some("600"));
    // The owner's browser passes it, from any network.
    let with_cookie = |ip: &str, cookie: &str| {
        gate.send(&login_from(
            "ada@example.com",
            PASSWORD,
            ip,
            Some(&format!("a=1; {cookie}")),
        ))
    };
    let res = with_cookie("198.51.100.7", &ada_device);
    expect_status(&res, 200);
    let renewed = device_cookie(&res);
    expect_status(&with_cookie("198.51.100.99", &renewed), 200);
    // Forged, other-account and malformed cookies do not.
    let forged = format!("{}A", &ada_device[..ada_device.len() - 1]);
    let forged = if forged == ada_device {
        format!("{}B", &ada_device[..ada_device.len() - 1])
    } else {
        forged
    };
    let (_, value) = ada_device.split_once('=').unwrap();
    let (expiry, mac) = value["ghd_".len()..].split_once('.').unwrap();
    let stretched = format!(
        "gatehouse_device=ghd_{}.{mac}",
        expiry.parse::<i64>().unwrap() + 86_400
    );
    for cookie in [
        forged.as_str(),
        bob_device.as_str(),
        stretched.as_str(),
        "gatehouse_device=ghd_1.x",
    ] {
        expect_error(
            &with_cookie("198.51.100.7", cookie),
            429,
            "auth_rate_limited",
        );
    }
    // The per-account-and-network limit still holds for the known browser.
    gate.advance(600 * SECOND);
    for _ in 0..3 {
        let res = gate.send(&login_from(
            "ada@example.com",
            "guess",
            "198.51.100.7",
            Some(&ada_device),
        ));
        expect_error(&res, 401, "invalid_credentials");
    }
    expect_error(
        &with_cookie("198.51.100.7", &ada_device),
        429,
        "auth_rate_limited",
    );
    // Another account's ceiling was never touched.
    let res = gate.send(&login_from("bob@example.com", PASSWORD, "192.0.2.50", None));
    expect_status(&res, 200);
}

#[test]
fn an_expired_device_cookie_does_not_pass_the_ceiling() {
    let gate = Gate::new(&[
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL", "2"),
        ("RATE_LIMIT_WINDOW_SECONDS", "600"),
    ]);
    gate.user("ada@example.com", &["user"]);
    let res = gate.send(&login_from(
        "ada@example.com",
        PASSWORD,
        "198.51.100.7",
        None,
    ));
    let device = device_cookie(&res);
    gate.advance(90 * DAY);
    gate.clock.0.set(gate.now() - gate.now() % (600 * SECOND));
    for i in 1..=2 {
        let res = gate.send(&login_from(
            "ada@example.com",
            "guess",
            &format!("192.0.2.{i}"),
            None,
        ));
        expect_error(&res, 401, "invalid_credentials");
    }
    let res = gate.send(&login_from(
        "ada@example.com",
        PASSWORD,
        "198.51.100.7",
        Some(&device),
    ));
    expect_error(&res, 429, "auth_rate_limited");
}

#[test]
fn scripts_get_no_device_cookie() {
    let gate = Gate::new(&[]);
    gate.user("ada@example.com", &["user"]);
    let res = gate.send(&Request::new("POST", "/auth/login").with_json(
        &json!({ "email": "ada@example.com", "password": PASSWORD, "refresh_token_in_body": true }),
    ));
    expect_status(&res, 200);
    assert!(!res.headers.iter().any(|(name, _)| name == "set-cookie"));
    let res = gate.send(
        &Request::new("POST", "/auth/register")
            .with_json(&json!({ "email": "new@example.com", "password": PASSWORD })),
    );
    expect_status(&res, 201);
    device_cookie(&res);
}

#[test]
fn admins_see_who_is_rate_limited_now_as_stored() {
    let gate = Gate::new(&[
        ("RATE_LIMIT_LOGIN_PER_IP", "2"),
        ("RATE_LIMIT_WINDOW_SECONDS", "600"),
    ]);
    gate.clock.0.set(T0 - T0 % (600 * SECOND));
    let (_, admin, _) = gate.user("root@example.com", &["admin", "user"]);
    let (_, user, _) = gate.user("ann@example.com", &["user"]);
    let login = |ip: &str| {
        gate.send(
            &Request::new("POST", "/auth/login")
                .with_header("cf-connecting-ip", ip)
                .with_json(&json!({ "email": "Tr0ub4dor@3xyz!", "password": "x" })),
        )
    };
    for _ in 0..2 {
        expect_error(&login("198.51.100.7"), 401, "invalid_credentials");
    }
    expect_error(&login("198.51.100.7"), 429, "auth_rate_limited");
    expect_error(&login("198.51.100.8"), 401, "invalid_credentials");

    let limited = expect_status(&gate.call("GET", "/admin/rate-limits", &admin, None), 200);
    let limited = limited["limited"].as_array().unwrap().clone();
    assert_eq!(limited.len(), 1, "only the refused client: {limited:?}");
    assert_eq!(limited[0]["bucket"], "login_ip");
    assert_eq!(limited[0]["subject"], "198.51.100.7");
    assert_eq!(limited[0]["count"], 3);
    assert_eq!(limited[0]["limit"], 2);
    assert_eq!(limited[0]["until"], gate.now() + 600 * SECOND);
    let text = limited[0].to_string();
    assert!(
        !text.contains("Tr0ub4dor"),
        "what the client typed is shown: {text}"
    );
    expect_error(
        &gate.call("GET", "/admin/rate-limits", &user, None),
        403,
        "insufficient_role",
    );

    gate.advance(600 * SECOND);
    let after = expect_status(&gate.call("GET", "/admin/rate-limits", &admin, None), 200);
    assert_eq!(after["limited"], json!([]), "the window ended");
}

#[test]
fn login_and_registration_per_ip_and_refresh_per_family() {
    let gate = Gate::new(&[
        ("RATE_LIMIT_LOGIN_PER_IP", "2"),
        ("RATE_LIMIT_REGISTER_PER_IP", "1"),
        ("RATE_LIMIT_REFRESH_PER_FAMILY", "2"),
        ("RATE_LIMIT_WINDOW_SECONDS", "600"),
    ]);
    gate.clock.0.set(T0 - T0 % (600 * SECOND));
    let from = |req: Request, ip: &str| gate.send(&req.with_header("cf-connecting-ip", ip));
    let register = |email: &str| {
        Request::new("POST", "/auth/register").with_json(
            &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
        )
    };
    expect_status(&from(register("a@example.com"), "198.51.100.1"), 201);
    expect_error(
        &from(register("b@example.com"), "198.51.100.1"),
        429,
        "auth_rate_limited",
    );
    let body = expect_status(&from(register("b@example.com"), "198.51.100.2"), 201);
    let login = || {
        Request::new("POST", "/auth/login")
            .with_json(&json!({ "email": "nobody@example.com", "password": "x" }))
    };
    expect_error(&from(login(), "198.51.100.3"), 401, "invalid_credentials");
    expect_error(&from(login(), "198.51.100.3"), 401, "invalid_credentials");
    let res = from(login(), "198.51.100.3");
    expect_error(&res, 429, "auth_rate_limited");
    assert_eq!(res.header("retry-after"), Some("600"));
    expect_error(&from(login(), "198.51.100.4"), 401, "invalid_credentials");

    let refresh = |t: &str| {
        gate.send(&Request::new("POST", "/auth/refresh").with_json(&json!({ "refresh_token": t })))
    };
    let mut token = body["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let b = expect_status(&refresh(&token), 200);
        token = b["refresh_token"].as_str().unwrap().to_string();
    }
    expect_error(&refresh(&token), 429, "auth_rate_limited");
    gate.advance(600 * SECOND);
    expect_status(&refresh(&token), 200);
}

#[test]
fn a_limit_of_zero_switches_the_limit_off() {
    let gate = Gate::new(&[("RATE_LIMIT_LOGIN_PER_ACCOUNT", "0")]);
    gate.user("ada@example.com", &["user"]);
    for _ in 0..15 {
        let res = gate.send(
            &Request::new("POST", "/auth/login")
                .with_json(&json!({ "email": "ada@example.com", "password": "nope nope" })),
        );
        expect_error(&res, 401, "invalid_credentials");
    }
}

// ---------------------------------------------------------------------------------------------
// API keys

#[test]
fn api_keys_authenticate_until_revoked_or_expired_and_touch_once_a_minute() {
    // Every request reads the key (tests/revocation.rs covers the cached reads of a delay).
    let gate = Gate::new(&[("REVOCATION_DELAY_SECONDS", "0")]);
    let (admin_id, admin, _) = gate.user("root@example.com", &["admin", "editor"]);
    let (bob_id, _, _) = gate.user("bob@example.com", &["editor"]);
    let (key, view) = gate.mint(
        &admin,
        json!({ "owner_user_id": bob_id, "label": "ci", "role": "editor", "scopes": ["cms-read"], "expires_at": T0 + DAY }),
    );
    assert!(gatehouse::domain::apikey::well_formed(&key), "{key}");
    assert!(view.get("key_hash").is_none(), "{view}");
    let req =
        Request::new("GET", "/anything").with_header("authorization", &format!("Bearer {key}"));
    let caller = block_on(authenticate(&gate.svc(), &req)).unwrap().unwrap();
    assert_eq!(caller.kind, CredentialKind::ApiKey);
    assert_eq!(caller.user_id, bob_id);
    assert_eq!(caller.roles, vec!["editor"]);
    assert!(caller.may_use_route("cms-read") && !caller.may_use_route("cms-write"));
    let id = view["id"].as_str().unwrap();
    let last_used = || {
        block_on(gate.store.api_key(id))
            .unwrap()
            .unwrap()
            .last_used_at
    };
    assert_eq!(last_used(), Some(gate.now()));
    let first = gate.now();
    gate.advance(59 * SECOND);
    block_on(authenticate(&gate.svc(), &req)).unwrap();
    assert_eq!(last_used(), Some(first), "written twice within a minute");
    gate.advance(SECOND);
    block_on(authenticate(&gate.svc(), &req)).unwrap();
    assert_eq!(last_used(), Some(gate.now()));

    // An owner who loses the role keeps a key without roles; a disabled owner's key is refused.
    let _ = admin_id;
    let err = |req: &Request| block_on(authenticate(&gate.svc(), req)).unwrap_err().code();
    expect_status(
        &gate.call(
            "POST",
            &format!("/admin/users/{bob_id}/disable"),
            &admin,
            None,
        ),
        200,
    );
    assert_eq!(err(&req), "invalid_api_key");
    expect_status(
        &gate.call(
            "POST",
            &format!("/admin/users/{bob_id}/enable"),
            &admin,
            None,
        ),
        200,
    );
    expect_status(
        &gate.call(
            "PUT",
            &format!("/admin/users/{bob_id}/roles"),
            &admin,
            Some(json!({ "roles": ["user"] })),
        ),
        200,
    );
    let caller = block_on(authenticate(&gate.svc(), &req)).unwrap().unwrap();
    assert!(caller.roles.is_empty());

    // Expiry, to the millisecond.
    gate.clock.0.set(T0 + DAY - 1);
    block_on(authenticate(&gate.svc(), &req)).unwrap();
    gate.advance(1);
    assert_eq!(err(&req), "invalid_api_key");

    // Revocation: the next request is refused.
    gate.clock.0.set(T0 + 2 * MINUTE);
    let (key2, view2) = gate.mint(
        &admin,
        json!({ "label": "mine", "role": "admin", "scopes": [] }),
    );
    let req2 =
        Request::new("GET", "/admin/users").with_header("authorization", &format!("Bearer {key2}"));
    expect_status(&gate.send(&req2), 200);
    let kid = view2["id"].as_str().unwrap();
    expect_status(
        &gate.call("DELETE", &format!("/admin/api-keys/{kid}"), &admin, None),
        204,
    );
    expect_error(&gate.send(&req2), 401, "invalid_api_key");
    let unknown = Request::new("GET", "/admin/users")
        .with_header("authorization", &format!("Bearer gk_{}", "a".repeat(52)));
    expect_error(&gate.send(&unknown), 401, "invalid_api_key");
}

#[test]
fn keys_need_a_pepper_and_never_exceed_the_minters_or_owners_roles() {
    let gate = Gate::new(&[]);
    let (_, admin, _) = gate.user("root@example.com", &["admin"]);
    let (bob_id, _, _) = gate.user("bob@example.com", &["editor"]);
    let res = gate.call(
        "POST",
        "/admin/api-keys",
        &admin,
        Some(json!({ "owner_user_id": bob_id, "label": "x", "role": "editor", "scopes": [] })),
    );
    expect_error(&res, 400, "bad_request");
    let res = gate.call(
        "POST",
        "/admin/api-keys",
        &admin,
        Some(json!({ "owner_user_id": bob_id, "label": "x", "role": "admin", "scopes": [] })),
    );
    expect_error(&res, 400, "bad_request");
    for bad in [
        json!({ "label": "", "role": "admin", "scopes": [] }),
        json!({ "label": "x", "role": "admin" }),
        json!({ "label": "x", "role": "admin", "scopes": ["Bad Name"] }),
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": T0 - 1 }),
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": T0 }),
        // Beyond ten years ahead, beyond what D1 stores exactly, and i64::MAX.
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": T0 + 3650 * DAY + 1 }),
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": 1_i64 << 53 }),
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": i64::MAX }),
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": 1.5e18 }),
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": "soon" }),
    ] {
        expect_error(
            &gate.call("POST", "/admin/api-keys", &admin, Some(bad)),
            400,
            "bad_request",
        );
    }
    // Nothing was stored, and exactly ten years ahead is accepted.
    let listed = expect_status(&gate.call("GET", "/admin/api-keys", &admin, None), 200);
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 0);
    let (_, view) = gate.mint(
        &admin,
        json!({ "label": "x", "role": "admin", "scopes": [], "expires_at": T0 + 3650 * DAY }),
    );
    assert_eq!(view["expires_at"], T0 + 3650 * DAY);
    // Audit filters and the cursor stay within what storage holds exactly.
    for q in [
        "since=9007199254740992",
        "until=9223372036854775807",
        "cursor=9007199254740992",
        "cursor=0",
        "since=-1",
        "limit=201",
        "limit=0",
    ] {
        expect_error(
            &gate.call("GET", &format!("/admin/audit?{q}"), &admin, None),
            400,
            "bad_request",
        );
    }
    expect_status(
        &gate.call(
            "GET",
            "/admin/audit?since=0&until=9007199254740991&cursor=9007199254740991&limit=200",
            &admin,
            None,
        ),
        200,
    );

    let mut off = Gate::new(&[]);
    off.0.config = {
        let seed = b64url(&[7u8; 32]);
        Config::from_lookup(&|n: &str| match n {
            "JWT_SIGNING_KEY" => Some(seed.clone()),
            "REGISTRATION" => Some("open".into()),
            "PBKDF2_ITERATIONS" => Some("10000".into()),
            _ => None,
        })
        .unwrap()
    };
    let (_, admin, _) = off.user("root@example.com", &["admin"]);
    let res = off.call(
        "POST",
        "/admin/api-keys",
        &admin,
        Some(json!({ "label": "x", "role": "admin", "scopes": [] })),
    );
    expect_error(&res, 500, "misconfigured");
    let res = off.send(
        &Request::new("GET", "/admin/users")
            .with_header("authorization", &format!("Bearer gk_{}", "a".repeat(52))),
    );
    expect_error(&res, 401, "invalid_api_key");
    let short = Config::from_lookup(&|n: &str| match n {
        "JWT_SIGNING_KEY" => Some(b64url(&[7u8; 32])),
        "API_KEY_PEPPER" => Some("too short".into()),
        _ => None,
    });
    assert_eq!(short.unwrap_err().var, "API_KEY_PEPPER");
}

#[test]
fn an_admin_key_mints_within_its_owners_roles_and_its_actions_name_it() {
    let gate = Gate::new(&[]);
    let (admin_id, admin, _) = gate.user("root@example.com", &["admin", "editor"]);
    let (admin_key, admin_view) = gate.mint(
        &admin,
        json!({ "label": "ops", "role": "admin", "scopes": [] }),
    );
    let admin_key_id = admin_view["id"].as_str().unwrap();
    // The key acts for its owner: a least-privilege key for a job, within the owner's roles…
    let (_, minted) = gate.mint(
        &admin_key,
        json!({ "label": "y", "role": "editor", "scopes": [] }),
    );
    assert_eq!(minted["created_by"], admin_id);
    // …never a role the owner lacks.
    let res = gate.call(
        "POST",
        "/admin/api-keys",
        &admin_key,
        Some(json!({ "label": "x", "role": "publisher", "scopes": [] })),
    );
    expect_error(&res, 400, "bad_request");
    // The admin's access token is bounded the same way; its events name no key.
    let (_, by_token) = gate.mint(
        &admin,
        json!({ "label": "z", "role": "editor", "scopes": [] }),
    );
    let listed = expect_status(&gate.call("GET", "/admin/api-keys", &admin, None), 200);
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 3, "{listed}");
    let events = block_on(gate.store.query_audit(&AuditQuery {
        kind: Some("api_key_minted".into()),
        limit: 10,
        ..AuditQuery::default()
    }))
    .unwrap();
    let via: Vec<(Value, Value)> = events
        .iter()
        .map(|e| {
            let d = e.event.detail.clone().unwrap();
            (d["key_id"].clone(), d["via_key"].clone())
        })
        .collect();
    assert_eq!(
        via,
        vec![
            (by_token["id"].clone(), Value::Null),
            (minted["id"].clone(), json!(admin_key_id)),
            (json!(admin_key_id), Value::Null),
        ],
        "{events:?}"
    );
    assert!(events
        .iter()
        .all(|e| e.event.actor_user_id.as_deref() == Some(admin_id.as_str())));
    // Other admin actions done with the key name it too.
    let (bob_id, _, _) = gate.user("bob@example.com", &["user"]);
    expect_status(
        &gate.call(
            "POST",
            &format!("/admin/users/{bob_id}/disable"),
            &admin_key,
            None,
        ),
        200,
    );
    let disabled = block_on(gate.store.query_audit(&AuditQuery {
        kind: Some("user_disabled".into()),
        limit: 10,
        ..AuditQuery::default()
    }))
    .unwrap();
    assert_eq!(
        disabled[0].event.detail,
        Some(json!({ "via_key": admin_key_id }))
    );
}

// ---------------------------------------------------------------------------------------------
// Admin API

#[test]
fn the_admin_api_rereads_the_admin_on_every_request() {
    let gate = Gate::new(&[]);
    let (root_id, root, _) = gate.user("root@example.com", &["admin"]);
    let (ann_id, ann, _) = gate.user("ann@example.com", &["admin"]);
    let (_, user, _) = gate.user("bob@example.com", &["user"]);
    expect_error(
        &gate.call("GET", "/admin/users", &user, None),
        403,
        "insufficient_role",
    );
    expect_error(
        &gate.send(&Request::new("GET", "/admin/users")),
        401,
        "no_auth",
    );
    expect_status(&gate.call("GET", "/admin/users", &ann, None), 200);
    // Ann's token still says admin, but storage no longer does.
    expect_status(
        &gate.call(
            "PUT",
            &format!("/admin/users/{ann_id}/roles"),
            &root,
            Some(json!({ "roles": ["user"] })),
        ),
        200,
    );
    expect_error(
        &gate.call("GET", "/admin/users", &ann, None),
        403,
        "insufficient_role",
    );
    expect_status(
        &gate.call(
            "PUT",
            &format!("/admin/users/{ann_id}/roles"),
            &root,
            Some(json!({ "roles": ["admin"] })),
        ),
        200,
    );
    expect_status(
        &gate.call(
            "POST",
            &format!("/admin/users/{ann_id}/disable"),
            &root,
            None,
        ),
        200,
    );
    expect_error(
        &gate.call("GET", "/admin/users", &ann, None),
        401,
        "invalid_token",
    );
    // No self-lockout.
    expect_error(
        &gate.call(
            "POST",
            &format!("/admin/users/{root_id}/disable"),
            &root,
            None,
        ),
        400,
        "bad_request",
    );
    expect_error(
        &gate.call(
            "PUT",
            &format!("/admin/users/{root_id}/roles"),
            &root,
            Some(json!({ "roles": ["user"] })),
        ),
        400,
        "bad_request",
    );
    expect_error(
        &gate.call("GET", "/admin/users/usr_nobody", &root, None),
        404,
        "not_found",
    );
    expect_error(
        &gate.call("DELETE", "/admin/users", &root, None),
        405,
        "method_not_allowed",
    );
    expect_error(
        &gate.call("GET", "/admin/nothing", &root, None),
        404,
        "not_found",
    );
    let events = block_on(gate.store.query_audit(&AuditQuery {
        actor_user_id: Some(root_id.clone()),
        limit: 10,
        ..Default::default()
    }))
    .unwrap();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e.event.kind.as_str())
        .take(3)
        .collect();
    assert_eq!(kinds, ["user_disabled", "role_changed", "role_changed"]);
    assert_eq!(
        events[0].event.subject_user_id.as_deref(),
        Some(ann_id.as_str())
    );
}

#[test]
fn users_page_and_search_and_a_password_reset_revokes_sessions() {
    let gate = Gate::new(&[]);
    let (_, root, _) = gate.user("root@example.com", &["admin"]);
    for i in 0..5 {
        let res = gate.call("POST", "/admin/users", &root, Some(json!({ "email": format!("u{i}@example.org"), "password": PASSWORD, "roles": ["user"], "name": format!("User {i}") })));
        expect_status(&res, 201);
    }
    expect_error(
        &gate.call(
            "POST",
            "/admin/users",
            &root,
            Some(json!({ "email": "u0@example.org", "password": PASSWORD })),
        ),
        409,
        "email_taken",
    );
    // Admins create accounts under the same email rules: folded, never a mixed-script look-alike.
    expect_error(
        &gate.call(
            "POST",
            "/admin/users",
            &root,
            Some(json!({ "email": "u0\u{200b}@EXAMPLE.org", "password": PASSWORD })),
        ),
        409,
        "email_taken",
    );
    expect_error(
        &gate.call(
            "POST",
            "/admin/users",
            &root,
            Some(json!({ "email": "u0@ex\u{430}mple.org", "password": PASSWORD })),
        ),
        400,
        "bad_request",
    );
    let page = expect_status(
        &gate.call("GET", "/admin/users?limit=2&q=example.org", &root, None),
        200,
    );
    let emails: Vec<_> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["u0@example.org", "u1@example.org"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page = expect_status(
        &gate.call(
            "GET",
            &format!("/admin/users?limit=2&q=example.org&cursor={cursor}"),
            &root,
            None,
        ),
        200,
    );
    assert_eq!(page["users"][0]["email"], "u2@example.org");
    let page = expect_status(
        &gate.call("GET", "/admin/users?q=user%203", &root, None),
        200,
    );
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_null());
    expect_error(
        &gate.call("GET", "/admin/users?limit=0", &root, None),
        400,
        "bad_request",
    );
    expect_error(
        &gate.call("GET", "/admin/users?bogus=1", &root, None),
        400,
        "bad_request",
    );

    let (bob_id, bob, bob_refresh) = gate.user("bob@example.com", &["user"]);
    let res = gate.call(
        "POST",
        &format!("/admin/users/{bob_id}/password"),
        &root,
        Some(json!({ "new_password": "a brand new one" })),
    );
    assert_eq!(expect_status(&res, 200)["revoked_sessions"], 2);
    let res = gate.send(
        &Request::new("POST", "/auth/refresh").with_json(&json!({ "refresh_token": bob_refresh })),
    );
    expect_error(&res, 401, "invalid_refresh_token");
    expect_error(
        &gate.call("GET", "/auth/sessions", &bob, None),
        401,
        "invalid_token",
    );
    assert!(gate
        .stored(&bob_id)
        .password_hash
        .as_str()
        .starts_with("$pbkdf2-sha256$"));
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[test]
fn sessions_are_listed_and_revoked_by_their_owner_only() {
    let gate = Gate::new(&[]);
    let (ann_id, ann, _) = gate.user("ann@example.com", &["user"]);
    let (_, bob, _) = gate.user("bob@example.com", &["user"]);
    let list = expect_status(&gate.call("GET", "/auth/sessions", &ann, None), 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}"); // register + login
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    expect_error(
        &gate.call("DELETE", &format!("/auth/sessions/{other}"), &bob, None),
        404,
        "not_found",
    );
    expect_error(
        &gate.call("DELETE", "/auth/sessions/fam_nope", &ann, None),
        404,
        "not_found",
    );
    expect_status(
        &gate.call("DELETE", &format!("/auth/sessions/{other}"), &ann, None),
        204,
    );
    let list = expect_status(&gate.call("GET", "/auth/sessions", &ann, None), 200);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    expect_error(
        &gate.call("POST", "/auth/sessions", &ann, None),
        405,
        "method_not_allowed",
    );
    let ev = block_on(gate.store.audit_events(Some(&ann_id), 1)).unwrap();
    assert_eq!(ev[0].kind, "session_revoked");
    assert_eq!(ev[0].family_id.as_deref(), Some(other.as_str()));
}

// ---------------------------------------------------------------------------------------------
// Prune

#[test]
fn the_prune_keeps_live_sessions_and_recent_events() {
    let gate = Gate::new(&[
        ("SESSION_RETENTION_DAYS", "7"),
        ("AUDIT_RETENTION_DAYS", "30"),
    ]);
    let (ann_id, _, ann_refresh) = gate.user("ann@example.com", &["user"]);
    let counts = block_on(gatehouse::services::prune::run(
        &gate.store,
        &gate.config,
        gate.now(),
    ))
    .unwrap();
    assert_eq!((counts.families, counts.audit_events), (0, 0));
    // 29 days on, the two families (30-day lifetime, 7-day idle) idled out 22 days ago.
    let counts = block_on(gatehouse::services::prune::run(
        &gate.store,
        &gate.config,
        T0 + 29 * DAY,
    ))
    .unwrap();
    assert_eq!((counts.families, counts.tokens), (2, 2));
    assert_eq!(counts.audit_events, 0);
    let res = gate.send(
        &Request::new("POST", "/auth/refresh").with_json(&json!({ "refresh_token": ann_refresh })),
    );
    expect_error(&res, 401, "invalid_refresh_token");
    let counts = block_on(gatehouse::services::prune::run(
        &gate.store,
        &gate.config,
        T0 + 31 * DAY,
    ))
    .unwrap();
    assert!(counts.audit_events >= 3, "{counts:?}");
    assert!(block_on(gate.store.user_by_id(&ann_id)).unwrap().is_some());
}
