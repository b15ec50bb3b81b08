//! Native end-to-end tests of the portable core: `gatehouse::routes::handle` over the in-memory
//! store, RustCrypto PBKDF2, the system random source and a clock the test moves by hand.
//!
//! These cover what the workerd end-to-end tests cannot do easily: anything that needs time to
//! pass (idle timeout, absolute lifetime, the grace window, access-token expiry) or a look into
//! storage (revocation reasons, audit events, live tokens, stored hashes).

mod common;

use futures::executor::block_on;
use serde_json::{json, Value};

use gatehouse::domain::config::Config;
use gatehouse::domain::refresh;
use gatehouse::domain::store::{
    AuditEvent, Family, NewFamily, PasswordPhc, Store, TokenHash, TokenState, User,
};
use gatehouse::domain::token::{AccessClaims, KeySet};
use gatehouse::primitives::encoding::{b64url, b64url_decode, hex};
use gatehouse::primitives::http::{Request, Response};
use gatehouse::primitives::platform::{RustPbkdf2, SystemRng};

use common::{describe, error_code, expect_error, expect_status, PASSWORD, SECOND, SEED, T0};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A key Gatehouse does not know.
const OTHER_SEED: [u8; 32] = [8; 32];
const DEFAULT_REFRESH_TTL_SECS: i64 = 30 * 86_400;
const DEFAULT_GRACE_MS: i64 = 10 * SECOND;
const DEFAULT_MAX_BODY: usize = 65_536;

/// A configuration: the fixed signing key, open registration and cheap PBKDF2, under
/// `overrides`.
fn config(overrides: &[(&str, &str)]) -> Config {
    common::config(
        overrides,
        &[
            ("REGISTRATION", "open"),
            ("PBKDF2_ITERATIONS", "10000"),
            ("ALLOWED_ORIGINS", SITE),
        ],
    )
}

/// The page origin the tests' browser requests come from (listed in `ALLOWED_ORIGINS`).
const SITE: &str = "https://site.example";

/// What a successful register, login or refresh in body mode hands out.
#[derive(Debug, Clone)]
struct Session {
    access_token: String,
    refresh_token: String,
    user_id: String,
}

impl Session {
    fn from_response(res: &Response) -> Self {
        let body = res.json_body();
        let field = |name: &str| {
            body[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {body}"))
                .to_string()
        };
        Self {
            access_token: field("access_token"),
            refresh_token: field("refresh_token"),
            user_id: body["user"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("no user id in {body}"))
                .to_string(),
        }
    }
}

/// The shared [`common::Gate`] with the core tests' helpers.
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

    /// The same store and clock under another configuration (think: a redeploy).
    fn reconfigure(&mut self, overrides: &[(&str, &str)]) {
        self.0.config = config(overrides);
    }

    fn post(&self, path: &str, body: Value) -> Response {
        self.send(&Request::new("POST", path).with_json(&body))
    }

    /// Registers `email` in body mode.
    fn register(&self, email: &str) -> Session {
        let res = self.post(
            "/auth/register",
            json!({ "email": email, "password": PASSWORD, "refresh_token_in_body": true }),
        );
        expect_status(&res, 201);
        Session::from_response(&res)
    }

    fn login_response(&self, email: &str, password: &str) -> Response {
        self.post(
            "/auth/login",
            json!({ "email": email, "password": password, "refresh_token_in_body": true }),
        )
    }

    /// Logs in in body mode; must succeed.
    fn login(&self, email: &str) -> Session {
        let res = self.login_response(email, PASSWORD);
        expect_status(&res, 200);
        Session::from_response(&res)
    }

    /// Refreshes in body mode.
    fn refresh(&self, token: &str) -> Response {
        self.post("/auth/refresh", json!({ "refresh_token": token }))
    }

    /// Refreshes in body mode; must succeed. Returns the new refresh token.
    #[track_caller]
    fn refreshed(&self, token: &str) -> String {
        let res = self.refresh(token);
        expect_status(&res, 200);
        Session::from_response(&res).refresh_token
    }

    fn me(&self, access_token: &str) -> Response {
        self.send(&bearer("/auth/me", access_token))
    }

    // Direct store access.

    fn user(&self, id: &str) -> User {
        block_on(self.store.user_by_id(id))
            .expect("user_by_id")
            .expect("user exists")
    }

    fn token_state(&self, token: &str) -> Option<TokenState> {
        block_on(self.store.token_state(&refresh::hash(token))).expect("token_state")
    }

    /// Adds the `X-CSRF-Token` of `token`'s session, as the page that logged in would.
    fn with_csrf(&self, req: Request, token: &str) -> Request {
        let family = self.family_of(token);
        req.with_header(
            "x-csrf-token",
            &self.config.browser.csrf_key.token(&family.id),
        )
    }

    fn family_of(&self, token: &str) -> Family {
        self.token_state(token).expect("token is stored").family
    }

    fn live_tokens(&self, family_id: &str) -> u64 {
        block_on(self.store.live_tokens(family_id)).expect("live_tokens")
    }

