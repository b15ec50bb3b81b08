//! Native tests of the admin console's session (the cookie as a credential of the admin API,
//! CSRF, the admin role rechecked, revocation, expiry, key-bound sessions), its page's headers,
//! `GET /admin/config` and `GET /auth/whoami`, through `gatehouse::routes::handle` over the
//! in-memory store with a clock moved by hand.

mod common;

use futures::executor::block_on;
use serde_json::{json, Value};

use gatehouse::domain::config::Config;
use gatehouse::domain::store::{AuditEvent, AuditQuery, Store};
use gatehouse::primitives::http::{Request, Response};
use gatehouse::routes::console::CSP;

use common::{expect_error, expect_status, PASSWORD, SECOND};

const PEPPER: &str = "pepper-pepper-pepper-pepper-pepper-42";
const HOST: &str = "gate.example";
const OWN: &str = "https://gate.example";
const SITE: &str = "https://site.example";
const HOUR: i64 = 3600 * SECOND;

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
            ("ALLOWED_ORIGINS", SITE),
        ],
    )
}

/// A signed-in console: its cookie value and CSRF token.
struct Console {
    cookie: String,
    csrf: String,
    session_id: String,
}

/// A request from a console page of Gatehouse's own origin.
fn own(method: &str, path: &str) -> Request {
    Request::new(method, path)
        .with_header("host", HOST)
        .with_header("origin", OWN)
}

fn set_cookie(res: &Response) -> String {
    let all: Vec<&str> = res
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].to_string()
}

impl Gate {
    fn new(overrides: &[(&str, &str)]) -> Self {
        Self(common::Gate::new(config(overrides)))
    }

    /// Registers `email` with `roles` set in storage; returns (user id, access token).
    fn user(&self, email: &str, roles: &[&str]) -> (String, String) {
        let res = self.send(&Request::new("POST", "/auth/register").with_json(
            &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
        ));
        let id = expect_status(&res, 201)["user"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.set_roles(&id, roles);
        let res = self.send(&Request::new("POST", "/auth/login").with_json(
            &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
        ));
        let token = expect_status(&res, 200)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        (id, token)
    }

    fn set_roles(&self, id: &str, roles: &[&str]) {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let ev = AuditEvent {
            at: self.now(),
            kind: "role_changed".into(),
            actor_user_id: None,
            subject_user_id: Some(id.into()),
            family_id: None,
            ip: None,
            user_agent: None,
            detail: None,
        };
        assert!(block_on(self.store.set_roles(id, &roles, self.now(), &ev)).unwrap());
    }

    fn bearer(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut req =
            Request::new(method, path).with_header("authorization", &format!("Bearer {token}"));
        if let Some(body) = body {
            req = req.with_json(&body);
        }
        self.send(&req)
    }

    fn sign_in(&self, body: Value) -> Response {
        self.send(&own("POST", "/admin/session").with_json(&body))
    }

    fn console(&self, body: Value) -> Console {
        let res = self.sign_in(body);
        let answer = expect_status(&res, 200);
        let cookie = set_cookie(&res);
        let value = cookie
            .strip_prefix("gatehouse_console=")
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_string();
        Console {
            cookie: value,
            csrf: answer["csrf_token"].as_str().unwrap().to_string(),
            session_id: answer["session"]["id"].as_str().unwrap().to_string(),
        }
    }

    /// A request of the console: its cookie, its origin, and on changes its CSRF token.
    fn as_console(&self, c: &Console, method: &str, path: &str, body: Option<Value>) -> Response {
        let mut req =
            own(method, path).with_header("cookie", &format!("gatehouse_console={}", c.cookie));
        if method != "GET" {
            req = req.with_header("x-csrf-token", &c.csrf);
        }
        if let Some(body) = body {
            req = req.with_json(&body);
        }
        self.send(&req)
    }

    fn mint(&self, admin: &str, body: Value) -> (String, Value) {
        let res = self.bearer("POST", "/admin/api-keys", admin, Some(body));
        let body = expect_status(&res, 201);
        (
            body["key"].as_str().unwrap().to_string(),
            body["api_key"].clone(),
        )
    }
}

fn password_sign_in(email: &str) -> Value {
    json!({ "email": email, "password": PASSWORD })
}

#[test]
fn password_sign_in_sets_a_strict_admin_cookie_and_the_session_is_listed_and_audited() {
    let gate = Gate::new(&[]);
    let (admin_id, admin) = gate.user("root@example.com", &["admin"]);
    let res = gate.sign_in(password_sign_in("root@example.com"));
    let answer = expect_status(&res, 200);
    let cookie = set_cookie(&res);
    assert!(cookie.starts_with("gatehouse_console=ghs_"), "{cookie}");
    for attr in [
        "Path=/admin/",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(answer["user"]["id"], admin_id);
    assert_eq!(answer["session"]["via"], "password");
    assert!(answer["csrf_token"].as_str().unwrap().starts_with("ghc_"));
    let fid = answer["session"]["id"].as_str().unwrap();

    // An ordinary session of the admin's, marked as the console's.
    let res = gate.bearer(
        "GET",
        &format!("/admin/users/{admin_id}/sessions"),
        &admin,
        None,
    );
    let sessions = expect_status(&res, 200)["sessions"].clone();
    let listed = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == fid)
        .expect("console session listed");
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["console"]["via"], "password");
    let events = block_on(gate.store.query_audit(&AuditQuery {
        kind: Some("console_signed_in".into()),
        limit: 10,
        ..AuditQuery::default()
    }))
    .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.family_id.as_deref(), Some(fid));
}

