//! Trusted external issuers (`TRUSTED_ISSUERS`), natively: the signature checks on the known
//! answers WebCrypto also checks (`/__selftest/jws`), the configuration's errors, and tokens
//! on `/auth/me` through a JWKS fetcher the test controls, with a clock it moves: JWKS caching
//! by `Cache-Control`, an unknown `kid` refetched at most once per interval, a host that is
//! down, bad documents, forgeries, and issuers of known users only. The cache shared by
//! isolates (the Workers Cache API in the worker) is a `MemoryDocumentCache` that two service
//! instances with configurations of their own, two "isolates", are handed.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::{describe, expect_error, expect_status, try_config, TestClock, SECOND, T0};
use futures::executor::block_on;
use gatehouse::domain::config::Config;
use gatehouse::domain::store::memory::MemoryStore;
use gatehouse::domain::store::{PasswordPhc, Store, User};
use gatehouse::primitives::encoding::b64url;
use gatehouse::primitives::http::{Request, Response};
use gatehouse::primitives::jws::{check_vectors, RustVerifier};
use gatehouse::primitives::platform::{
    CachedDocument, Fetched, Fetcher, MemoryDocumentCache, RustPbkdf2, SystemRng,
};
use gatehouse::routes::fast::{self, Fast};
use gatehouse::routes::handle;
use gatehouse::services::Services;
use serde_json::{json, Value};

const ISS: &str = "https://idp.example";
const JWKS_URI: &str = "https://idp.example/jwks";

#[test]
fn native_checks_agree_with_the_known_answers() {
    let vectors = include_str!("fixtures/jws-vectors.json");
    let (ok, cases) = block_on(check_vectors(&RustVerifier, vectors));
    assert!(ok, "{cases:?}");
    assert!(cases.len() >= 10);
    // Both outcomes are among the answers, so agreeing is not trivially "all valid".
    let parsed: Vec<Value> = serde_json::from_str(vectors).unwrap();
    assert!(parsed.iter().any(|v| v["valid"] == true));
    assert!(parsed.iter().any(|v| v["valid"] == false));
}

/// An Ed25519 key of the test issuer.
struct Signer {
    key: ed25519_compact::KeyPair,
    kid: String,
}

impl Signer {
    fn new(seed: u8, kid: &str) -> Self {
        Self {
            key: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32])),
            kid: kid.into(),
        }
    }

    fn jwk(&self) -> Value {
        json!({ "kty": "OKP", "crv": "Ed25519", "x": b64url(&self.key.pk[..]), "kid": self.kid, "use": "sig" })
    }

    fn token(&self, claims: Value) -> String {
        self.token_with(
            json!({ "alg": "EdDSA", "kid": self.kid, "typ": "JWT" }),
            claims,
        )
    }

    fn token_with(&self, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self.key.sk.sign(input.as_bytes(), None);
        format!("{input}.{}", b64url(&sig[..]))
    }
}

fn claims(sub: &str) -> Value {
    json!({ "iss": ISS, "aud": "site", "sub": sub, "iat": T0 / 1000, "exp": T0 / 1000 + 3600 })
}

/// A JWKS host the test controls: what it answers, and how often it was asked.
#[derive(Default)]
struct FakeHost {
    answer: RefCell<Option<Result<Fetched, String>>>,
    calls: Cell<u32>,
}

impl FakeHost {
    fn serve(&self, keys: &[&Signer], cache_control: Option<&str>) {
        let body = json!({ "keys": keys.iter().map(|s| s.jwk()).collect::<Vec<_>>() });
        self.serve_raw(200, cache_control, body.to_string().into_bytes());
    }

    fn serve_raw(&self, status: u16, cache_control: Option<&str>, body: Vec<u8>) {
        *self.answer.borrow_mut() = Some(Ok(Fetched {
            status,
            cache_control: cache_control.map(str::to_string),
            body,
        }));
    }

    fn down(&self) {
        *self.answer.borrow_mut() = Some(Err("connection refused".into()));
    }
}