    fn events(&self, user_id: &str) -> Vec<AuditEvent> {
        block_on(self.store.audit_events(Some(user_id), 100)).expect("audit_events")
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and assertions

fn bearer(path: &str, token: &str) -> Request {
    Request::new("GET", path).with_header("authorization", &format!("Bearer {token}"))
}

/// A POST with an arbitrary body and, optionally, a content type.
fn post_raw(path: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Request {
    let mut req = Request::new("POST", path);
    if let Some(ct) = content_type {
        req = req.with_header("content-type", ct);
    }
    req.body = body.into();
    req
}

fn post_json(path: &str, body: &Value) -> Request {
    Request::new("POST", path).with_json(body)
}

/// Adds a `Cookie` header, and the JSON content type a real client sends with a cookie-driven
/// state change (the gateway refuses one without it).
fn with_cookie(req: Request, cookie: &str) -> Request {
    let req = req
        .with_header("cookie", cookie)
        .with_header("origin", SITE);
    if req.header("content-type").is_some() {
        req
    } else {
        req.with_header("content-type", "application/json")
    }
}

/// Every `Set-Cookie` of a response.
fn set_cookies(res: &Response) -> Vec<&str> {
    res.headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .map(|(_, value)| value.as_str())
        .collect()
}

/// The one refresh-cookie `Set-Cookie` of a response (a login or registration also sets the
/// device cookie).
#[track_caller]
fn the_set_cookie(res: &Response) -> &str {
    let refresh: Vec<&str> = set_cookies(res)
        .into_iter()
        .filter(|c| c.starts_with("gatehouse_refresh="))
        .collect();
    match refresh.as_slice() {
        [one] => one,
        other => panic!("expected one refresh set-cookie, got {other:?}"),
    }
}

/// The refresh token in a `Set-Cookie` value.
#[track_caller]
fn cookie_token(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("gatehouse_refresh=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not a refresh cookie: {set_cookie}"))
}

fn expected_cookie(token: &str, max_age_secs: i64, same_site: &str) -> String {
    format!(
        "gatehouse_refresh={token}; Path=/auth; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite={same_site}"
    )
}

/// An access token signed with `seed`, for any claims and time.
fn sign_access(seed: &[u8; 32], claims: AccessClaims, now_ms: i64, ttl_secs: i64) -> String {
    KeySet::new(seed, &[])
        .expect("key set")
        .sign(claims, now_ms, ttl_secs)
        .expect("signing")
}

fn claims_for(user_id: &str) -> AccessClaims {
    AccessClaims {
        iss: "gatehouse".into(),
        aud: "gatehouse".into(),
        sub: user_id.into(),
        jti: "test-jti".into(),
        roles: vec!["user".into()],
        sid: None,
        act: None,
        scope: None,
        routes: None,
    }
}

/// A user stored directly, bypassing registration.
fn stored_user(email: &str, password_hash: PasswordPhc, disabled: bool) -> User {
    User {
        id: gatehouse::primitives::encoding::new_id(&SystemRng, "usr_"),
        email: email.into(),
        name: None,
        password_hash,
        roles: vec!["user".into()],
        disabled,
        created_at: T0,
        updated_at: T0,
        totp: false,
    }
}

fn password_hash(password: &str, iterations: u32) -> PasswordPhc {
    block_on(gatehouse::domain::password::hash(
        &RustPbkdf2,
        &SystemRng,
        password,
        iterations,
    ))
    .expect("hashing")
}

/// A first refresh family for `user_id` starting now.
fn new_family(user_id: &str, now: i64) -> (String, NewFamily) {
    let token = refresh::generate(&SystemRng);
    let family = NewFamily {
        id: gatehouse::primitives::encoding::new_id(&SystemRng, "fam_"),
        user_id: user_id.into(),
        created_at: now,
        expires_at: now + DEFAULT_REFRESH_TTL_SECS * 1000,
        user_agent: None,
        first_token_hash: refresh::hash(&token),
        console: None,
    };
    (token, family)
}

// ---------------------------------------------------------------------------------------------
// Refresh families: idle timeout and absolute lifetime

const IDLE_SECS: i64 = 600;
const SHORT_TTL_SECS: i64 = 3_600;

fn short_lived_gate() -> Gate {
    Gate::new(&[
        ("REFRESH_IDLE_TIMEOUT", "600"),
        ("REFRESH_TOKEN_TTL", "3600"),
    ])
}

#[test]
fn a_family_idle_for_longer_than_the_timeout_is_refused() {
    let gate = short_lived_gate();
    let session = gate.register("idle@example.com");
    gate.advance(IDLE_SECS * SECOND + 1);
    expect_error(
        &gate.refresh(&session.refresh_token),
        401,
        "invalid_refresh_token",
    );
    // Timing out is not a revocation, and the refused token was not rotated.
    let state = gate.token_state(&session.refresh_token).unwrap();
    assert_eq!(state.family.revoked_at, None);
    assert_eq!(state.rotated_at, None);
    assert_eq!(gate.live_tokens(&state.family.id), 1);
}

#[test]
fn each_use_restarts_the_idle_timeout() {
    let gate = short_lived_gate();
    let mut token = gate.register("restart@example.com").refresh_token;
    // Used just before timing out, three times over: far longer than the timeout in total.
    for _ in 0..3 {
        gate.advance(IDLE_SECS * SECOND - 1);
        token = gate.refreshed(&token);
        assert_eq!(gate.family_of(&token).last_used_at, gate.now());
    }
    assert!(gate.now() - T0 > 2 * IDLE_SECS * SECOND);
    // The timeout counts from the last use, not from the login.
    gate.advance(IDLE_SECS * SECOND + 1);
    expect_error(&gate.refresh(&token), 401, "invalid_refresh_token");
}

#[test]
fn a_family_ends_at_its_absolute_lifetime_however_recently_used() {
    let gate = short_lived_gate();
    let mut token = gate.register("lifetime@example.com").refresh_token;
    let expires_at = gate.family_of(&token).expires_at;
    assert_eq!(expires_at, T0 + SHORT_TTL_SECS * SECOND);
    // Keep it busy well within the idle timeout up to the last millisecond of its lifetime.
    while gate.now() + 500 * SECOND < expires_at {
        gate.advance(500 * SECOND);
        token = gate.refreshed(&token);
    }
    gate.set_time(expires_at - 1);
    token = gate.refreshed(&token);
    assert_eq!(gate.family_of(&token).last_used_at, expires_at - 1);

    gate.set_time(expires_at);
    expect_error(&gate.refresh(&token), 401, "invalid_refresh_token");
    gate.advance(SECOND);
    expect_error(&gate.refresh(&token), 401, "invalid_refresh_token");
}

#[test]
fn the_refresh_cookie_lives_as_long_as_what_is_left_of_the_family() {
    let gate = short_lived_gate();
    let res = gate.post(
        "/auth/register",
        json!({ "email": "maxage@example.com", "password": PASSWORD }),
    );
    expect_status(&res, 201);
    let set = the_set_cookie(&res);
    assert_eq!(
        set,
        expected_cookie(cookie_token(set), SHORT_TTL_SECS, "Lax")
    );

    // Within the idle timeout, but well into the family's lifetime.
    gate.advance(500 * SECOND);
    let req = with_cookie(
        Request::new("POST", "/auth/refresh"),
        &format!("gatehouse_refresh={}", cookie_token(set)),
    );
    let res = gate.send(&gate.with_csrf(req, cookie_token(set)));
    expect_status(&res, 200);
    let next = the_set_cookie(&res);
    assert_eq!(
        next,
        expected_cookie(cookie_token(next), SHORT_TTL_SECS - 500, "Lax")
    );
}

// ---------------------------------------------------------------------------------------------
// Rotation and the grace window

#[test]
fn a_replay_within_the_grace_window_gets_the_winners_successor() {
    let gate = Gate::new(&[]);
    let first = gate.register("grace@example.com").refresh_token;
    let family_id = gate.family_of(&first).id;

    gate.advance(SECOND);
    let winner = gate.refresh(&first);
    expect_status(&winner, 200);
    let winner = Session::from_response(&winner);

    gate.advance(3 * SECOND);
    let replay = gate.refresh(&first);
    expect_status(&replay, 200);
    let replay = Session::from_response(&replay);

    assert_ne!(winner.refresh_token, first);
    assert_eq!(replay.refresh_token, winner.refresh_token);
    assert_eq!(replay.user_id, winner.user_id);
    // A fresh access token each time, but still exactly one live refresh token.
    assert_ne!(replay.access_token, winner.access_token);
    assert_eq!(gate.live_tokens(&family_id), 1);
    let state = gate.token_state(&winner.refresh_token).unwrap();
    assert_eq!((state.generation, state.rotated_at), (1, None));
    // The shared successor works for whoever uses it first.
    gate.advance(SECOND);
    let third = gate.refreshed(&replay.refresh_token);
    assert_eq!(gate.token_state(&third).unwrap().generation, 2);
    assert_eq!(gate.live_tokens(&family_id), 1);
}

#[test]
fn the_grace_window_ends_exactly_at_its_last_millisecond() {
    let gate = Gate::new(&[]);
    let session = gate.register("boundary@example.com");
    let first = session.refresh_token;
    let family_id = gate.family_of(&first).id;

    gate.advance(SECOND);
    let rotated_at = gate.now();
    let newest = gate.refreshed(&first);

    gate.set_time(rotated_at + DEFAULT_GRACE_MS);
    assert_eq!(gate.refreshed(&first), newest, "replay at +grace");
    assert_eq!(gate.live_tokens(&family_id), 1);

    gate.set_time(rotated_at + DEFAULT_GRACE_MS + 1);
    expect_error(&gate.refresh(&first), 401, "refresh_token_reused");

    let family = gate.family_of(&first);
    assert_eq!(family.revoked_at, Some(gate.now()));
    assert_eq!(family.revoke_reason.as_deref(), Some("reuse"));
    // The whole family is gone, the newest token included.
    expect_error(&gate.refresh(&newest), 401, "invalid_refresh_token");

    let events = gate.events(&session.user_id);
    let reused: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "refresh_token_reused")
        .collect();
    assert_eq!(reused.len(), 1, "{events:?}");
    let event = reused[0];
    assert_eq!(event.at, gate.now());
    assert_eq!(event.family_id.as_deref(), Some(family_id.as_str()));
    assert_eq!(
        event.subject_user_id.as_deref(),
        Some(session.user_id.as_str())
    );
    let detail = event.detail.as_ref().expect("detail");
    assert_eq!(detail["cause"], "rotated_token_replayed_after_grace");
    assert_eq!(detail["generation"], 0);
    assert_eq!(detail["rotated_ms_ago"], DEFAULT_GRACE_MS + 1);
}

#[test]
fn a_reuse_after_revocation_is_not_recorded_twice() {
    let gate = Gate::new(&[]);
    let session = gate.register("twice@example.com");
    let first = session.refresh_token;
    gate.refreshed(&first);
    gate.advance(DEFAULT_GRACE_MS + 1);
    expect_error(&gate.refresh(&first), 401, "refresh_token_reused");
    let revoked_at = gate.family_of(&first).revoked_at;

    gate.advance(SECOND);
    expect_error(&gate.refresh(&first), 401, "invalid_refresh_token");
    assert_eq!(gate.family_of(&first).revoked_at, revoked_at);
    let count = gate
        .events(&session.user_id)
        .iter()
        .filter(|e| e.kind == "refresh_token_reused")
        .count();
    assert_eq!(count, 1);
    // A later logout does not rewrite why the family ended.
    let res = gate.post("/auth/logout", json!({ "refresh_token": first }));
    assert_eq!(res.status, 204, "{}", describe(&res));
    let family = gate.family_of(&first);
    assert_eq!(family.revoked_at, revoked_at);
    assert_eq!(family.revoke_reason.as_deref(), Some("reuse"));
}

#[test]
fn the_grace_window_follows_its_setting() {
    let gate = Gate::new(&[("REFRESH_GRACE_SECONDS", "2")]);
    let first = gate.register("grace2@example.com").refresh_token;
    let newest = gate.refreshed(&first);
    gate.advance(2 * SECOND);
    assert_eq!(gate.refreshed(&first), newest);
    gate.advance(1);
    expect_error(&gate.refresh(&first), 401, "refresh_token_reused");
}

#[test]
fn refresh_for_a_disabled_user_is_refused() {
    let gate = Gate::new(&[]);
    let user = stored_user(
        "disabled-refresh@example.com",
        password_hash(PASSWORD, 10_000),
        true,
    );
    let (token, family) = new_family(&user.id, T0);
    block_on(gate.store.create_user(&user, Some(&family), None)).unwrap();
    gate.advance(SECOND);
    expect_error(&gate.refresh(&token), 401, "invalid_refresh_token");
}

// ---------------------------------------------------------------------------------------------
// Access tokens

#[test]
fn access_tokens_expire_after_ttl_plus_leeway() {
    let gate = Gate::new(&[("ACCESS_TOKEN_TTL", "60"), ("CLOCK_LEEWAY_SECONDS", "30")]);
    let session = gate.register("expiry@example.com");

    let body = expect_status(&gate.me(&session.access_token), 200);
    assert_eq!(body["user"]["id"], session.user_id.as_str());
    assert_eq!(body["user"]["email"], "expiry@example.com");

    gate.set_time(T0 + 60 * SECOND);
    expect_status(&gate.me(&session.access_token), 200);
    gate.set_time(T0 + 89 * SECOND);
    expect_status(&gate.me(&session.access_token), 200);

    gate.set_time(T0 + 91 * SECOND);
    let res = gate.me(&session.access_token);
    expect_error(&res, 401, "expired_token");
    let challenge = res.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("expired_token"), "{challenge}");
}

#[test]
fn without_leeway_access_tokens_expire_at_their_ttl() {
    let gate = Gate::new(&[("ACCESS_TOKEN_TTL", "60"), ("CLOCK_LEEWAY_SECONDS", "0")]);
    let session = gate.register("noleeway@example.com");
    gate.set_time(T0 + 59 * SECOND);
    expect_status(&gate.me(&session.access_token), 200);
    gate.set_time(T0 + 61 * SECOND);
    expect_error(&gate.me(&session.access_token), 401, "expired_token");
}