#[test]
fn sign_in_is_refused_to_other_origins_non_admins_and_bad_input() {
    let gate = Gate::new(&[]);
    gate.user("root@example.com", &["admin"]);
    gate.user("ed@example.com", &["editor"]);
    let body = password_sign_in("root@example.com");
    // Not from Gatehouse's own origin: a listed site, another site, no header at all.
    for origin in [Some(SITE), Some("https://evil.example"), None] {
        let mut req = Request::new("POST", "/admin/session")
            .with_header("host", HOST)
            .with_json(&body);
        if let Some(origin) = origin {
            req = req.with_header("origin", origin);
        }
        expect_error(&gate.send(&req), 403, "csrf_validation_failed");
    }
    // The browser's own word for a same-origin request without Origin is enough.
    let same = Request::new("POST", "/admin/session")
        .with_header("sec-fetch-site", "same-origin")
        .with_json(&body);
    expect_status(&gate.send(&same), 200);
    expect_error(
        &gate.sign_in(json!({ "email": "root@example.com", "password": "wrong password" })),
        401,
        "invalid_credentials",
    );
    expect_error(
        &gate.sign_in(password_sign_in("ed@example.com")),
        403,
        "insufficient_role",
    );
    for bad in [
        json!({}),
        json!({ "email": "root@example.com" }),
        json!({ "email": "root@example.com", "password": PASSWORD, "api_key": "gk_x" }),
    ] {
        expect_error(&gate.sign_in(bad), 400, "bad_request");
    }
    expect_error(
        &gate.sign_in(json!({ "api_key": "gk_nope" })),
        401,
        "invalid_api_key",
    );
    let mut req = own("POST", "/admin/session").with_header("content-type", "text/plain");
    req.body = b"{}".to_vec();
    let res = gate.send(&req);
    expect_error(&res, 415, "unsupported_media_type");
}