impl Fetcher for FakeHost {
    fn get<'a>(
        &'a self,
        url: &'a str,
        _limit: usize,
        _timeout_ms: u32,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<Fetched, String>> {
        assert_eq!(url, JWKS_URI);
        self.calls.set(self.calls.get() + 1);
        let answer = self.answer.borrow().clone().expect("the host was set up");
        Box::pin(async move { answer })
    }
}

/// One isolate: its own configuration (so its own key cache); the JWKS host, the clock and
/// the shared cache may be another isolate's too.
struct World {
    config: Config,
    table: String,
    store: MemoryStore,
    clock: Rc<TestClock>,
    host: Rc<FakeHost>,
    documents: Rc<MemoryDocumentCache>,
}

impl World {
    fn new(issuer: Value) -> Self {
        let table = json!({ "idp": issuer }).to_string();
        let config = try_config(&[("TRUSTED_ISSUERS", &table)], &[]).expect("valid");
        Self {
            config,
            table,
            store: MemoryStore::new(),
            clock: Rc::new(TestClock(Cell::new(T0))),
            host: Rc::new(FakeHost::default()),
            documents: Rc::new(MemoryDocumentCache::default()),
        }
    }

    /// A fresh isolate of the same deployment in the same data centre: nothing fetched yet,
    /// the same JWKS host, clock and shared cache.
    fn another_isolate(&self) -> Self {
        Self {
            config: try_config(&[("TRUSTED_ISSUERS", &self.table)], &[]).expect("valid"),
            table: self.table.clone(),
            store: MemoryStore::new(),
            clock: Rc::clone(&self.clock),
            host: Rc::clone(&self.host),
            documents: Rc::clone(&self.documents),
        }
    }

    fn remote() -> Self {
        Self::new(json!({
            "iss": ISS, "jwks_uri": JWKS_URI, "audience": "site", "algorithms": ["EdDSA"],
            "cookie": "idp_session", "default_roles": ["user"],
            "roles_claim": "groups", "role_map": { "cms-editors": "editor" },
        }))
    }

    fn send(&self, req: &Request) -> Response {
        let svc = Services {
            config: &self.config,
            store: &self.store,
            hasher: &RustPbkdf2,
            clock: &*self.clock,
            rng: &SystemRng,
            aead: &gatehouse::primitives::platform::RustAesGcm,
            verifier: &RustVerifier,
            fetcher: &*self.host,
            documents: &*self.documents,
        };
        block_on(handle(&svc, req))
    }

    fn me(&self, token: &str) -> Response {
        self.send(
            &Request::new("GET", "/auth/me")
                .with_header("authorization", &format!("Bearer {token}")),
        )
    }

    fn advance(&self, ms: i64) {
        self.clock.0.set(self.clock.0.get() + ms);
    }
}

#[test]
fn a_trusted_token_is_a_caller_on_me_with_mapped_roles() {
    let world = World::remote();
    let signer = Signer::new(1, "k1");
    world.host.serve(&[&signer], None);
    let mut c = claims("alice");
    c["groups"] = json!(["cms-editors", "admins"]);
    let body = expect_status(&world.me(&signer.token(c)), 200);
    assert_eq!(body["issuer"], "idp");
    assert_eq!(body["user"]["id"], "idp:alice");
    // Defaults, then mapped roles; an unmapped foreign role ("admins") counts for nothing.
    assert_eq!(body["user"]["roles"], json!(["user", "editor"]));
    assert_eq!(body["user"]["email"], Value::Null);
    // The cookie is a source too.
    let req = Request::new("GET", "/auth/me").with_header(
        "cookie",
        &format!("idp_session={}", signer.token(claims("bob"))),
    );
    assert_eq!(
        expect_status(&world.send(&req), 200)["user"]["id"],
        "idp:bob"
    );
    assert_eq!(world.host.calls.get(), 1, "one fetch for both");
}