#[test]
fn access_tokens_from_the_future_are_refused_beyond_the_leeway() {
    let gate = Gate::new(&[("CLOCK_LEEWAY_SECONDS", "30")]);
    let session = gate.register("future@example.com");
    gate.set_time(T0 - 29 * SECOND);
    expect_status(&gate.me(&session.access_token), 200);
    gate.set_time(T0 - 31 * SECOND);
    expect_error(&gate.me(&session.access_token), 401, "invalid_token");
}

#[test]
fn a_refresh_gives_an_access_token_that_lives_from_the_refresh() {
    let gate = Gate::new(&[("ACCESS_TOKEN_TTL", "60"), ("CLOCK_LEEWAY_SECONDS", "0")]);
    let session = gate.register("renew@example.com");
    gate.set_time(T0 + 50 * SECOND);
    let res = gate.refresh(&session.refresh_token);
    assert_eq!(expect_status(&res, 200)["expires_in"], 60);
    let renewed = Session::from_response(&res);
    gate.set_time(T0 + 100 * SECOND);
    expect_error(&gate.me(&session.access_token), 401, "expired_token");
    expect_status(&gate.me(&renewed.access_token), 200);
}

#[test]
fn access_tokens_of_disabled_or_unknown_users_are_refused() {
    let gate = Gate::new(&[]);
    let user = stored_user(
        "disabled-me@example.com",
        password_hash(PASSWORD, 10_000),
        true,
    );
    block_on(gate.store.create_user(&user, None, None)).unwrap();
    let token = sign_access(&SEED, claims_for(&user.id), T0, 900);
    expect_error(&gate.me(&token), 401, "invalid_token");
    let token = sign_access(&SEED, claims_for("usr_nobody"), T0, 900);
    expect_error(&gate.me(&token), 401, "invalid_token");
}

// ---------------------------------------------------------------------------------------------
// Login: hash upgrades, uniform failures, disabled users

#[test]
fn login_upgrades_a_hash_made_with_fewer_iterations() {
    let mut gate = Gate::new(&[("PBKDF2_ITERATIONS", "10000")]);
    let session = gate.register("upgrade@example.com");
    let old_hash = gate.user(&session.user_id).password_hash;
    assert!(
        old_hash
            .as_str()
            .starts_with("$pbkdf2-sha256$i=10000,l=32$"),
        "{old_hash:?}"
    );

    gate.reconfigure(&[("PBKDF2_ITERATIONS", "20000")]);
    gate.advance(SECOND);
    gate.login("upgrade@example.com");
    let user = gate.user(&session.user_id);
    assert!(
        user.password_hash
            .as_str()
            .starts_with("$pbkdf2-sha256$i=20000,l=32$"),
        "{:?}",
        user.password_hash
    );
    assert_eq!(user.updated_at, gate.now());
    // An upgrade only replaces the hash; the old session lives on.
    assert_eq!(gate.family_of(&session.refresh_token).revoked_at, None);

    gate.advance(SECOND);
    gate.login("upgrade@example.com");
    let again = gate.user(&session.user_id);
    assert_eq!(again.password_hash, user.password_hash, "no second rehash");
    expect_error(
        &gate.login_response("upgrade@example.com", "not the password"),
        401,
        "invalid_credentials",
    );
}

#[test]
fn unknown_email_and_wrong_password_look_the_same() {
    let gate = Gate::new(&[]);
    gate.register("known@example.com");
    let unknown = gate.login_response("unknown@example.com", PASSWORD);
    let wrong = gate.login_response("known@example.com", "wrong password!");
    expect_error(&unknown, 401, "invalid_credentials");
    assert_eq!(unknown.body, wrong.body);
    assert_eq!(unknown.headers, wrong.headers);
    assert!(!String::from_utf8_lossy(&unknown.body).contains("unknown@example.com"));
}

#[test]
fn a_disabled_user_cannot_log_in_even_with_the_right_password() {
    let gate = Gate::new(&[]);
    let user = stored_user(
        "disabled@example.com",
        password_hash(PASSWORD, 10_000),
        true,
    );
    block_on(gate.store.create_user(&user, None, None)).unwrap();
    gate.register("enabled@example.com");

    let disabled = gate.login_response("disabled@example.com", PASSWORD);
    let wrong = gate.login_response("enabled@example.com", "wrong password!");
    expect_error(&disabled, 401, "invalid_credentials");
    assert_eq!(disabled.body, wrong.body);

    let event = gate
        .events(&user.id)
        .into_iter()
        .find(|e| e.kind == "login_failed")
        .expect("login_failed recorded");
    assert_eq!(event.detail, Some(json!({ "cause": "disabled" })));
}

#[test]
fn an_unusable_stored_hash_is_a_wrong_password_not_a_crash() {
    let gate = Gate::new(&[]);
    for (i, hash) in [
        String::new(),
        "plaintext".to_string(),
        "$pbkdf2-sha256$i=999999999,l=32$c2FsdHNhbHQ$AAAA".to_string(),
        password_hash(PASSWORD, 10_000)
            .as_str()
            .replace("i=10000", "i=0"),
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("broken{i}@example.com");
        block_on(gate.store.create_user(
            &stored_user(&email, PasswordPhc::from_stored(hash), false),
            None,
            None,
        ))
        .unwrap();
        expect_error(
            &gate.login_response(&email, PASSWORD),
            401,
            "invalid_credentials",
        );
    }
}

#[test]
fn closed_registration_is_refused_and_stores_nothing() {
    let gate = Gate::new(&[("REGISTRATION", "closed")]);
    let res = gate.post(
        "/auth/register",
        json!({ "email": "closed@example.com", "password": PASSWORD }),
    );
    expect_error(&res, 403, "registration_closed");
    assert!(set_cookies(&res).is_empty());
    let stored = block_on(gate.store.user_by_email("closed@example.com")).unwrap();
    assert!(stored.is_none());
}

#[test]
fn emails_are_matched_trimmed_and_case_insensitively() {
    let gate = Gate::new(&[]);
    let session = gate.register("  Grace.Hopper@Example.COM ");
    assert_eq!(
        gate.user(&session.user_id).email,
        "grace.hopper@example.com"
    );
    let again = gate.login("GRACE.HOPPER@example.com  ");
    assert_eq!(again.user_id, session.user_id);
    expect_error(
        &gate.post(
            "/auth/register",
            json!({ "email": "grace.hopper@EXAMPLE.com", "password": PASSWORD }),
        ),
        409,
        "email_taken",
    );
}

#[test]
fn look_alike_emails_are_one_account_or_refused() {
    let gate = Gate::new(&[]);
    let session = gate.register("lock@example.com");
    // Invisible characters, full-width forms and letter case fold to the same address.
    for look_alike in [
        "lo\u{200b}ck@example.com",
        "\u{feff}lock@example.com\u{2060}",
        "ｌｏｃｋ@example.com",
        "LOCK@EXAMPLE.COM\u{ad}",
    ] {
        let res = gate.post(
            "/auth/register",
            json!({ "email": look_alike, "password": PASSWORD }),
        );
        expect_error(&res, 409, "email_taken");
        // Login folds the same way and finds the account.
        assert_eq!(
            gate.login(look_alike).user_id,
            session.user_id,
            "{look_alike:?}"
        );
    }
    // A Cyrillic letter among Latin ones cannot make a second "lock@example.com".
    for look_alike in ["l\u{43e}ck@example.com", "lock@\u{435}xample.com"] {
        let res = gate.post(
            "/auth/register",
            json!({ "email": look_alike, "password": PASSWORD }),
        );
        expect_error(&res, 400, "bad_request");
        let message = res.json_body()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.starts_with("email: mixes scripts"), "{message}");
        expect_error(
            &gate.login_response(look_alike, PASSWORD),
            401,
            "invalid_credentials",
        );
    }
    // One script throughout is fine, however unlike Latin it looks.
    let other = gate.register("иван@пример.рф");
    assert_eq!(gate.user(&other.user_id).email, "иван@пример.рф");
    // What folding leaves must still be an address.
    let res = gate.post(
        "/auth/register",
        json!({ "email": "\u{200b}@example.com", "password": PASSWORD }),
    );
    expect_error(&res, 400, "bad_request");
}

#[test]
fn an_account_stored_under_a_spelling_folding_changes_still_logs_in() {
    let gate = Gate::new(&[]);
    let user = stored_user(
        "old\u{200b}@example.com",
        password_hash(PASSWORD, 10_000),
        false,
    );
    block_on(gate.store.create_user(&user, None, None)).unwrap();
    assert_eq!(gate.login("old\u{200b}@example.com").user_id, user.id);
    expect_error(
        &gate.login_response("old@example.com", PASSWORD),
        401,
        "invalid_credentials",
    );
}

/// PBKDF2 that counts its derivations.
struct CountingPbkdf2(std::cell::Cell<u32>);

impl gatehouse::primitives::platform::Pbkdf2 for CountingPbkdf2 {
    async fn derive(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; 32], gatehouse::primitives::error::Error> {
        self.0.set(self.0.get() + 1);
        gatehouse::primitives::platform::RustPbkdf2
            .derive(password, salt, iterations)
            .await
    }
}

/// A registration sent with a counting hasher: the answer and how many PBKDF2 derivations it
/// took.
fn counted(gate: &Gate, body: Value) -> (Response, u32) {
    let hasher = CountingPbkdf2(std::cell::Cell::new(0));
    let svc = gatehouse::services::Services {
        config: &gate.config,
        store: &gate.store,
        hasher: &hasher,
        clock: &gate.clock,
        rng: &SystemRng,
        aead: &gatehouse::primitives::platform::RustAesGcm,
        verifier: &gatehouse::primitives::jws::RustVerifier,
        fetcher: &gatehouse::primitives::platform::NoFetcher,
        documents: &gatehouse::primitives::platform::NoDocumentCache,
    };
    let res = block_on(gatehouse::routes::handle(
        &svc,
        &Request::new("POST", "/auth/register").with_json(&body),
    ));
    (res, hasher.0.get())
}