#[test]
fn the_cookie_drives_the_admin_api_from_the_own_origin_with_csrf_on_changes() {
    let gate = Gate::new(&[]);
    gate.user("root@example.com", &["admin"]);
    let (ed_id, _) = gate.user("ed@example.com", &["editor"]);
    let c = gate.console(password_sign_in("root@example.com"));
    expect_status(&gate.as_console(&c, "GET", "/admin/users", None), 200);
    expect_status(&gate.as_console(&c, "GET", "/admin/config", None), 200);
    // Reads need the own origin too: a listed site may not read the admin API with the cookie.
    let cookie = format!("gatehouse_console={}", c.cookie);
    let listed = Request::new("GET", "/admin/users")
        .with_header("host", HOST)
        .with_header("origin", SITE)
        .with_header("cookie", &cookie);
    expect_error(&gate.send(&listed), 403, "csrf_validation_failed");
    let bare = Request::new("GET", "/admin/users").with_header("cookie", &cookie);
    expect_error(&gate.send(&bare), 403, "csrf_validation_failed");
    let fetched = Request::new("GET", "/admin/users").with_header("sec-fetch-site", "same-origin");
    expect_status(&gate.send(&fetched.with_header("cookie", &cookie)), 200);
    // Changes need the session's CSRF token.
    let disable = format!("/admin/users/{ed_id}/disable");
    let no_token = own("POST", &disable)
        .with_header("cookie", &cookie)
        .with_json(&json!({}));
    expect_error(&gate.send(&no_token), 403, "csrf_validation_failed");
    let other = gate.console(password_sign_in("root@example.com"));
    let wrong = own("POST", &disable)
        .with_header("cookie", &cookie)
        .with_header("x-csrf-token", &other.csrf)
        .with_json(&json!({}));
    expect_error(&gate.send(&wrong), 403, "csrf_validation_failed");
    assert!(
        !block_on(gate.store.user_by_id(&ed_id))
            .unwrap()
            .unwrap()
            .disabled
    );
    let res = gate.as_console(&c, "POST", &disable, Some(json!({})));
    assert_eq!(expect_status(&res, 200)["user"]["disabled"], true);
    // Minting through the console: shown once, audited as the admin's.
    let res = gate.as_console(
        &c,
        "POST",
        "/admin/api-keys",
        Some(json!({ "label": "ci", "role": "admin", "scopes": [] })),
    );
    assert!(expect_status(&res, 201)["key"]
        .as_str()
        .unwrap()
        .starts_with("gk_"));
    // GET /admin/session answers the same CSRF token (for a reloaded page).
    let res = gate.as_console(&c, "GET", "/admin/session", None);
    assert_eq!(expect_status(&res, 200)["csrf_token"], c.csrf.as_str());
    // No cookie: no_auth; a garbage cookie: invalid_session.
    expect_error(&gate.send(&own("GET", "/admin/session")), 401, "no_auth");
    let garbage = own("GET", "/admin/users").with_header("cookie", "gatehouse_console=ghs_nope");
    expect_error(&gate.send(&garbage), 401, "invalid_session");
    let two = own("GET", "/admin/users").with_header(
        "cookie",
        &format!(
            "gatehouse_console={}; gatehouse_console={}",
            c.cookie, other.cookie
        ),
    );
    expect_error(&gate.send(&two), 401, "invalid_session");
}

#[test]
fn the_admin_role_is_rechecked_on_every_request() {
    let gate = Gate::new(&[]);
    let (_, root) = gate.user("root@example.com", &["admin"]);
    let (other_id, _) = gate.user("other@example.com", &["admin"]);
    let c = gate.console(password_sign_in("other@example.com"));
    expect_status(&gate.as_console(&c, "GET", "/admin/users", None), 200);
    gate.set_roles(&other_id, &["user"]);
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        403,
        "insufficient_role",
    );
    expect_error(
        &gate.as_console(&c, "GET", "/admin/session", None),
        403,
        "insufficient_role",
    );
    gate.set_roles(&other_id, &["admin"]);
    expect_status(&gate.as_console(&c, "GET", "/admin/users", None), 200);
    // Disabled by another admin: the session is revoked with the others.
    let res = gate.bearer(
        "POST",
        &format!("/admin/users/{other_id}/disable"),
        &root,
        Some(json!({})),
    );
    assert!(
        expect_status(&res, 200)["revoked_sessions"]
            .as_u64()
            .unwrap()
            >= 1
    );
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        401,
        "invalid_session",
    );
}