#[test]
fn keys_are_cached_for_max_age_and_an_unknown_kid_refetches_at_most_once_a_minute() {
    let world = World::remote();
    let (k1, k2) = (Signer::new(1, "k1"), Signer::new(2, "k2"));
    world.host.serve(&[&k1], Some("public, max-age=600"));
    expect_status(&world.me(&k1.token(claims("a"))), 200);
    assert_eq!(world.host.calls.get(), 1);
    // The issuer rotates to k2. Within the minute after the fetch, an unknown kid is refused
    // without asking the host again.
    world.host.serve(&[&k1, &k2], Some("public, max-age=600"));
    world.advance(30 * SECOND);
    expect_error(&world.me(&k2.token(claims("b"))), 401, "invalid_token");
    assert_eq!(world.host.calls.get(), 1);
    // A minute after the last fetch, one refetch finds it.
    world.advance(30 * SECOND);
    expect_status(&world.me(&k2.token(claims("c"))), 200);
    assert_eq!(world.host.calls.get(), 2);
    // A kid the host does not have: one refetch a minute later, then none within the minute.
    let k3 = Signer::new(3, "k3");
    world.advance(60 * SECOND);
    expect_error(&world.me(&k3.token(claims("d"))), 401, "invalid_token");
    expect_error(&world.me(&k3.token(claims("e"))), 401, "invalid_token");
    assert_eq!(world.host.calls.get(), 3);
    // Known keys are used without fetching until max-age has passed.
    world.advance(500 * SECOND);
    expect_status(&world.me(&k1.token(claims("f"))), 200);
    assert_eq!(world.host.calls.get(), 3);
    world.advance(200 * SECOND);
    expect_status(&world.me(&k1.token(claims("g"))), 200);
    assert_eq!(world.host.calls.get(), 4);
}

#[test]
fn a_host_that_is_down_keeps_cached_keys_working_and_is_unavailable_without_them() {
    let world = World::remote();
    let k1 = Signer::new(1, "k1");
    // Nothing cached and the host down: 401 issuer_unavailable, and no new try within the
    // refetch interval.
    world.host.down();
    expect_error(&world.me(&k1.token(claims("a"))), 401, "issuer_unavailable");
    expect_error(&world.me(&k1.token(claims("b"))), 401, "issuer_unavailable");
    assert_eq!(world.host.calls.get(), 1);
    world.advance(61 * SECOND);
    world.host.serve(&[&k1], Some("max-age=60"));
    expect_status(&world.me(&k1.token(claims("c"))), 200);
    // Down again after the keys went stale: the cached key keeps working.
    world.host.down();
    world.advance(120 * SECOND);
    expect_status(&world.me(&k1.token(claims("d"))), 200);
    // An unknown kid while the host is down: issuer_unavailable.
    world.advance(120 * SECOND);
    expect_error(
        &world.me(&Signer::new(9, "k9").token(claims("e"))),
        401,
        "issuer_unavailable",
    );
}