#[test]
fn hidden_registration_answers_a_taken_email_exactly_like_a_new_one() {
    let gate = Gate::new(&[("REGISTRATION_ENUMERATION", "hide")]);
    let (new, new_work) = counted(
        &gate,
        json!({ "email": "Ada@example.com", "password": PASSWORD, "refresh_token_in_body": true }),
    );
    let (taken, taken_work) = counted(
        &gate,
        json!({ "email": " ada@EXAMPLE.com", "password": "another long password", "refresh_token_in_body": true }),
    );
    for res in [&new, &taken] {
        assert_eq!(res.status, 202, "{}", describe(res));
        assert_eq!(res.json_body(), json!({ "status": "accepted" }));
        assert!(set_cookies(res).is_empty(), "{}", describe(res));
    }
    assert_eq!(
        (new.headers.clone(), new.body.clone()),
        (taken.headers.clone(), taken.body.clone())
    );
    assert_eq!((new_work, taken_work), (1, 1), "one PBKDF2 hash either way");
    // The account exists once, with the first password; the second request logged nobody in.
    let session = gate.login("ada@example.com");
    expect_error(
        &gate.login_response("ada@example.com", "another long password"),
        401,
        "invalid_credentials",
    );
    let sessions = gate.send(&bearer("/auth/sessions", &session.access_token));
    let sessions = expect_status(&sessions, 200);
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    let kinds: Vec<String> = gate
        .events(&session.user_id)
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "registered").count(),
        1,
        "{kinds:?}"
    );
    // Bad input is refused alike for a new and a taken email.
    for email in ["ada@example.com", "grace@example.com"] {
        let (res, _) = counted(&gate, json!({ "email": email, "password": "short" }));
        expect_error(&res, 400, "weak_password");
    }
    let (res, _) = counted(
        &gate,
        json!({ "email": "no at sign", "password": PASSWORD }),
    );
    expect_error(&res, 400, "bad_request");
    // Browser mode as well: no cookie of any kind.
    let (res, _) = counted(
        &gate,
        json!({ "email": "new@example.com", "password": PASSWORD }),
    );
    assert_eq!(res.status, 202);
    assert!(set_cookies(&res).is_empty());
    gate.login("new@example.com");
}

#[test]
fn revealing_registration_is_the_default() {
    let gate = Gate::new(&[]);
    gate.register("ada@example.com");
    let (res, work) = counted(
        &gate,
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    );
    expect_error(&res, 409, "email_taken");
    assert_eq!(work, 1);
}

// ---------------------------------------------------------------------------------------------
// Cookie mode

fn cookie_login(gate: &Gate, email: &str) -> Response {
    gate.post(
        "/auth/login",
        json!({ "email": email, "password": PASSWORD }),
    )
}

fn cookie_request(gate: &Gate, path: &str, token: &str) -> Request {
    let req = with_cookie(
        Request::new("POST", path),
        &format!("theme=dark; gatehouse_refresh={token}; lang=en"),
    );
    match gate.token_state(token) {
        Some(_) => gate.with_csrf(req, token),
        None => req,
    }
}

#[test]
fn cookie_mode_login_refresh_and_logout() {
    let gate = Gate::new(&[]);
    let registered = gate.register("cookie@example.com");

    let res = cookie_login(&gate, "cookie@example.com");
    let body = expect_status(&res, 200);
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["user"]["id"], registered.user_id.as_str());
    let set = the_set_cookie(&res);
    let token = cookie_token(set).to_string();
    assert!(refresh::well_formed(&token), "{set}");
    assert_eq!(
        set,
        expected_cookie(&token, DEFAULT_REFRESH_TTL_SECS, "Lax")
    );
    assert!(!String::from_utf8_lossy(&res.body).contains(&token));

    // Refresh with the cookie: the new token comes back as a cookie.
    gate.advance(60 * SECOND);
    let res = gate.send(&cookie_request(&gate, "/auth/refresh", &token));
    let body = expect_status(&res, 200);
    assert!(body.get("refresh_token").is_none(), "{body}");
    let set = the_set_cookie(&res);
    let next = cookie_token(set).to_string();
    assert_ne!(next, token);
    assert_eq!(
        set,
        expected_cookie(&next, DEFAULT_REFRESH_TTL_SECS - 60, "Lax")
    );
    let family_id = gate.family_of(&next).id;

    // Logout with the cookie: cleared and the family revoked.
    gate.advance(SECOND);
    let res = gate.send(&cookie_request(&gate, "/auth/logout", &next));
    assert_eq!(res.status, 204, "{}", describe(&res));
    assert!(res.body.is_empty());
    assert_eq!(the_set_cookie(&res), expected_cookie("", 0, "Lax"));
    let family = gate.family_of(&next);
    assert_eq!(family.revoked_at, Some(gate.now()));
    assert_eq!(family.revoke_reason.as_deref(), Some("logout"));
    let logout = gate
        .events(&registered.user_id)
        .into_iter()
        .find(|e| e.kind == "logout")
        .expect("logout recorded");
    assert_eq!(logout.family_id.as_deref(), Some(family_id.as_str()));

    expect_error(
        &gate.send(&cookie_request(&gate, "/auth/refresh", &next)),
        401,
        "invalid_refresh_token",
    );
    // Idempotent; the registration's own family was never touched.
    let res = gate.send(&cookie_request(&gate, "/auth/logout", &next));
    assert_eq!(res.status, 204);
    assert_eq!(the_set_cookie(&res), expected_cookie("", 0, "Lax"));
    assert_eq!(gate.family_of(&registered.refresh_token).revoked_at, None);
}

#[test]
fn logout_without_any_token_still_clears_the_cookie() {
    let gate = Gate::new(&[]);
    let res = gate.send(&Request::new("POST", "/auth/logout"));
    assert_eq!(res.status, 204, "{}", describe(&res));
    assert_eq!(the_set_cookie(&res), expected_cookie("", 0, "Lax"));
}

#[test]
fn logout_with_a_body_token_revokes_its_family() {
    let gate = Gate::new(&[]);
    let session = gate.register("logout-body@example.com");
    let res = gate.post(
        "/auth/logout",
        json!({ "refresh_token": session.refresh_token }),
    );
    assert_eq!(res.status, 204, "{}", describe(&res));
    let family = gate.family_of(&session.refresh_token);
    assert_eq!(family.revoke_reason.as_deref(), Some("logout"));
    expect_error(
        &gate.refresh(&session.refresh_token),
        401,
        "invalid_refresh_token",
    );
}

#[test]
fn the_same_site_attribute_follows_the_configuration() {
    for (setting, attribute) in [("Strict", "Strict"), ("strict", "Strict"), ("None", "None")] {
        let gate = Gate::new(&[("COOKIE_SAMESITE", setting)]);
        gate.register("samesite@example.com");
        let res = cookie_login(&gate, "samesite@example.com");
        expect_status(&res, 200);
        let set = the_set_cookie(&res);
        assert_eq!(
            set,
            expected_cookie(cookie_token(set), DEFAULT_REFRESH_TTL_SECS, attribute)
        );
        let res = gate.send(&cookie_request(&gate, "/auth/logout", cookie_token(set)));
        assert_eq!(the_set_cookie(&res), expected_cookie("", 0, attribute));
    }
}

#[test]
fn a_body_token_wins_over_the_cookie() {
    let gate = Gate::new(&[]);
    let in_body = gate.register("body-wins@example.com").refresh_token;
    let in_cookie = gate.login("body-wins@example.com").refresh_token;
    let req = with_cookie(
        post_json("/auth/refresh", &json!({ "refresh_token": in_body })),
        &format!("gatehouse_refresh={in_cookie}"),
    );
    let res = gate.send(&req);
    let body = expect_status(&res, 200);
    assert!(body["refresh_token"].is_string(), "{body}");
    assert!(set_cookies(&res).is_empty());
    assert!(gate.token_state(&in_body).unwrap().rotated_at.is_some());
    assert_eq!(gate.token_state(&in_cookie).unwrap().rotated_at, None);
}