#[test]
fn sign_out_revocation_password_change_and_expiry_end_the_session() {
    let gate = Gate::new(&[]);
    let (root_id, root) = gate.user("root@example.com", &["admin"]);
    // Sign out: needs the CSRF token, revokes, clears the cookie, and is idempotent.
    let c = gate.console(password_sign_in("root@example.com"));
    let cookie = format!("gatehouse_console={}", c.cookie);
    let res = gate.send(&own("DELETE", "/admin/session").with_header("cookie", &cookie));
    expect_error(&res, 403, "csrf_validation_failed");
    let res = gate.as_console(&c, "DELETE", "/admin/session", None);
    assert_eq!(res.status, 204);
    assert_eq!(
        set_cookie(&res),
        "gatehouse_console=; Path=/admin/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
    );
    let family = block_on(gate.store.family(&c.session_id)).unwrap().unwrap();
    assert_eq!(family.revoke_reason.as_deref(), Some("logout"));
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        401,
        "invalid_session",
    );
    assert_eq!(
        gate.as_console(&c, "DELETE", "/admin/session", None).status,
        204
    );
    assert_eq!(gate.send(&own("DELETE", "/admin/session")).status, 204);

    // Revoked by an admin through the sessions API.
    let c = gate.console(password_sign_in("root@example.com"));
    let res = gate.bearer(
        "DELETE",
        &format!("/admin/users/{root_id}/sessions/{}", c.session_id),
        &root,
        None,
    );
    assert_eq!(res.status, 204);
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        401,
        "invalid_session",
    );

    // A password change elsewhere revokes it with the user's other sessions.
    let c = gate.console(password_sign_in("root@example.com"));
    let res = gate.bearer(
        "POST",
        "/auth/password",
        &root,
        Some(json!({ "current_password": PASSWORD, "new_password": "another long password" })),
    );
    expect_status(&res, 200);
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        401,
        "invalid_session",
    );

    // Twelve hours after sign-in the session has expired.
    let c =
        gate.console(json!({ "email": "root@example.com", "password": "another long password" }));
    gate.advance(12 * HOUR - SECOND);
    expect_status(&gate.as_console(&c, "GET", "/admin/users", None), 200);
    gate.advance(SECOND);
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        401,
        "invalid_session",
    );
}

#[test]
fn a_key_bound_session_carries_the_key_and_ends_with_it() {
    let gate = Gate::new(&[]);
    let (root_id, root) = gate.user("root@example.com", &["admin", "editor"]);
    let (key, record) = gate.mint(
        &root,
        json!({ "label": "console", "role": "admin", "scopes": [] }),
    );
    let res = gate.sign_in(json!({ "api_key": key }));
    let answer = expect_status(&res, 200);
    assert_eq!(answer["session"]["via"], "api_key");
    assert_eq!(answer["session"]["api_key_id"], record["id"]);
    assert_eq!(answer["roles"], json!(["admin"]));
    let c = gate.console(json!({ "api_key": key }));
    // Changes made through it name the key, as with the key itself.
    let res = gate.as_console(
        &c,
        "POST",
        "/admin/users",
        Some(json!({ "email": "new@example.com", "password": PASSWORD })),
    );
    expect_status(&res, 201);
    let events = block_on(gate.store.query_audit(&AuditQuery {
        kind: Some("registered".into()),
        actor_user_id: Some(root_id.clone()),
        limit: 10,
        ..AuditQuery::default()
    }))
    .unwrap();
    let detail = events[0].event.detail.as_ref().unwrap();
    assert_eq!(detail["via_key"], record["id"]);
    assert_eq!(detail["via_console"], c.session_id.as_str());
    // Revoking the key ends the session on the next request.
    let res = gate.bearer(
        "DELETE",
        &format!("/admin/api-keys/{}", record["id"].as_str().unwrap()),
        &root,
        None,
    );
    assert_eq!(res.status, 204);
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        401,
        "invalid_session",
    );
    // A key whose role is not admin does not open the console.
    let (editor_key, _) = gate.mint(
        &root,
        json!({ "label": "editing", "role": "editor", "scopes": [] }),
    );
    expect_error(
        &gate.sign_in(json!({ "api_key": editor_key })),
        403,
        "insufficient_role",
    );
    // A key that expires ends its session with it.
    let (short, _) = gate.mint(
        &root,
        json!({ "label": "short", "role": "admin", "scopes": [], "expires_at": gate.now() + HOUR }),
    );
    let c = gate.console(json!({ "api_key": short }));
    gate.advance(HOUR);
    expect_error(
        &gate.as_console(&c, "GET", "/admin/users", None),
        401,
        "invalid_session",
    );
}