/// The kids of the JWKS the shared cache holds.
fn shared_kids(world: &World) -> Vec<String> {
    let doc = world.documents.stored(JWKS_URI).expect("a shared copy");
    let jwks: Value = serde_json::from_slice(&doc.body).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_fresh_isolate_takes_the_jwks_from_the_shared_cache_without_fetching() {
    let a = World::remote();
    let k1 = Signer::new(1, "k1");
    a.host.serve(&[&k1], Some("public, max-age=600"));
    expect_status(&a.me(&k1.token(claims("a"))), 200);
    assert_eq!(a.host.calls.get(), 1);
    let stored = a
        .documents
        .stored(JWKS_URI)
        .expect("stored in the shared cache");
    assert_eq!(stored.expires_ms, T0 + 600 * SECOND, "for its max-age");
    assert_eq!(shared_kids(&a), ["k1"]);
    // A fresh isolate, with the host down: the shared copy serves it.
    a.host.down();
    a.advance(100 * SECOND);
    let b = a.another_isolate();
    expect_status(&b.me(&k1.token(claims("b"))), 200);
    assert_eq!(a.host.calls.get(), 1, "no fetch");
    // Its keys are fresh as long as the shared copy is: until 600 s after the first fetch.
    a.advance(499 * SECOND);
    expect_status(&b.me(&k1.token(claims("c"))), 200);
    assert_eq!(a.host.calls.get(), 1);
    // Then it fetches (the copy is gone from the shared cache too); the host is down, so its
    // cached key stays in use.
    a.advance(SECOND);
    assert_eq!(
        a.documents.stored(JWKS_URI).unwrap().expires_ms,
        a.clock.0.get()
    );
    expect_status(&b.me(&k1.token(claims("d"))), 200);
    assert_eq!(a.host.calls.get(), 2);
    // An isolate whose shared cache is empty (another data centre) finds nothing: unavailable.
    let elsewhere = World::remote();
    elsewhere.host.down();
    expect_error(
        &elsewhere.me(&k1.token(claims("e"))),
        401,
        "issuer_unavailable",
    );
}

#[test]
fn an_unknown_kid_refetches_past_the_shared_cache_and_replaces_its_copy() {
    let a = World::remote();
    let (k1, k2, k3) = (
        Signer::new(1, "k1"),
        Signer::new(2, "k2"),
        Signer::new(3, "k3"),
    );
    a.host.serve(&[&k1], Some("max-age=600"));
    expect_status(&a.me(&k1.token(claims("a"))), 200);
    // The issuer adds k2. A minute later the shared copy ({k1}, fresh for 9 more minutes) is
    // passed over: the refetch asks the host, and its answer replaces the copy.
    a.host.serve(&[&k1, &k2], Some("max-age=600"));
    a.advance(60 * SECOND);
    expect_status(&a.me(&k2.token(claims("b"))), 200);
    assert_eq!(a.host.calls.get(), 2);
    assert_eq!(shared_kids(&a), ["k1", "k2"]);
    assert_eq!(
        a.documents.stored(JWKS_URI).unwrap().expires_ms,
        T0 + 660 * SECOND
    );
    // A fresh isolate takes the new set from the shared cache.
    let b = a.another_isolate();
    expect_status(&b.me(&k2.token(claims("c"))), 200);
    assert_eq!(a.host.calls.get(), 2);
    // The issuer adds k3. A fresh isolate whose shared copy lacks the kid fetches at once (it
    // has never fetched) and replaces the copy.
    a.host.serve(&[&k1, &k2, &k3], Some("max-age=600"));
    let c = a.another_isolate();
    expect_status(&c.me(&k3.token(claims("d"))), 200);
    assert_eq!(a.host.calls.get(), 3);
    assert_eq!(shared_kids(&a), ["k1", "k2", "k3"]);
    // Isolate a fetched under a minute ago: still at most one fetch per minute for it, and
    // an unknown kid does not send it to the shared cache.
    a.advance(59 * SECOND);
    expect_error(&a.me(&k3.token(claims("e"))), 401, "invalid_token");
    assert_eq!(a.host.calls.get(), 3);
    a.advance(SECOND);
    expect_status(&a.me(&k3.token(claims("f"))), 200);
    assert_eq!(a.host.calls.get(), 4);
}

#[test]
fn an_answer_without_a_usable_max_age_is_not_shared() {
    let k1 = Signer::new(1, "k1");
    for cache_control in [
        None,
        Some("public"),
        Some("no-store, max-age=600"),
        Some("max-age=600, no-cache"),
        Some("private, max-age=600"),
        Some("max-age=0"),
        Some("max-age=soon"),
    ] {
        let a = World::remote();
        a.host.serve(&[&k1], cache_control);
        expect_status(&a.me(&k1.token(claims("a"))), 200);
        assert_eq!(a.documents.stored(JWKS_URI), None, "{cache_control:?}");
        // So a fresh isolate fetches again.
        let b = a.another_isolate();
        expect_status(&b.me(&k1.token(claims("b"))), 200);
        assert_eq!(a.host.calls.get(), 2, "{cache_control:?}");
    }
    // A max-age past a day is kept for a day.
    let a = World::remote();
    a.host.serve(&[&k1], Some("public, max-age=31536000"));
    expect_status(&a.me(&k1.token(claims("a"))), 200);
    assert_eq!(
        a.documents.stored(JWKS_URI).unwrap().expires_ms,
        T0 + 86_400 * SECOND
    );
}

#[test]
fn a_shared_copy_that_is_not_a_jwks_or_too_large_is_passed_over_and_replaced() {
    let k1 = Signer::new(1, "k1");
    let good = json!({ "keys": [k1.jwk()] }).to_string();
    let padded = format!("{good}{}", " ".repeat(65_536));
    for planted in [
        b"<html>gateway</html>".to_vec(),
        br#"{"keys": []}"#.to_vec(),
        padded.into_bytes(),
    ] {
        let a = World::remote();
        a.documents.plant(
            JWKS_URI,
            CachedDocument {
                body: planted,
                expires_ms: T0 + 600 * SECOND,
            },
        );
        a.host.serve(&[&k1], Some("max-age=300"));
        expect_status(&a.me(&k1.token(claims("a"))), 200);
        assert_eq!(a.host.calls.get(), 1);
        let stored = a.documents.stored(JWKS_URI).unwrap();
        assert_eq!(stored.body, good.as_bytes());
        assert_eq!(stored.expires_ms, T0 + 300 * SECOND);
    }
}

#[test]
fn a_jwks_that_is_not_json_or_not_a_jwks_or_not_200_is_unavailable() {
    for (status, body) in [
        (200, b"<html>gateway</html>".to_vec()),
        (200, br#"{"keys": "none"}"#.to_vec()),
        (
            200,
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.to_vec(),
        ),
        (500, br#"{"keys": []}"#.to_vec()),
    ] {
        let world = World::remote();
        world.host.serve_raw(status, None, body.clone());
        let res = world.me(&Signer::new(1, "k1").token(claims("a")));
        expect_error(&res, 401, "issuer_unavailable");
        assert!(
            res.log.as_deref().is_some_and(|l| l.contains("idp")),
            "{:?}",
            res.log
        );
    }
}

#[test]
fn forgeries_and_bad_claims_are_refused() {
    let world = World::remote();
    let k1 = Signer::new(1, "k1");
    world.host.serve(&[&k1], None);
    let mut wrong_aud = claims("a");
    wrong_aud["aud"] = json!("another-site");
    expect_error(&world.me(&k1.token(wrong_aud)), 401, "invalid_token");
    let mut expired = claims("a");
    expired["exp"] = json!(T0 / 1000 - 3600);
    expect_error(&world.me(&k1.token(expired)), 401, "expired_token");
    let mut no_exp = claims("a");
    no_exp.as_object_mut().unwrap().remove("exp");
    expect_error(&world.me(&k1.token(no_exp)), 401, "invalid_token");
    // An issuer that is not trusted, signed by the trusted issuer's key and kid.
    let mut evil = claims("a");
    evil["iss"] = json!("https://evil.example");
    expect_error(&world.me(&k1.token(evil)), 401, "untrusted_issuer");
    // `none`, HMAC and an algorithm the issuer does not accept.
    let c = claims("a");
    let unsigned = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","kid":"k1"}"#),
        b64url(c.to_string().as_bytes())
    );
    expect_error(&world.me(&unsigned), 401, "invalid_token");
    for alg in ["HS256", "RS256", "ES256", "none", "EdDSA "] {
        let token = k1.token_with(json!({ "alg": alg, "kid": "k1" }), claims("a"));
        expect_error(&world.me(&token), 401, "invalid_token");
    }
    // A signature of another key under k1's kid.
    let other = Signer::new(7, "k1");
    expect_error(&world.me(&other.token(claims("a"))), 401, "invalid_token");
    // A token whose claims were changed after signing.
    let good = k1.token(claims("alice"));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims("admin").to_string().as_bytes()),
        parts[2]
    );
    expect_error(&world.me(&forged), 401, "invalid_token");
    // A user claim with a line break could split a header: refused.
    expect_error(
        &world.me(&k1.token(claims("a\nx-gatehouse-user: usr_1"))),
        401,
        "invalid_token",
    );
    // None of this fetched more than once.
    assert_eq!(world.host.calls.get(), 1, "{}", describe(&world.me(&good)));
}