#[test]
fn body_mode_sets_no_cookie() {
    let gate = Gate::new(&[]);
    let res = gate.post(
        "/auth/register",
        json!({ "email": "body@example.com", "password": PASSWORD, "refresh_token_in_body": true }),
    );
    expect_status(&res, 201);
    assert!(set_cookies(&res).is_empty());
    let token = Session::from_response(&res).refresh_token;
    let res = gate.refresh(&token);
    expect_status(&res, 200);
    assert!(set_cookies(&res).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bad input never yields a 5xx

/// One malformed request and the answer it must get.
struct Case {
    what: String,
    req: Request,
    status: u16,
    /// The error code; `None` for a success without a body (logout).
    code: Option<&'static str>,
}

fn case(what: impl Into<String>, req: Request, status: u16, code: Option<&'static str>) -> Case {
    Case {
        what: what.into(),
        req,
        status,
        code,
    }
}

const POST_PATHS: [&str; 4] = [
    "/auth/register",
    "/auth/login",
    "/auth/refresh",
    "/auth/logout",
];

fn content_type_cases(cases: &mut Vec<Case>) {
    let login = json!({ "email": "a@example.com", "password": PASSWORD }).to_string();
    for path in POST_PATHS {
        for ct in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "application/problem+json",
            "json",
            "",
        ] {
            let req = post_raw(path, Some(ct), login.clone());
            cases.push(case(
                format!("{path} as {ct:?}"),
                req,
                415,
                Some("unsupported_media_type"),
            ));
        }
        cases.push(case(
            format!("{path} without a content type"),
            post_raw(path, None, login.clone()),
            415,
            Some("unsupported_media_type"),
        ));
    }
    for path in ["/auth/register", "/auth/login"] {
        cases.push(case(
            format!("{path} empty without a content type"),
            post_raw(path, None, ""),
            415,
            Some("unsupported_media_type"),
        ));
    }
}

fn invalid_json_cases(cases: &mut Vec<Case>) {
    let deep_array = "[".repeat(10_000);
    let deep_object = format!("{}{}", r#"{"email":"#.repeat(5_000), "1");
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", br#"{"email": "a@b.c", "#.to_vec()),
        ("prose", b"not json at all".to_vec()),
        (
            "trailing brace",
            br#"{"email":"a@b.c","password":"x"}}"#.to_vec(),
        ),
        ("single quotes", b"{'email':'a@b.c'}".to_vec()),
        (
            "not UTF-8",
            vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
        ),
        ("a BOM", b"\xef\xbb\xbf{}".to_vec()),
        ("a lone surrogate", br#"{"password":"\ud800"}"#.to_vec()),
        ("a number out of range", br#"{"email":1e999}"#.to_vec()),
        ("10,000 nested arrays", deep_array.into_bytes()),
        ("5,000 nested objects", deep_object.into_bytes()),
    ];
    for path in POST_PATHS {
        for (what, body) in &bodies {
            cases.push(case(
                format!("{path} with {what}"),
                post_raw(path, Some("application/json"), body.clone()),
                400,
                Some("invalid_json"),
            ));
        }
    }
    for path in ["/auth/register", "/auth/login"] {
        cases.push(case(
            format!("{path} with a blank JSON body"),
            post_raw(path, Some("application/json"), "  \n"),
            400,
            Some("invalid_json"),
        ));
    }
}

fn wrong_shape_cases(cases: &mut Vec<Case>) {
    for path in POST_PATHS {
        for body in [
            "[]",
            r#"[{"email":"a@b.c","password":"password1"}]"#,
            r#""text""#,
            "42",
            "null",
            "true",
        ] {
            cases.push(case(
                format!("{path} with {body}"),
                post_raw(path, Some("application/json"), body),
                400,
                Some("bad_request"),
            ));
        }
    }
    let fields: Vec<(&str, Value)> = vec![
        ("/auth/login", json!({ "password": PASSWORD })),
        ("/auth/login", json!({ "email": "a@b.c" })),
        ("/auth/login", json!({ "email": 42, "password": PASSWORD })),
        (
            "/auth/login",
            json!({ "email": ["a@b.c"], "password": PASSWORD }),
        ),
        (
            "/auth/login",
            json!({ "email": null, "password": PASSWORD }),
        ),
        (
            "/auth/login",
            json!({ "email": "a@b.c", "password": 12_345_678 }),
        ),
        (
            "/auth/login",
            json!({ "email": "a@b.c", "password": PASSWORD, "refresh_token_in_body": "yes" }),
        ),
        ("/auth/register", json!({})),
        ("/auth/register", json!({ "email": "a@b.c" })),
        (
            "/auth/register",
            json!({ "email": { "a": 1 }, "password": PASSWORD }),
        ),
        (
            "/auth/register",
            json!({ "email": "a@b.c", "password": { "p": 1 } }),
        ),
        (
            "/auth/register",
            json!({ "email": "a@b.c", "password": PASSWORD, "name": 7 }),
        ),
        (
            "/auth/register",
            json!({ "email": "a@b.c", "password": PASSWORD, "refresh_token_in_body": 1 }),
        ),
        (
            "/auth/register",
            json!({ "email": "no-at-sign", "password": PASSWORD }),
        ),
        (
            "/auth/register",
            json!({ "email": "a b@c.d", "password": PASSWORD }),
        ),
        (
            "/auth/register",
            json!({ "email": "a@b@c", "password": PASSWORD }),
        ),
        (
            "/auth/register",
            json!({ "email": "a@.example", "password": PASSWORD }),
        ),
        (
            "/auth/register",
            json!({ "email": "a\u{0}@b.c", "password": PASSWORD }),
        ),
        (
            "/auth/register",
            json!({ "email": format!("{}@b.c", "a".repeat(260)), "password": PASSWORD }),
        ),
        (
            "/auth/register",
            json!({ "email": "a@b.c", "password": PASSWORD, "name": "x".repeat(201) }),
        ),
        (
            "/auth/register",
            json!({ "email": "a@b.c", "password": PASSWORD, "name": "bell\u{7}" }),
        ),
        ("/auth/refresh", json!({ "refresh_token": 12_345 })),
        ("/auth/refresh", json!({ "refresh_token": ["ghr_x"] })),
        ("/auth/refresh", json!({ "refresh_token": {} })),
        ("/auth/logout", json!({ "refresh_token": true })),
    ];
    for (path, body) in fields {
        cases.push(case(
            format!("{path} with {body}"),
            post_json(path, &body),
            400,
            Some("bad_request"),
        ));
    }
    for password in ["short", "", &"p".repeat(257)] {
        cases.push(case(
            format!("register with a {}-character password", password.len()),
            post_json(
                "/auth/register",
                &json!({ "email": "weak@example.com", "password": password }),
            ),
            400,
            Some("weak_password"),
        ));
    }
}

fn body_size_cases(cases: &mut Vec<Case>) {
    let padding = "x".repeat(DEFAULT_MAX_BODY);
    let big = json!({ "email": "a@b.c", "password": PASSWORD, "name": padding }).to_string();
    assert!(big.len() > DEFAULT_MAX_BODY);
    for path in POST_PATHS {
        for ct in [Some("application/json"), Some("text/plain"), None] {
            cases.push(case(
                format!("{path}, {} bytes as {ct:?}", big.len()),
                post_raw(path, ct, big.clone()),
                413,
                Some("payload_too_large"),
            ));
        }
        cases.push(case(
            format!("{path}, one byte over the limit"),
            post_raw(
                path,
                Some("application/json"),
                " ".repeat(DEFAULT_MAX_BODY + 1),
            ),
            413,
            Some("payload_too_large"),
        ));
    }
}

fn routing_cases(cases: &mut Vec<Case>) {
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/auth/unknown"),
        ("GET", "/auth"),
        ("POST", "/auth/"),
        ("POST", "/auth/login/"),
        ("POST", "/AUTH/LOGIN"),
        ("POST", "/auth//login"),
        ("POST", "/auth/%6Cogin"),
        ("GET", "/auth/me/extra"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/__selftest/contract"),
        ("GET", ""),
        ("GET", "/ä"),
    ] {
        cases.push(case(
            format!("{method} {path:?}"),
            Request::new(method, path),
            404,
            Some("not_found"),
        ));
    }
    for (method, path) in [
        ("GET", "/auth/login"),
        ("PUT", "/auth/register"),
        ("GET", "/auth/refresh"),
        ("DELETE", "/auth/logout"),
        ("PATCH", "/auth/login"),
        ("OPTIONS", "/auth/login"),
        ("POST", "/auth/me"),
        ("POST", "/.well-known/jwks.json"),
        ("POST", "/healthz"),
        ("DELETE", "/readyz"),
        ("BREW", "/healthz"),
    ] {
        cases.push(case(
            format!("{method} {path}"),
            Request::new(method, path),
            405,
            Some("method_not_allowed"),
        ));
    }
}

fn authorization_cases(cases: &mut Vec<Case>, user_id: &str, valid: &str) {
    let b64 = |s: &str| b64url(s.as_bytes());
    let payload = b64(&format!(
        r#"{{"iss":"gatehouse","aud":"gatehouse","sub":"{user_id}","jti":"x","roles":["admin"],"iat":{},"exp":{}}}"#,
        T0 / 1000,
        T0 / 1000 + 900
    ));
    let kid = KeySet::new(&SEED, &[]).unwrap().current_kid().to_string();
    let parts: Vec<&str> = valid.split('.').collect();
    let mut flipped = valid.to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });

    let other_claims = |f: &dyn Fn(&mut AccessClaims)| {
        let mut claims = claims_for(user_id);
        f(&mut claims);
        sign_access(&SEED, claims, T0, 900)
    };
    let headers: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("the scheme alone", "Bearer".into()),
        ("the scheme and blanks", "Bearer    ".into()),
        ("basic auth", "Basic dXNlcjpwYXNzd29yZA==".into()),
        ("a tab instead of a space", format!("Bearer\t{valid}")),
        ("a token without the scheme", valid.to_string()),
        ("another scheme", format!("Token {valid}")),
        ("two tokens", format!("Bearer {valid} {valid}")),
        ("one part", "Bearer abc".into()),
        ("three empty parts", "Bearer ..".into()),
        ("three junk parts", "Bearer a.b.c".into()),
        ("non-ASCII", "Bearer ä.ö.ü".into()),
        ("emoji", format!("Bearer {}", "🔑".repeat(50))),
        ("100 kB", format!("Bearer {}", "A".repeat(100_000))),
        ("a flipped signature", format!("Bearer {flipped}")),
        ("no signature", format!("Bearer {}.{}.", parts[0], parts[1])),
        (
            "alg none",
            format!("Bearer {}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "HS256",
            format!(
                "Bearer {}.{payload}.{}",
                b64(&format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#)),
                parts[2]
            ),
        ),
        (
            "a forged payload",
            format!("Bearer {}.{payload}.{}", parts[0], parts[2]),
        ),
        (
            "a header that is not JSON",
            format!("Bearer {}.{}.{}", b64("not json"), parts[1], parts[2]),
        ),
        (
            "an unknown key",
            format!(
                "Bearer {}",
                sign_access(&OTHER_SEED, claims_for(user_id), T0, 900)
            ),
        ),
        (
            "another issuer",
            format!("Bearer {}", other_claims(&|c| c.iss = "evil".into())),
        ),
        (
            "another audience",
            format!("Bearer {}", other_claims(&|c| c.aud = "evil".into())),
        ),
        (
            "an unknown subject",
            format!("Bearer {}", other_claims(&|c| c.sub = "usr_ghost".into())),
        ),
    ];
    for (what, value) in headers {
        cases.push(case(
            format!("/auth/me with {what}"),
            Request::new("GET", "/auth/me").with_header("authorization", &value),
            401,
            Some("invalid_token"),
        ));
    }
    cases.push(case(
        "/auth/me without Authorization",
        Request::new("GET", "/auth/me"),
        401,
        Some("no_auth"),
    ));
}

/// `csrf`: the `X-CSRF-Token` of a live session, which a cookie refresh needs before its cookie
/// is looked up.
fn refresh_token_cases(cases: &mut Vec<Case>, csrf: &str) {
    let unknown = refresh::generate(&SystemRng);
    let random = &unknown[4..];
    let odd_tokens: Vec<(&str, String)> = vec![
        ("an empty string", String::new()),
        ("the prefix alone", "ghr_".into()),
        ("a short token", "ghr_short".into()),
        ("no prefix", random.to_string()),
        ("an upper-case prefix", format!("GHR_{random}")),
        ("one character more", format!("{unknown}A")),
        (
            "one character less",
            unknown[..unknown.len() - 1].to_string(),
        ),
        ("padding", format!("{unknown}=")),
        ("the standard alphabet", format!("ghr_+/{}", &random[2..])),
        ("a leading space", format!(" {unknown}")),
        ("a trailing newline", format!("{unknown}\n")),
        ("non-zero trailing bits", format!("ghr_{}B", "A".repeat(42))),
        ("non-ASCII", format!("ghr_{}", "ä".repeat(43))),
        ("emoji", format!("ghr_{}", "🔑".repeat(43))),
        ("a NUL", format!("ghr_\u{0}{}", &random[1..])),
        ("60,000 characters", format!("ghr_{}", "A".repeat(60_000))),
        ("an access token", "eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()),
        ("a well-formed unknown token", unknown.clone()),
    ];
    for (what, token) in &odd_tokens {
        let body = json!({ "refresh_token": token });
        cases.push(case(
            format!("refresh with {what}"),
            post_json("/auth/refresh", &body),
            401,
            Some("invalid_refresh_token"),
        ));
        cases.push(case(
            format!("logout with {what}"),
            post_json("/auth/logout", &body),
            204,
            None,
        ));
    }
    for (what, cookie) in [
        (
            "non-ASCII",
            format!("gatehouse_refresh=ghr_{}", "ö".repeat(43)),
        ),
        ("a short token", "gatehouse_refresh=ghr_x".into()),
        (
            "a long token",
            format!("gatehouse_refresh=ghr_{}", "A".repeat(50_000)),
        ),
        ("a quoted token", format!("gatehouse_refresh=\"{unknown}\"")),
    ] {
        cases.push(case(
            format!("refresh with a cookie of {what}"),
            with_cookie(Request::new("POST", "/auth/refresh"), &cookie),
            401,
            Some("invalid_refresh_token"),
        ));
    }
    let unknown_cookie = format!("gatehouse_refresh={unknown}");
    cases.push(case(
        "refresh with a cookie of an unknown token and a session's CSRF token",
        with_cookie(Request::new("POST", "/auth/refresh"), &unknown_cookie)
            .with_header("x-csrf-token", csrf),
        401,
        Some("invalid_refresh_token"),
    ));
    cases.push(case(
        "refresh with a cookie of an unknown token and no CSRF token",
        with_cookie(Request::new("POST", "/auth/refresh"), &unknown_cookie),
        403,
        Some("csrf_validation_failed"),
    ));
    for (what, cookie) in [
        ("an empty value", "gatehouse_refresh="),
        ("no value", "gatehouse_refresh"),
        ("another name", "gatehouse_refresh_old=ghr_x; refresh=ghr_y"),
        ("junk", "=;=;;; ;"),
    ] {
        cases.push(case(
            format!("refresh with a cookie of {what}"),
            with_cookie(Request::new("POST", "/auth/refresh"), cookie),
            401,
            Some("no_auth"),
        ));
    }
    for body in [json!({}), json!({ "refresh_token": null })] {
        cases.push(case(
            format!("refresh with {body}"),
            post_json("/auth/refresh", &body),
            401,
            Some("no_auth"),
        ));
    }
    cases.push(case(
        "refresh without a body",
        Request::new("POST", "/auth/refresh"),
        401,
        Some("no_auth"),
    ));
}

/// Checks one answer; `None` when it is as expected.
fn mismatch(case: &Case, res: &Response) -> Option<String> {
    let code = error_code(res);
    let mut wrong = res.status != case.status || code.as_deref() != case.code;
    if case.code.is_some() {
        let body = res.json_body();
        wrong |= !body["error"]["message"].is_string();
        wrong |= res.header("content-type") != Some("application/json");
    }
    if case.status == 405 {
        wrong |= res.header("allow").is_none();
    }
    if case.status == 401 && case.req.path == "/auth/me" {
        wrong |= !res
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"));
    }
    wrong.then(|| {
        format!(
            "{}: expected {} {:?}, got {} (headers {:?})",
            case.what,
            case.status,
            case.code,
            describe(res),
            res.headers
        )
    })
}

#[test]
fn malformed_requests_get_precise_4xx_answers() {
    let gate = Gate::new(&[]);
    let session = gate.register("victim@example.com");

    let mut cases = Vec::new();
    content_type_cases(&mut cases);
    invalid_json_cases(&mut cases);
    wrong_shape_cases(&mut cases);
    body_size_cases(&mut cases);
    routing_cases(&mut cases);
    authorization_cases(&mut cases, &session.user_id, &session.access_token);
    let csrf = gate
        .with_csrf(
            Request::new("POST", "/auth/refresh"),
            &session.refresh_token,
        )
        .header("x-csrf-token")
        .expect("with_csrf adds the header")
        .to_string();
    refresh_token_cases(&mut cases, &csrf);
    assert!(cases.len() > 200, "only {} cases", cases.len());

    let mut failures = Vec::new();
    for case in &cases {
        let res = gate.send(&case.req);
        assert!(res.status < 500, "{}: {}", case.what, describe(&res));
        failures.extend(mismatch(case, &res));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // None of it touched the session.
    let family = gate.family_of(&session.refresh_token);
    assert_eq!(family.revoked_at, None);
    assert_eq!(gate.live_tokens(&family.id), 1);
    expect_status(&gate.me(&session.access_token), 200);
}

#[test]
fn well_formed_variants_are_accepted() {
    let gate = Gate::new(&[]);
    let session = gate.register("variants@example.com");
    let login = json!({ "email": "variants@example.com", "password": PASSWORD }).to_string();
    for ct in [
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=UTF-8",
    ] {
        let res = gate.send(&post_raw("/auth/login", Some(ct), login.clone()));
        expect_status(&res, 200);
    }
    let res = gate.send(&Request::new("GET", "/auth/me").with_header(
        "authorization",
        &format!("bearer  {} ", session.access_token),
    ));
    expect_status(&res, 200);
    // Unknown members are ignored.
    let res = gate.post(
        "/auth/login",
        json!({ "email": "variants@example.com", "password": PASSWORD, "extra": [1, 2, 3] }),
    );
    expect_status(&res, 200);
}

#[test]
fn a_body_of_exactly_the_limit_is_not_too_large() {
    let gate = Gate::new(&[]);
    gate.register("limit@example.com");
    let head = json!({ "email": "limit@example.com", "password": PASSWORD }).to_string();
    // Pad with whitespace inside the object up to exactly MAX_BODY_BYTES.
    let body = format!(
        "{}{}}}",
        &head[..head.len() - 1],
        " ".repeat(DEFAULT_MAX_BODY - head.len())
    );
    assert_eq!(body.len(), DEFAULT_MAX_BODY);
    let res = gate.send(&post_raw("/auth/login", Some("application/json"), body));
    expect_status(&res, 200);
}

// ---------------------------------------------------------------------------------------------
// Storage holds no plaintext secrets

#[test]
fn storage_holds_hashes_not_secrets() {
    let gate = Gate::new(&[]);
    let registered = gate.register("secrets@example.com");
    let logged_in = gate.login("secrets@example.com");
    gate.advance(SECOND);
    let refreshed = gate.refresh(&logged_in.refresh_token);
    expect_status(&refreshed, 200);
    let refreshed = Session::from_response(&refreshed);

    let tokens = [
        &registered.refresh_token,
        &logged_in.refresh_token,
        &refreshed.refresh_token,
    ];
    for token in tokens {
        assert!(gate.token_state(token).is_some(), "found by its hash");
        let plain = block_on(
            gate.store
                .token_state(&TokenHash::from_stored(token.to_string())),
        )
        .unwrap();
        assert!(plain.is_none(), "found by its plaintext");
        let bare = block_on(
            gate.store
                .token_state(&TokenHash::from_stored(token[4..].to_string())),
        )
        .unwrap();
        assert!(bare.is_none(), "found without its prefix");
    }

    // The rotated token keeps only the successor's hash and a sealed form of it.
    let rotated = gate.token_state(&logged_in.refresh_token).unwrap();
    let successor = &refreshed.refresh_token;
    assert_eq!(rotated.successor_hash, Some(refresh::hash(successor)));
    let sealed = rotated.successor_sealed.expect("sealed successor");
    let successor_bytes = b64url_decode(&successor[4..]).unwrap();
    assert_ne!(sealed, hex(&successor_bytes));
    assert!(!sealed.contains(&successor[4..]));

    let user = gate.user(&registered.user_id);
    assert!(!user.password_hash.as_str().contains(PASSWORD));
    assert!(user.password_hash.as_str().starts_with("$pbkdf2-sha256$"));
    // Salted: the same password hashes differently for another user.
    let other = gate.register("secrets2@example.com");
    assert_ne!(gate.user(&other.user_id).password_hash, user.password_hash);

    // Nor does the audit log hold any secret.
    let log = format!(
        "{:?}",
        block_on(gate.store.audit_events(None, 1_000)).unwrap()
    );
    assert!(log.contains("login_succeeded"), "{log}");
    for secret in [PASSWORD, &registered.access_token, &logged_in.access_token]
        .into_iter()
        .chain(tokens.map(String::as_str))
    {
        assert!(!log.contains(secret), "audit log holds a secret");
    }
}

#[test]
fn head_on_a_get_route_has_the_status_and_headers_but_no_body() {
    let gate = Gate::new(&[]);
    let get = gate.send(&Request::new("GET", "/.well-known/jwks.json"));
    let head = gate.send(&Request::new("HEAD", "/.well-known/jwks.json"));
    assert_eq!(head.status, 200);
    assert_eq!(head.headers, get.headers);
    assert!(head.body.is_empty() && !get.body.is_empty());
    // A HEAD answer never has a body, errors included; the status and Allow still tell.
    let res = gate.send(&Request::new("HEAD", "/auth/login"));
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("POST"));
    assert!(res.body.is_empty());
    let res = gate.send(&Request::new("PUT", "/healthz"));
    assert_eq!(res.header("allow"), Some("GET, HEAD"));
}

fn change_password_request(access_token: &str, current: &str, new: &str) -> Request {
    let mut req = bearer("/auth/password", access_token)
        .with_json(&json!({ "current_password": current, "new_password": new }));
    req.method = "POST".into();
    req
}

#[test]
fn a_password_change_revokes_every_other_session_and_keeps_the_callers() {
    let gate = Gate::new(&[]);
    let email = "pw@example.com";
    let this = gate.register(email);
    let other = gate.login(email);
    let third = gate.login(email);
    let new_password = "a brand new passphrase";

    let res = gate.send(&change_password_request(
        &this.access_token,
        PASSWORD,
        new_password,
    ));
    assert_eq!(expect_status(&res, 200), json!({ "revoked_sessions": 2 }));

    // The caller's session goes on; the others are revoked with reason password_change.
    gate.refreshed(&this.refresh_token);
    for s in [&other, &third] {
        expect_error(
            &gate.refresh(&s.refresh_token),
            401,
            "invalid_refresh_token",
        );
        let family = gate.family_of(&s.refresh_token);
        assert_eq!(family.revoke_reason.as_deref(), Some("password_change"));
    }
    // Only the new password logs in now.
    expect_error(
        &gate.login_response(email, PASSWORD),
        401,
        "invalid_credentials",
    );
    expect_status(&gate.login_response(email, new_password), 200);
    let kinds: Vec<_> = gate
        .events(&this.user_id)
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"password_changed".to_string()), "{kinds:?}");
}

#[test]
fn a_password_change_needs_the_current_password_a_valid_new_one_and_a_token() {
    let gate = Gate::new(&[]);
    let s = gate.register("pw2@example.com");
    let wrong = gate.send(&change_password_request(
        &s.access_token,
        "not the password",
        "new password!",
    ));
    expect_error(&wrong, 401, "invalid_credentials");
    let weak = gate.send(&change_password_request(&s.access_token, PASSWORD, "short"));
    expect_error(&weak, 400, "weak_password");
    let mut anonymous = change_password_request(&s.access_token, PASSWORD, "new password!");
    anonymous.headers.retain(|(k, _)| k != "authorization");
    expect_error(&gate.send(&anonymous), 401, "no_auth");
    let missing = gate.send(
        &Request::new("POST", "/auth/password")
            .with_header("authorization", &format!("Bearer {}", s.access_token))
            .with_json(&json!({ "new_password": "new password!" })),
    );
    expect_error(&missing, 400, "bad_request");
    // Nothing changed and nothing was revoked.
    gate.refreshed(&s.refresh_token);
    expect_status(&gate.login_response("pw2@example.com", PASSWORD), 200);
}

#[test]
fn a_cookie_driven_refresh_needs_json_and_exactly_one_cookie() {
    let gate = Gate::new(&[]);
    gate.register("c@example.com");
    let res = gate.post(
        "/auth/login",
        json!({ "email": "c@example.com", "password": PASSWORD }),
    );
    let cookie = cookie_token(the_set_cookie(&res)).to_string();
    let pair = format!("gatehouse_refresh={cookie}");

    // Without a content type, as a cross-site form or a simple fetch would send it: refused,
    // and the session is untouched.
    let bare = Request::new("POST", "/auth/refresh").with_header("cookie", &pair);
    expect_error(&gate.send(&bare), 415, "unsupported_media_type");
    let bare_logout = Request::new("POST", "/auth/logout").with_header("cookie", &pair);
    expect_error(&gate.send(&bare_logout), 415, "unsupported_media_type");
    assert!(gate.token_state(&cookie).unwrap().rotated_at.is_none());

    // A second cookie of the same name (planted by a sibling subdomain): neither is used.
    let planted = with_cookie(
        Request::new("POST", "/auth/refresh"),
        &format!("gatehouse_refresh=ghr_{}; {pair}", "A".repeat(43)),
    );
    expect_error(&gate.send(&planted), 401, "invalid_refresh_token");
    assert!(gate.token_state(&cookie).unwrap().rotated_at.is_none());

    let ok = with_cookie(Request::new("POST", "/auth/refresh"), &pair);
    expect_status(&gate.send(&gate.with_csrf(ok, &cookie)), 200);
}

#[test]
fn a_password_change_with_a_token_of_a_revoked_session_is_refused() {
    let gate = Gate::new(&[]);
    let s = gate.register("rev@example.com");
    let logout = gate.post("/auth/logout", json!({ "refresh_token": s.refresh_token }));
    assert_eq!(logout.status, 204);
    let res = gate.send(&change_password_request(
        &s.access_token,
        PASSWORD,
        "new password!",
    ));
    expect_error(&res, 401, "invalid_token");
    expect_status(&gate.login_response("rev@example.com", PASSWORD), 200);
}

// ---------------------------------------------------------------------------------------------
// Browser mode: CSRF, the session's CSRF token after a reload, CORS

fn header<'a>(res: &'a Response, name: &str) -> Option<&'a str> {
    res.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_cookie_state_change_needs_an_allowed_origin_and_the_sessions_csrf_token() {
    let gate = Gate::new(&[]);
    gate.register("csrf@example.com");
    let res = cookie_login(&gate, "csrf@example.com");
    expect_status(&res, 200);
    let token = cookie_token(the_set_cookie(&res)).to_string();
    let csrf = res.json_body()["csrf_token"].as_str().unwrap().to_string();
    let family = gate.family_of(&token);
    assert_eq!(csrf, gate.config.browser.csrf_key.token(&family.id));

    let pair = format!("gatehouse_refresh={token}");
    let base = |path: &str| {
        Request::new("POST", path)
            .with_header("cookie", &pair)
            .with_header("content-type", "application/json")
    };
    for path in ["/auth/refresh", "/auth/logout"] {
        // No origin at all, an unlisted origin, a sibling that is only same-site, no token,
        // a wrong token, another session's token.
        let cases = [
            base(path).with_header("x-csrf-token", &csrf),
            base(path)
                .with_header("origin", "https://evil.example")
                .with_header("x-csrf-token", &csrf),
            base(path)
                .with_header("sec-fetch-site", "same-site")
                .with_header("x-csrf-token", &csrf),
            base(path).with_header("origin", SITE),
            base(path)
                .with_header("origin", SITE)
                .with_header("x-csrf-token", "ghc_wrong"),
            base(path).with_header("origin", SITE).with_header(
                "x-csrf-token",
                &gate.config.browser.csrf_key.token("fam_other"),
            ),
        ];
        for req in cases {
            expect_error(&gate.send(&req), 403, "csrf_validation_failed");
        }
    }
    // Nothing changed.
    assert!(gate.token_state(&token).unwrap().rotated_at.is_none());
    assert!(gate.family_of(&token).revoked_at.is_none());

    // The same token works from every tab, for refresh after refresh.
    let ok = base("/auth/refresh")
        .with_header("origin", SITE)
        .with_header("x-csrf-token", &csrf);
    let res = gate.send(&ok);
    expect_status(&res, 200);
    assert_eq!(res.json_body()["csrf_token"].as_str(), Some(csrf.as_str()));
    let next = cookie_token(the_set_cookie(&res)).to_string();
    let same_origin = Request::new("POST", "/auth/refresh")
        .with_header("cookie", &format!("gatehouse_refresh={next}"))
        .with_header("content-type", "application/json")
        .with_header("sec-fetch-site", "same-origin")
        .with_header("x-csrf-token", &csrf);
    let res = gate.send(&same_origin);
    expect_status(&res, 200);
    let newest = cookie_token(the_set_cookie(&res)).to_string();

    // The older form of the token (the mac alone, from a page opened before the session id was
    // put in front): a refresh, which learns its session from the token, refuses it and rotates
    // nothing; a logout, whose session the cookie names, takes it and ends the session.
    let legacy = format!("ghc_{}", csrf.rsplit_once('.').unwrap().1);
    let with_newest = |path: &str| {
        Request::new("POST", path)
            .with_header("cookie", &format!("gatehouse_refresh={newest}"))
            .with_header("content-type", "application/json")
            .with_header("origin", SITE)
            .with_header("x-csrf-token", &legacy)
    };
    expect_error(
        &gate.send(&with_newest("/auth/refresh")),
        403,
        "csrf_validation_failed",
    );
    assert!(gate.token_state(&newest).unwrap().rotated_at.is_none());
    expect_status(&gate.send(&with_newest("/auth/logout")), 204);
    assert!(gate.family_of(&newest).revoked_at.is_some());

    // A Bearer request needs no CSRF token.
    let s = gate.login("csrf@example.com");
    let me = Request::new("GET", "/auth/me")
        .with_header("authorization", &format!("Bearer {}", s.access_token));
    expect_status(&gate.send(&me), 200);
}

#[test]
fn the_session_endpoint_gives_a_reloaded_page_its_csrf_token() {
    let gate = Gate::new(&[]);
    gate.register("reload@example.com");
    let res = cookie_login(&gate, "reload@example.com");
    let token = cookie_token(the_set_cookie(&res)).to_string();
    let csrf = res.json_body()["csrf_token"].as_str().unwrap().to_string();
    let get = |cookie: &str, origin: Option<&str>| {
        let mut req = Request::new("GET", "/auth/session").with_header("cookie", cookie);
        if let Some(origin) = origin {
            req = req.with_header("origin", origin);
        }
        gate.send(&req)
    };
    let pair = format!("gatehouse_refresh={token}");
    let res = get(&pair, Some(SITE));
    expect_status(&res, 200);
    assert_eq!(res.json_body()["csrf_token"].as_str(), Some(csrf.as_str()));
    assert_eq!(header(&res, "access-control-allow-origin"), Some(SITE));
    // Nothing was rotated.
    assert!(gate.token_state(&token).unwrap().rotated_at.is_none());

    expect_error(
        &get(&pair, Some("https://evil.example")),
        403,
        "csrf_validation_failed",
    );
    expect_error(&get(&pair, None), 403, "csrf_validation_failed");
    expect_error(&get("other=1", Some(SITE)), 401, "no_auth");
    expect_error(
        &get("gatehouse_refresh=ghr_x", Some(SITE)),
        401,
        "invalid_refresh_token",
    );

    // After logout the cookie gets nothing.
    let logout = gate.send(&cookie_request(&gate, "/auth/logout", &token));
    expect_status(&logout, 204);
    expect_error(&get(&pair, Some(SITE)), 401, "invalid_refresh_token");
}

#[test]
fn cors_headers_go_on_successes_errors_and_preflights_of_listed_origins_only() {
    let gate = Gate::new(&[]);
    let from = |origin: &str| {
        Request::new("GET", "/auth/me")
            .with_header("origin", origin)
            .with_header("authorization", "Bearer nope")
    };
    let res = gate.send(&from(SITE));
    expect_error(&res, 401, "invalid_token");
    assert_eq!(header(&res, "access-control-allow-origin"), Some(SITE));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&res, "vary"), Some("Origin"));
    let res = gate.send(&from("https://evil.example"));
    expect_error(&res, 401, "invalid_token");
    assert!(!res
        .headers
        .iter()
        .any(|(k, _)| k.starts_with("access-control-")));

    let preflight = Request::new("OPTIONS", "/auth/refresh")
        .with_header("origin", SITE)
        .with_header("access-control-request-method", "POST")
        .with_header(
            "access-control-request-headers",
            "content-type,x-csrf-token",
        );
    let res = gate.send(&preflight);
    expect_status(&res, 204);
    assert_eq!(
        header(&res, "access-control-allow-headers"),
        Some("Authorization, Content-Type, X-CSRF-Token")
    );
    assert_eq!(header(&res, "access-control-allow-origin"), Some(SITE));

    let res = gate.send(&Request::new("GET", "/client/gatehouse.js").with_header("origin", SITE));
    expect_status(&res, 200);
    assert_eq!(header(&res, "access-control-allow-origin"), Some("*"));
    assert!(header(&res, "content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(String::from_utf8_lossy(&res.body).contains("export function createClient"));
}

#[test]
fn a_login_derives_its_password_hash_once_and_uses_two_storage_operations() {
    let gate = Gate::new(&[]);
    gate.register("once@example.com");
    let hasher = CountingPbkdf2(std::cell::Cell::new(0));
    let svc = gatehouse::services::Services {
        config: &gate.config,
        store: &gate.store,
        hasher: &hasher,
        clock: &gate.clock,
        rng: &gatehouse::primitives::platform::SystemRng,
        aead: &gatehouse::primitives::platform::RustAesGcm,
        verifier: &gatehouse::primitives::jws::RustVerifier,
        fetcher: &gatehouse::primitives::platform::NoFetcher,
        documents: &gatehouse::primitives::platform::NoDocumentCache,
    };
    let before = gate.store.operations();
    let req = Request::new("POST", "/auth/login")
        .with_header("cf-connecting-ip", "203.0.113.7")
        .with_json(
            &json!({ "email": "once@example.com", "password": PASSWORD, "refresh_token_in_body": true }),
        );
    let res = futures::executor::block_on(gatehouse::routes::handle(&svc, &req));
    expect_status(&res, 200);
    assert_eq!(hasher.0.get(), 1, "PBKDF2 derivations of one login");
    // One round trip for the three rate-limit counters (client network; account on this
    // network; account-wide, which a device cookie would skip) and the user; one batch for the
    // new family with its audit event.
    assert_eq!(
        gate.store.operations() - before,
        2,
        "storage operations of one login"
    );
}

/// The `kid` in an access token's header.
fn kid_of(access_token: &str) -> String {
    let header = access_token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&b64url_decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[test]
fn rotating_the_signing_key_twice_logs_no_one_out_and_old_tokens_end_at_their_exp() {
    let seeds = [SEED, [21u8; 32], [22u8; 32]];
    let keys: Vec<KeySet> = seeds.iter().map(|s| KeySet::new(s, &[]).unwrap()).collect();
    let x = |i: usize| b64url(&keys[i].public_key());
    let seed = |i: usize| b64url(&seeds[i]);
    let jwks_kids = |gate: &Gate| -> Vec<String> {
        let res = gate.send(&Request::new("GET", "/.well-known/jwks.json"));
        expect_status(&res, 200)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let kid = |i: usize| keys[i].current_kid().to_string();

    let mut gate = Gate::new(&[]);
    let first = gate.register("rotate@example.com");
    let mut refresh = first.refresh_token.clone();
    let mut step = |gate: &Gate| {
        let res = gate.refresh(&refresh);
        let session = Session::from_response(&expect_status_res(res));
        refresh = session.refresh_token;
        session.access_token
    };

    for (old, new) in [(0, 1), (1, 2)] {
        let old_token = step(&gate);
        assert_eq!(kid_of(&old_token), kid(old));
        // Step 1: the next key is published (second in the JWKS) and its tokens would verify.
        gate.reconfigure(&[
            ("JWT_SIGNING_KEY", &seed(old)),
            ("JWT_NEXT_PUBLIC_KEY", &x(new)),
        ]);
        assert_eq!(jwks_kids(&gate)[..2], [kid(old), kid(new)]);
        assert_eq!(
            kid_of(&step(&gate)),
            kid(old),
            "still signed by the old key"
        );
        // An isolate already on the next key's configuration may sign with it: accepted here.
        let early = sign_access(&seeds[new], claims_for(&first.user_id), gate.now(), 900);
        expect_status(&gate.me(&early), 200);
        gate.advance(301 * SECOND);
        // Step 2: the next key signs; the old key's tokens keep verifying.
        gate.reconfigure(&[
            ("JWT_SIGNING_KEY", &seed(new)),
            ("JWT_PREVIOUS_PUBLIC_KEYS", &x(old)),
        ]);
        assert_eq!(jwks_kids(&gate)[0], kid(new));
        expect_status(&gate.me(&old_token), 200);
        let new_token = step(&gate);
        assert_eq!(kid_of(&new_token), kid(new));
        expect_status(&gate.me(&new_token), 200);
        // Past the old token's exp (ACCESS_TOKEN_TTL 900 s + CLOCK_LEEWAY_SECONDS 30 s): refused.
        gate.advance(930 * SECOND);
        expect_status(&gate.me(&old_token), 401);
        expect_status(&gate.me(&step(&gate)), 200);
        // Step 3: the old key is retired.
        gate.reconfigure(&[("JWT_SIGNING_KEY", &seed(new))]);
        assert_eq!(jwks_kids(&gate), [kid(new)]);
    }
    // The session born under the first key is still alive under the third.
    expect_status(&gate.me(&step(&gate)), 200);
    assert_eq!(gate.live_tokens(&gate.family_of(&refresh).id), 1);
}

fn expect_status_res(res: Response) -> Response {
    expect_status(&res, 200);
    res
}

#[test]
fn the_next_key_must_be_a_public_key() {
    let err = common::try_config(&[("JWT_NEXT_PUBLIC_KEY", &b64url(&SEED))], &[]).unwrap_err();
    assert!(err.to_string().contains("JWT_NEXT_PUBLIC_KEY"), "{err}");
    assert!(
        !err.to_string().contains(&b64url(&SEED)),
        "the seed is echoed"
    );
    let err = common::try_config(&[("JWT_NEXT_PUBLIC_KEY", "short")], &[]).unwrap_err();
    assert!(err.to_string().contains("JWT_NEXT_PUBLIC_KEY"), "{err}");
}