#[test]
fn console_tokens_and_refresh_tokens_never_stand_in_for_each_other() {
    let gate = Gate::new(&[]);
    gate.user("root@example.com", &["admin"]);
    let c = gate.console(password_sign_in("root@example.com"));
    let res = gate.send(
        &Request::new("POST", "/auth/refresh").with_json(&json!({ "refresh_token": c.cookie })),
    );
    expect_error(&res, 401, "invalid_refresh_token");
    let res = gate.send(&Request::new("POST", "/auth/login").with_json(
        &json!({ "email": "root@example.com", "password": PASSWORD, "refresh_token_in_body": true }),
    ));
    let refresh = expect_status(&res, 200)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let req =
        own("GET", "/admin/users").with_header("cookie", &format!("gatehouse_console={refresh}"));
    expect_error(&gate.send(&req), 401, "invalid_session");
    // A Bearer credential wins over the cookie.
    let res = gate.send(
        &own("GET", "/admin/users")
            .with_header("cookie", &format!("gatehouse_console={}", c.cookie))
            .with_header("authorization", "Bearer gk_nope"),
    );
    expect_error(&res, 401, "invalid_api_key");
}

#[test]
fn the_console_page_has_its_own_strict_headers() {
    let gate = Gate::new(&[]);
    for path in [
        "/admin/console/",
        "/admin/console/console.js",
        "/admin/console/console.css",
    ] {
        for method in ["GET", "HEAD"] {
            let res = gate.send(&Request::new(method, path));
            assert_eq!(res.status, 200, "{method} {path}");
            assert_eq!(res.header("content-security-policy"), Some(CSP));
            assert_eq!(res.header("x-frame-options"), Some("DENY"));
            assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
            assert_eq!(res.header("cache-control"), Some("no-store"));
            assert_eq!(res.body.is_empty(), method == "HEAD", "{method} {path}");
        }
    }
    assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe"));
    let page = gate.send(&Request::new("GET", "/admin/console/"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("console.js") && html.contains("console.css"));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    let res = gate.send(&Request::new("GET", "/admin/console"));
    assert_eq!(res.status, 308);
    assert_eq!(res.header("location"), Some("/admin/console/"));
    expect_error(
        &gate.send(&Request::new("POST", "/admin/console/")),
        405,
        "method_not_allowed",
    );
}

#[test]
fn config_names_secrets_but_never_shows_them() {
    let routes = json!({
        "cms": {
            "prefix": "/cms/",
            "upstream": "https://cms.example.com/api/",
            "inject": { "header": "api-key", "value": "{secret}" },
            "forward_all": true,
            "read": { "roles": ["anonymous"], "secret": "CMS_READ_KEY" },
        }
    })
    .to_string();
    let gate = Gate::new(&[
        ("ROUTES", &routes),
        ("CMS_READ_KEY", "cms-read-key-value-0123456789"),
        ("UPSTREAM_SIGNING_SECRET", &"u".repeat(40)),
    ]);
    let (_, root) = gate.user("root@example.com", &["admin"]);
    let (_, user) = gate.user("ed@example.com", &["user"]);
    let res = gate.bearer("GET", "/admin/config", &root, None);
    let body = expect_status(&res, 200);
    let text = body.to_string();
    for secret in [PEPPER, "cms-read-key-value-0123456789", &"u".repeat(40)] {
        assert!(!text.contains(secret), "a secret's value in {text}");
    }
    assert_eq!(body["routes"][0]["name"], "cms");
    assert_eq!(body["routes"][0]["secrets"], json!(["CMS_READ_KEY"]));
    let secrets = body["secrets"].as_array().unwrap();
    for name in [
        "JWT_SIGNING_KEY",
        "API_KEY_PEPPER",
        "UPSTREAM_SIGNING_SECRET",
        "CMS_READ_KEY",
    ] {
        let s = secrets.iter().find(|s| s["name"] == name).expect(name);
        assert_eq!(s["set"], true, "{name}");
    }
    assert_eq!(body["accounts"]["registration"], "open");
    assert_eq!(body["browser"]["allowed_origins"], json!([SITE]));
    expect_error(
        &gate.bearer("GET", "/admin/config", &user, None),
        403,
        "insufficient_role",
    );
    expect_error(
        &gate.send(&Request::new("GET", "/admin/config")),
        401,
        "no_auth",
    );
}

#[test]
fn config_lists_the_trusted_issuers() {
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    let issuers = json!({
        "idp": {
            "iss": "https://idp.example", "jwks_uri": "https://idp.example/jwks",
            "audience": "site", "algorithms": ["RS256", "ES256"], "cookie": "idp_session",
        },
        "inhouse": {
            "iss": "https://auth.site.example", "audience": ["site", "app"], "algorithms": ["EdDSA"],
            "jwks": { "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1" }] },
            "known_users_only": true, "email_claim": "email", "bearer": true,
        },
    })
    .to_string();
    let gate = Gate::new(&[("TRUSTED_ISSUERS", &issuers)]);
    let (_, root) = gate.user("root@example.com", &["admin"]);
    let body = expect_status(&gate.bearer("GET", "/admin/config", &root, None), 200);
    assert_eq!(
        body["issuers"],
        json!([
            {
                "name": "idp", "iss": "https://idp.example", "jwks_uri": "https://idp.example/jwks",
                "algorithms": ["RS256", "ES256"], "audience": ["site"], "bearer": true,
                "cookie": "idp_session", "known_users_only": false,
            },
            {
                "name": "inhouse", "iss": "https://auth.site.example", "jwks_uri": "inline",
                "algorithms": ["EdDSA"], "audience": ["site", "app"], "bearer": true,
                "cookie": null, "known_users_only": true,
            },
        ])
    );
    // Without TRUSTED_ISSUERS, an empty list.
    let plain = Gate::new(&[]);
    let (_, root) = plain.user("root@example.com", &["admin"]);
    let body = expect_status(&plain.bearer("GET", "/admin/config", &root, None), 200);
    assert_eq!(body["issuers"], json!([]));
}