#[test]
fn known_users_only_takes_local_users_and_their_roles() {
    let k1 = Signer::new(1, "k1");
    let world = World::new(json!({
        "iss": ISS, "jwks": { "keys": [k1.jwk()] }, "audience": ["site", "app"],
        "algorithms": ["EdDSA"], "known_users_only": true, "email_claim": "email",
    }));
    let now = T0;
    let user = User {
        id: "usr_local1".into(),
        email: "ann@example.com".into(),
        name: Some("Ann".into()),
        password_hash: PasswordPhc::from_stored("$pbkdf2-sha256$i=10000$AAAA$AAAA".into()),
        roles: vec!["editor".into()],
        disabled: false,
        created_at: now,
        updated_at: now,
        totp: false,
    };
    block_on(world.store.create_user(&user, None, None)).unwrap();
    let with_email = |email: &str, verified: Option<bool>| {
        let mut c = claims("foreign-sub");
        c["email"] = json!(email);
        c["roles"] = json!(["admin"]);
        if let Some(v) = verified {
            c["email_verified"] = json!(v);
        }
        k1.token(c)
    };
    let body = expect_status(&world.me(&with_email("Ann@Example.com", Some(true))), 200);
    assert_eq!(body["user"]["id"], "usr_local1");
    assert_eq!(
        body["user"]["roles"],
        json!(["editor"]),
        "local roles, not the token's"
    );
    assert_eq!(body["issuer"], "idp");
    expect_error(
        &world.me(&with_email("nobody@example.com", None)),
        401,
        "invalid_token",
    );
    expect_error(
        &world.me(&with_email("ann@example.com", Some(false))),
        401,
        "invalid_token",
    );
    let mut disabled = user.clone();
    disabled.id = "usr_local2".into();
    disabled.email = "dis@example.com".into();
    disabled.disabled = true;
    block_on(world.store.create_user(&disabled, None, None)).unwrap();
    expect_error(
        &world.me(&with_email("dis@example.com", None)),
        401,
        "invalid_token",
    );
}

