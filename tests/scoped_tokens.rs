//! Scoped tokens (`POST /auth/token`) natively, with a clock moved by hand: each limit at its
//! boundary (roles, routes, lifetime against `SCOPED_TOKEN_MAX_TTL_SECONDS` and against the
//! minting credential's own end, audiences), the token's shape, what the proxy and the other
//! endpoints make of it, minting from a scoped token, the rate limit and the audit event.
//! Revocation of scoped tokens with their session or key is in `revocation.rs`.

mod common;

use futures::executor::block_on;
use serde_json::{json, Value};

use gatehouse::domain::store::{AuditEvent, AuditQuery, Store};
use gatehouse::primitives::encoding::b64url_decode;
use gatehouse::primitives::http::{Request, Response};
use gatehouse::routes::{serve, Outcome};

use common::{error_code, expect_error, expect_status, Gate, OkCms, PASSWORD, SECOND, T0};

const PEPPER: &str = "pepper-pepper-pepper-pepper-pepper-42";
const SECRET: &str = "an upstream signing secret of 32+ chars";

/// `/cms/`: reads `user`, writes `editor`; `/blog/`: reads `user`.
fn routes() -> String {
    json!({
        "cms": common::forward_all_route("cms", Some("editor")),
        "blog": common::forward_all_route("blog", None),
    })
    .to_string()
}

struct Scoped {
    gate: Gate,
    cms: OkCms,
}

/// A signed-in user: id, access token and session.
struct Login {
    id: String,
    access: String,
    sid: String,
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64url_decode(payload).unwrap()).unwrap()
}

impl Scoped {
    fn new(vars: &[(&str, &str)]) -> Self {
        let routes = routes();
        Self {
            gate: Gate::new(common::config(
                vars,
                &[
                    ("REGISTRATION", "open"),
                    ("PBKDF2_ITERATIONS", "10000"),
                    ("API_KEY_PEPPER", PEPPER),
                    ("ROUTES", &routes),
                    ("UPSTREAM_SIGNING_SECRET", SECRET),
                    ("CMS_KEY", "cms-key-value"),
                    ("ACCESS_TOKEN_TTL", "900"),
                    ("SCOPED_TOKEN_MAX_TTL_SECONDS", "300"),
                    ("SCOPED_TOKEN_AUDIENCES", "billing,search"),
                ],
            )),
            cms: OkCms::default(),
        }
    }

    fn call(&self, method: &str, path: &str, bearer: &str, body: Option<Value>) -> Response {
        let mut req =
            Request::new(method, path).with_header("authorization", &format!("Bearer {bearer}"));
        if let Some(body) = body {
            req = req.with_json(&body);
        }
        self.gate.send(&req)
    }

    /// `POST /auth/token` with `bearer` and `body`.
    fn mint(&self, bearer: &str, body: Value) -> Response {
        self.call("POST", "/auth/token", bearer, Some(body))
    }