#[test]
fn whoami_answers_everyone_and_never_401s_without_a_credential() {
    let gate = Gate::new(&[]);
    let res = gate.send(&Request::new("GET", "/auth/whoami"));
    assert_eq!(
        expect_status(&res, 200),
        json!({ "authenticated": false, "registration": "open" })
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let (id, root) = gate.user("root@example.com", &["admin"]);
    let body = expect_status(&gate.bearer("GET", "/auth/whoami", &root, None), 200);
    assert_eq!(body["authenticated"], true);
    assert_eq!(body["credential"], "access_token");
    assert_eq!(body["user"]["id"], id);
    assert!(body["session_id"].as_str().unwrap().starts_with("fam_"));
    let (key, record) = gate.mint(
        &root,
        json!({ "label": "whoami", "role": "admin", "scopes": ["cms"] }),
    );
    let body = expect_status(&gate.bearer("GET", "/auth/whoami", &key, None), 200);
    assert_eq!(body["credential"], "api_key");
    assert_eq!(body["api_key_id"], record["id"]);
    assert_eq!(body["scopes"], json!(["cms"]));
    let text = body.to_string();
    assert!(!text.contains(&key) && !text.contains(PEPPER));
    // A credential that is sent but not valid is refused with its code.
    expect_error(
        &gate.bearer("GET", "/auth/whoami", "not-a-token", None),
        401,
        "invalid_token",
    );
    expect_error(
        &gate.bearer("GET", "/auth/whoami", "gk_nope", None),
        401,
        "invalid_api_key",
    );
    // Closed registration is said so.
    let closed = Gate::new(&[("REGISTRATION", "closed")]);
    let body = expect_status(&closed.send(&Request::new("GET", "/auth/whoami")), 200);
    assert_eq!(body["registration"], "closed");
}