#[test]
fn configuration_errors_name_the_variable_and_the_issuer() {
    let jwk = Signer::new(1, "k1").jwk();
    let base = || json!({ "iss": ISS, "jwks_uri": JWKS_URI, "audience": "site" });
    let with = |k: &str, v: Value| {
        let mut b = base();
        b[k] = v;
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("jwks_uri", json!("http://idp.example/jwks")), "https"),
        (
            with("jwks_uri", json!("http://127.0.0.1:9/jwks")),
            "DEV_ALLOW_HTTP_LOOPBACK_JWKS",
        ),
        (with("algorithms", json!(["none"])), "never none or HMAC"),
        (with("algorithms", json!(["HS256"])), "never none or HMAC"),
        (
            with("jwks", json!({ "keys": [jwk] })),
            "exactly one of jwks_uri and jwks",
        ),
        (with("audience", json!([])), "audience"),
        (with("bearer", json!(false)), "no token source"),
        (with("surprise", json!(1)), "surprise"),
        (with("roles_claim", json!("groups")), "role_map"),
        (with("iss", json!("gatehouse")), "JWT_ISSUER"),
        (
            with("cookie", json!("gatehouse_refresh")),
            "Gatehouse's own",
        ),
        (
            with("jwks_refetch_seconds", json!(0)),
            "jwks_refetch_seconds",
        ),
        (
            json!({ "iss": ISS, "jwks": { "keys": [{ "kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "small" }] }, "audience": "a" }),
            "2048 to 4096",
        ),
        (
            json!({ "iss": ISS, "jwks": { "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA" }] }, "audience": "a" }),
            "private key",
        ),
        (
            json!({ "iss": ISS, "jwks_uri": JWKS_URI, "audience": "a", "known_users_only": true, "default_roles": ["user"] }),
            "known_users_only",
        ),
    ];
    for (issuer, expected) in cases {
        let table = json!({ "idp": issuer }).to_string();
        let err = try_config(&[("TRUSTED_ISSUERS", &table)], &[]).unwrap_err();
        assert_eq!(err.var, "TRUSTED_ISSUERS", "{err}");
        let text = err.to_string();
        assert!(
            text.contains("\"idp\"") && text.contains(expected),
            "{expected}: {text}"
        );
    }
    let err = try_config(&[("TRUSTED_ISSUERS", "not json")], &[]).unwrap_err();
    assert_eq!(err.var, "TRUSTED_ISSUERS");
    let table = json!({ "a": base(), "b": base() }).to_string();
    assert!(try_config(&[("TRUSTED_ISSUERS", &table)], &[])
        .unwrap_err()
        .to_string()
        .contains("same iss"));
    // The development flag allows http only on 127.0.0.1.
    let local = json!({ "idp": with("jwks_uri", json!("http://127.0.0.1:9000/jwks")) }).to_string();
    try_config(
        &[
            ("TRUSTED_ISSUERS", &local),
            ("DEV_ALLOW_HTTP_LOOPBACK_JWKS", "true"),
        ],
        &[],
    )
    .unwrap();
    let remote = json!({ "idp": with("jwks_uri", json!("http://10.0.0.1/jwks")) }).to_string();
    let err = try_config(
        &[
            ("TRUSTED_ISSUERS", &remote),
            ("DEV_ALLOW_HTTP_LOOPBACK_JWKS", "true"),
        ],
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
}

#[test]
fn without_trusted_issuers_a_foreign_token_stays_invalid_token_and_local_tokens_still_work() {
    let k1 = Signer::new(1, "k1");
    let config = try_config(&[], &[]).unwrap();
    let store = MemoryStore::new();
    let clock = TestClock(Cell::new(T0));
    let host = FakeHost::default();
    let svc = Services {
        config: &config,
        store: &store,
        hasher: &RustPbkdf2,
        clock: &clock,
        rng: &SystemRng,
        aead: &gatehouse::primitives::platform::RustAesGcm,
        verifier: &RustVerifier,
        fetcher: &host,
        documents: &gatehouse::primitives::platform::NoDocumentCache,
    };
    let req = Request::new("GET", "/auth/me").with_header(
        "authorization",
        &format!("Bearer {}", k1.token(claims("a"))),
    );
    expect_error(&block_on(handle(&svc, &req)), 401, "invalid_token");
    assert_eq!(host.calls.get(), 0);
}

#[test]
fn the_fast_path_leaves_an_issuers_token_to_the_usual_path_and_its_keys_untouched() {
    let table = json!({ "idp": {
        "iss": ISS, "jwks_uri": JWKS_URI, "audience": "site", "algorithms": ["EdDSA"],
        "default_roles": ["user"],
    } })
    .to_string();
    let routes = json!({ "cms": {
        "prefix": "/cms/", "upstream": "https://cms.example/api/", "forward_all": true,
        "inject": { "header": "api-key", "value": "{secret}" },
        "read": { "roles": ["user"], "secret": "CMS_READ_KEY" },
    } })
    .to_string();
    let config = try_config(
        &[
            ("TRUSTED_ISSUERS", &table),
            ("ROUTES", &routes),
            (
                "UPSTREAM_SIGNING_SECRET",
                "an upstream signing secret of 32+ chars",
            ),
            ("CMS_READ_KEY", "read-key-value"),
        ],
        &[],
    )
    .expect("valid");
    let world = World {
        config,
        table,
        ..World::remote()
    };
    let signer = Signer::new(1, "k1");
    world.host.serve(&[&signer], Some("public, max-age=600"));
    let token = signer.token(claims("alice"));
    let read =
        Request::new("GET", "/cms/items").with_header("authorization", &format!("Bearer {token}"));
    let fast = || fast::try_forward(&world.config, T0, &SystemRng, &read, false);
    // Keys not fetched yet: the fast path stops before the fetch, and records nothing of it.
    assert!(matches!(fast(), Fast::Slow));
    assert_eq!(world.host.calls.get(), 0);
    expect_status(&world.me(&token), 200);
    assert_eq!(
        world.host.calls.get(),
        1,
        "the usual path fetched the keys at once"
    );
    // Verified in this isolate: from now on the fast path forwards it, as the issuer's caller.
    let Fast::Forward { decision, .. } = fast() else {
        panic!("a verified token of a trusted issuer takes the fast path");
    };
    let user = decision
        .request
        .headers
        .iter()
        .find(|(k, _)| k == "x-gatehouse-user")
        .map(|(_, v)| v.as_str());
    assert_eq!(user, Some("idp:alice"));
    assert_eq!(world.host.calls.get(), 1);
}