    /// A token that must be minted.
    #[track_caller]
    fn token(&self, bearer: &str, body: Value) -> String {
        expect_status(&self.mint(bearer, body), 200)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The refusal `body` must get, as `(status, code)`.
    fn refused(&self, bearer: &str, body: Value) -> (u16, Option<String>) {
        let res = self.mint(bearer, body);
        (res.status, error_code(&res))
    }

    /// A proxied request: its status and error code (`None` when proxied).
    fn proxy(&self, method: &str, path: &str, bearer: &str) -> (u16, Option<String>) {
        let mut req =
            Request::new(method, path).with_header("authorization", &format!("Bearer {bearer}"));
        if method != "GET" {
            req = req.with_json(&json!({ "title": "t" }));
        }
        match block_on(serve(&self.gate.svc(), &self.cms, req)) {
            Outcome::Proxied(answer) => (answer.status, None),
            Outcome::Local(res) => (res.status, error_code(&res)),
        }
    }

    /// Registers `email` with `roles` and logs in.
    fn user(&self, email: &str, roles: &[&str]) -> Login {
        let res = self
            .gate
            .send(&Request::new("POST", "/auth/register").with_json(
                &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
            ));
        let id = expect_status(&res, 201)["user"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let event = AuditEvent {
            at: self.gate.now(),
            kind: "role_changed".into(),
            actor_user_id: None,
            subject_user_id: Some(id.clone()),
            family_id: None,
            ip: None,
            user_agent: None,
            detail: None,
        };
        assert!(block_on(
            self.gate
                .store
                .set_roles(&id, &roles, self.gate.now(), &event)
        )
        .unwrap());
        let res = self
            .gate
            .send(&Request::new("POST", "/auth/login").with_json(
                &json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
            ));
        let access = expect_status(&res, 200)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        Login {
            id,
            sid: claims_of(&access)["sid"].as_str().unwrap().to_string(),
            access,
        }
    }

    /// An API key of `owner` minted by `admin`: `role`, `scopes`, expiring at `expires_at`.
    fn key(
        &self,
        admin: &str,
        owner: &str,
        role: &str,
        scopes: &[&str],
        expires_at: Option<i64>,
    ) -> (String, String) {
        let res = self.call(
            "POST",
            "/admin/api-keys",
            admin,
            Some(
                json!({ "owner_user_id": owner, "label": "job", "role": role,
                         "scopes": scopes, "expires_at": expires_at }),
            ),
        );
        let body = expect_status(&res, 201);
        (
            body["key"].as_str().unwrap().to_string(),
            body["api_key"]["id"].as_str().unwrap().to_string(),
        )
    }
}

fn bad(code: &str) -> (u16, Option<String>) {
    (400, Some(code.to_string()))
}

fn forbidden(code: &str) -> (u16, Option<String>) {
    (403, Some(code.to_string()))
}

#[test]
fn the_answer_and_the_token_follow_rfc_8693_shapes() {
    let s = Scoped::new(&[]);
    let ada = s.user("ada@example.com", &["user", "editor"]);
    let res = s.mint(
        &ada.access,
        json!({ "roles": ["user", "user"], "routes": ["cms"], "ttl": 120 }),
    );
    let body = expect_status(&res, 200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(body["expires_in"], 120);
    assert_eq!(body["expires_at"], T0 / 1000 + 120);
    assert_eq!(body["scope"], "role:user route:cms");
    assert_eq!(body["roles"], json!(["user"]));
    assert_eq!(body["routes"], json!(["cms"]));
    assert_eq!(body["aud"], Value::Null);
    let token = body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(claims["sub"], ada.id.as_str());
    assert_eq!(claims["act"], json!({ "sub": ada.id }));
    assert_eq!(claims["sid"], ada.sid.as_str());
    assert_eq!(claims["aud"], "gatehouse");
    assert_eq!(claims["iss"], "gatehouse");
    assert_eq!(claims["roles"], json!(["user"]));
    assert_eq!(claims["routes"], json!(["cms"]));
    assert_eq!(claims["scope"], "role:user route:cms");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    // Signed like every access token: the configured key verifies it.
    let keys = &s.gate.config.tokens.keys;
    let verified = keys
        .verify(token, s.gate.now(), 0, "gatehouse", "gatehouse")
        .unwrap();
    assert_eq!(verified.claims.act.unwrap().sub, ada.id);

    // Nothing asked: every role the caller carries, no route limit (an access token has
    // none), the longest lifetime.
    let body = expect_status(&s.mint(&ada.access, json!({})), 200);
    assert_eq!(body["roles"], json!(["user", "editor"]));
    assert_eq!(body["routes"], Value::Null);
    assert_eq!(body["scope"], "role:user role:editor");
    assert_eq!(body["expires_in"], 300);
    assert!(claims_of(body["access_token"].as_str().unwrap())
        .get("routes")
        .is_none());
    // An empty body is as `{}`.
    let res = s.gate.send(
        &Request::new("POST", "/auth/token")
            .with_header("authorization", &format!("Bearer {}", ada.access)),
    );
    expect_status(&res, 200);

    // Audited, without the token.
    let events = block_on(s.gate.store.query_audit(&AuditQuery {
        kind: Some("token_minted".into()),
        limit: 10,
        ..AuditQuery::default()
    }))
    .unwrap();
    assert_eq!(events.len(), 3);
    let first = &events.last().unwrap().event;
    assert_eq!(first.actor_user_id.as_deref(), Some(ada.id.as_str()));
    assert_eq!(first.subject_user_id.as_deref(), Some(ada.id.as_str()));
    assert_eq!(first.family_id.as_deref(), Some(ada.sid.as_str()));
    let detail = first.detail.as_ref().unwrap();
    assert_eq!(detail["via"], "access_token");
    assert_eq!(detail["roles"], json!(["user"]));
    assert_eq!(detail["routes"], json!(["cms"]));
    assert_eq!(detail["ttl"], 120);
    assert_eq!(detail["jti"], claims["jti"]);
    assert!(!detail.to_string().contains(token));
}

#[test]
fn ttl_is_bounded_by_the_maximum_and_by_the_callers_remaining_lifetime() {
    let s = Scoped::new(&[]);
    let ada = s.user("ada@example.com", &["user"]);
    // The configured maximum, 300 s, at its boundary (the access token has 900 s left).
    s.token(&ada.access, json!({ "ttl": 300 }));
    assert_eq!(
        s.refused(&ada.access, json!({ "ttl": 301 })),
        bad("bad_request")
    );
    s.token(&ada.access, json!({ "ttl": 1 }));
    for ttl in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!("60"),
        json!(i64::MAX),
    ] {
        assert_eq!(
            s.refused(&ada.access, json!({ "ttl": ttl })),
            bad("bad_request"),
            "ttl {ttl}"
        );
    }
    // With 200 s left on the access token, 200 is the longest (and the default).
    s.gate.advance(700 * SECOND);
    s.token(&ada.access, json!({ "ttl": 200 }));
    assert_eq!(
        s.refused(&ada.access, json!({ "ttl": 201 })),
        bad("bad_request")
    );
    let body = expect_status(&s.mint(&ada.access, json!({})), 200);
    assert_eq!(body["expires_in"], 200);
    assert_eq!(
        body["expires_at"],
        T0 / 1000 + 900,
        "never after the parent's exp"
    );
    // Half a second into the last second: 0 whole seconds left, nothing can be minted, even
    // though the access token itself is still accepted within the clock leeway.
    s.gate.set_time(T0 + 899 * SECOND);
    s.token(&ada.access, json!({ "ttl": 1 }));
    assert_eq!(
        s.refused(&ada.access, json!({ "ttl": 2 })),
        bad("bad_request")
    );
    s.gate.set_time(T0 + 900 * SECOND + 500);
    expect_status(&s.call("GET", "/auth/me", &ada.access, None), 200);
    assert_eq!(s.refused(&ada.access, json!({})), bad("bad_request"));
    assert_eq!(
        s.refused(&ada.access, json!({ "ttl": 1 })),
        bad("bad_request")
    );
}

#[test]
fn an_api_key_without_expiry_mints_up_to_the_maximum_and_one_with_expiry_up_to_it() {
    let s = Scoped::new(&[("SCOPED_TOKEN_MAX_TTL_SECONDS", "3600")]);
    let admin = s.user("root@example.com", &["admin", "user"]);
    let (forever, forever_id) = s.key(&admin.access, &admin.id, "user", &["cms"], None);
    s.token(&forever, json!({ "ttl": 3600 }));
    assert_eq!(
        s.refused(&forever, json!({ "ttl": 3601 })),
        bad("bad_request")
    );
    let body = expect_status(&s.mint(&forever, json!({})), 200);
    assert_eq!(body["expires_in"], 3600);
    // A key's scope is the token's default; its id rides in `act`, there is no session.
    assert_eq!(body["routes"], json!(["cms"]));
    assert_eq!(body["roles"], json!(["user"]));
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["act"],
        json!({ "sub": admin.id, "key_id": forever_id })
    );
    assert!(claims.get("sid").is_none());

    // A key that expires in 100.5 s: 100 whole seconds are left.
    let (brief, _) = s.key(
        &admin.access,
        &admin.id,
        "user",
        &["cms"],
        Some(T0 + 100 * SECOND + 500),
    );
    s.token(&brief, json!({ "ttl": 100 }));
    assert_eq!(s.refused(&brief, json!({ "ttl": 101 })), bad("bad_request"));
    assert_eq!(
        expect_status(&s.mint(&brief, json!({})), 200)["expires_in"],
        100
    );
    s.gate.advance(60 * SECOND);
    s.token(&brief, json!({ "ttl": 40 }));
    assert_eq!(s.refused(&brief, json!({ "ttl": 41 })), bad("bad_request"));
}

#[test]
fn roles_routes_and_audiences_are_subsets_of_what_the_caller_has() {
    let s = Scoped::new(&[]);
    let admin = s.user("root@example.com", &["admin", "user", "editor"]);
    let ada = s.user("ada@example.com", &["user", "editor"]);
    // Roles: a subset of the caller's; one more is 403; a malformed name 400.
    s.token(&ada.access, json!({ "roles": ["editor", "user"] }));
    s.token(&ada.access, json!({ "roles": [] }));
    assert_eq!(
        s.refused(&ada.access, json!({ "roles": ["user", "admin"] })),
        forbidden("insufficient_role")
    );
    for roles in [json!(["Editor"]), json!([""]), json!("user"), json!([1])] {
        assert_eq!(
            s.refused(&ada.access, json!({ "roles": roles })),
            bad("bad_request"),
            "roles {roles}"
        );
    }
    // Routes: configured ones only (400 otherwise), within the caller's scope (403).
    s.token(&ada.access, json!({ "routes": ["cms", "blog"] }));
    assert_eq!(
        s.refused(&ada.access, json!({ "routes": ["cms", "shop"] })),
        bad("bad_request")
    );
    assert_eq!(
        s.refused(&ada.access, json!({ "routes": ["a b"] })),
        bad("bad_request")
    );
    let (key, _) = s.key(&admin.access, &ada.id, "editor", &["cms"], None);
    s.token(&key, json!({ "routes": ["cms"], "roles": ["editor"] }));
    assert_eq!(
        s.refused(&key, json!({ "routes": ["blog"] })),
        forbidden("scope_violation")
    );
    assert_eq!(
        s.refused(&key, json!({ "roles": ["user"] })),
        forbidden("insufficient_role"),
        "a key carries its one role"
    );
    // Audiences: one of SCOPED_TOKEN_AUDIENCES, or none; Gatehouse's own is not listed.
    let billing = s.token(&ada.access, json!({ "aud": "billing", "roles": ["user"] }));
    assert_eq!(claims_of(&billing)["aud"], "billing");
    for aud in [
        json!("gatehouse"),
        json!("Billing"),
        json!("shop"),
        json!(["billing"]),
    ] {
        assert_eq!(
            s.refused(&ada.access, json!({ "aud": aud })),
            bad("bad_request"),
            "aud {aud}"
        );
    }
    // A token for another service is not accepted by Gatehouse itself.
    assert_eq!(
        s.proxy("GET", "/cms/items", &billing),
        (401, Some("invalid_token".into()))
    );
    expect_error(
        &s.call("GET", "/auth/me", &billing, None),
        401,
        "invalid_token",
    );
    assert_eq!(
        s.refused(&billing, json!({ "roles": ["user"] })),
        (401, Some("invalid_token".into()))
    );
}

#[test]
fn the_proxy_enforces_the_tokens_routes_and_roles() {
    let s = Scoped::new(&[]);
    let ada = s.user("ada@example.com", &["user", "editor"]);
    assert_eq!(s.proxy("POST", "/cms/items", &ada.access), (200, None));
    let reader = s.token(&ada.access, json!({ "roles": ["user"], "routes": ["cms"] }));
    assert_eq!(s.proxy("GET", "/cms/items", &reader), (200, None));
    assert_eq!(
        s.proxy("POST", "/cms/items", &reader),
        (403, Some("insufficient_role".into()))
    );
    let sent = s.cms.urls.borrow().len();
    assert_eq!(
        s.proxy("GET", "/blog/posts", &reader),
        (403, Some("scope_violation".into()))
    );
    assert_eq!(s.cms.urls.borrow().len(), sent, "nothing went upstream");
    let anywhere = s.token(&ada.access, json!({ "roles": ["user"] }));
    assert_eq!(s.proxy("GET", "/blog/posts", &anywhere), (200, None));
    // Expired at exp + leeway, like any access token.
    s.gate.advance(300 * SECOND + 30 * SECOND);
    assert_eq!(s.proxy("GET", "/cms/items", &reader), (200, None));
    s.gate.advance(SECOND);
    assert_eq!(
        s.proxy("GET", "/cms/items", &reader),
        (401, Some("expired_token".into()))
    );
}

#[test]
fn a_scoped_token_mints_only_within_its_own_scope() {
    let s = Scoped::new(&[]);
    let ada = s.user("ada@example.com", &["user", "editor"]);
    let parent = s.token(
        &ada.access,
        json!({ "roles": ["user", "editor"], "routes": ["cms"], "ttl": 100 }),
    );
    // Its own scope again, or less.
    let child = s.token(&parent, json!({ "roles": ["user"], "ttl": 100 }));
    let claims = claims_of(&child);
    assert_eq!(
        claims["routes"],
        json!(["cms"]),
        "the parent's routes by default"
    );
    assert_eq!(claims["act"], json!({ "sub": ada.id }));
    assert_eq!(claims["sid"], ada.sid.as_str());
    assert_eq!(
        s.refused(&parent, json!({ "ttl": 101 })),
        bad("bad_request")
    );
    assert_eq!(
        s.refused(&parent, json!({ "routes": ["blog"] })),
        forbidden("scope_violation")
    );
    // The child has only `user`: it cannot mint `editor` back.
    assert_eq!(
        s.refused(&child, json!({ "roles": ["editor"] })),
        forbidden("insufficient_role")
    );
    s.gate.advance(40 * SECOND);
    s.token(&child, json!({ "ttl": 60 }));
    assert_eq!(s.refused(&child, json!({ "ttl": 61 })), bad("bad_request"));

    // A scoped token of a key keeps the key's id down the chain.
    let admin = s.user("root@example.com", &["admin", "user"]);
    let (key, key_id) = s.key(&admin.access, &ada.id, "user", &["cms", "blog"], None);
    let from_key = s.token(&key, json!({ "routes": ["blog"] }));
    let grandchild = s.token(&from_key, json!({}));
    let claims = claims_of(&grandchild);
    assert_eq!(claims["act"], json!({ "sub": ada.id, "key_id": key_id }));
    assert_eq!(claims["routes"], json!(["blog"]));
    assert_eq!(claims["roles"], json!(["user"]));
}

#[test]
fn scoped_tokens_read_but_never_manage_the_account() {
    // With TOTP on, so that its endpoints answer for themselves rather than `mfa_unavailable`.
    let s = Scoped::new(&[(
        "MFA_ENCRYPTION_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    )]);
    let admin = s.user("root@example.com", &["admin", "user"]);
    let token = s.token(&admin.access, json!({ "routes": ["cms"] }));
    expect_status(&s.call("GET", "/auth/me", &token, None), 200);
    let who = expect_status(&s.call("GET", "/auth/whoami", &token, None), 200);
    assert_eq!(who["credential"], "scoped_token");
    assert_eq!(who["roles"], json!(["admin", "user"]));
    assert_eq!(who["scopes"], json!(["cms"]));
    assert_eq!(who["session_id"], admin.sid.as_str());
    for (method, path, body) in [
        ("GET", "/admin/users", None),
        ("GET", "/auth/sessions", None),
        (
            "POST",
            "/auth/password",
            Some(json!({ "current_password": PASSWORD, "new_password": "another long one" })),
        ),
        ("GET", "/auth/mfa", None),
        (
            "POST",
            "/auth/mfa/totp/start",
            Some(json!({ "password": PASSWORD })),
        ),
        (
            "POST",
            "/auth/mfa/recovery-codes",
            Some(json!({ "password": PASSWORD })),
        ),
        (
            "DELETE",
            "/auth/mfa/totp",
            Some(json!({ "password": PASSWORD })),
        ),
    ] {
        expect_error(&s.call(method, path, &token, body), 403, "scope_violation");
    }
    // The session itself still may.
    expect_status(&s.call("GET", "/admin/users", &admin.access, None), 200);
}

#[test]
fn minting_is_rate_limited_per_credential_and_needs_one() {
    let s = Scoped::new(&[("RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL", "3")]);
    let ada = s.user("ada@example.com", &["user"]);
    let tab = s.gate.send(&Request::new("POST", "/auth/login").with_json(
        &json!({ "email": "ada@example.com", "password": PASSWORD, "refresh_token_in_body": true }),
    ));
    let other_session = expect_status(&tab, 200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        s.token(&ada.access, json!({}));
    }
    let res = s.mint(&ada.access, json!({}));
    expect_error(&res, 429, "auth_rate_limited");
    assert!(res.header("retry-after").is_some());
    // A refused request counts too; another session has its own count.
    s.token(&other_session, json!({}));
    // The window (900 s by default) ends.
    s.gate.advance(900 * SECOND);
    let fresh = s.gate.send(&Request::new("POST", "/auth/login").with_json(
        &json!({ "email": "ada@example.com", "password": PASSWORD, "refresh_token_in_body": true }),
    ));
    let fresh = expect_status(&fresh, 200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    s.token(&fresh, json!({}));

    // No credential, a bad body, the wrong method.
    expect_error(
        &s.gate
            .send(&Request::new("POST", "/auth/token").with_json(&json!({}))),
        401,
        "no_auth",
    );
    let mut req = Request::new("POST", "/auth/token")
        .with_header("authorization", &format!("Bearer {fresh}"))
        .with_header("content-type", "application/json");
    req.body = b"{not json".to_vec();
    expect_error(&s.gate.send(&req), 400, "invalid_json");
    expect_error(
        &s.call("GET", "/auth/token", &fresh, None),
        405,
        "method_not_allowed",
    );
    expect_error(&s.mint("not-a-token", json!({})), 401, "invalid_token");
}

#[test]
fn the_configuration_summary_shows_the_scoped_token_limits() {
    let s = Scoped::new(&[("RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL", "7")]);
    let admin = s.user("root@example.com", &["admin"]);
    let body = expect_status(&s.call("GET", "/admin/config", &admin.access, None), 200);
    assert_eq!(body["tokens"]["scoped_max_ttl_secs"], 300);
    assert_eq!(
        body["tokens"]["scoped_audiences"],
        json!(["billing", "search"])
    );
    assert_eq!(body["limits"]["rate"]["token_mint_per_credential"], 7);
}
