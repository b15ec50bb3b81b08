//! The proxy through the portable core: `serve` with a recording upstream and a controllable
//! clock. The end-to-end suite repeats the important cases in workerd against a real server.

mod common;

use std::cell::RefCell;

use futures::executor::block_on;
use serde_json::{json, Value};

use gatehouse::domain::config::Config;
use gatehouse::domain::proxy::{Upstream, UpstreamFailure, UpstreamRequest, UpstreamResponse};
use gatehouse::domain::store::memory::MemoryStore;
use gatehouse::domain::store::{AuditEvent, PasswordPhc, Store, User};
use gatehouse::domain::token::AccessClaims;
use gatehouse::primitives::http::Request;
use gatehouse::primitives::platform::{FixedClock, SystemRng};
use gatehouse::routes::fast::{self, Fast};
use gatehouse::routes::{serve, Outcome};

const NOW: i64 = 1_800_000_000_000;
const SECRET: &str = "an upstream signing secret of 32+ chars";

/// Records what it is sent; answers by path like a tiny CMS, and a lookup of a stored item
/// (a URL in `stored`) with its status and JSON.
#[derive(Default)]
struct Recorder {
    seen: RefCell<Vec<UpstreamRequest>>,
    stored: RefCell<Vec<(String, u16, Value)>>,
}

impl Recorder {
    fn borrow_stored(&self) -> std::cell::RefMut<'_, Vec<(String, u16, Value)>> {
        self.stored.borrow_mut()
    }
}

impl Upstream for Recorder {
    type Body = Vec<u8>;

    async fn send(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse<Vec<u8>>, UpstreamFailure> {
        let url = request.url.clone();
        self.seen.borrow_mut().push(request);
        if url.contains("/down") {
            return Err(UpstreamFailure::Unreachable("connection refused".into()));
        }
        if url.contains("/slow") {
            return Err(UpstreamFailure::Timeout);
        }
        if let Some((_, status, item)) = self.stored.borrow().iter().find(|(u, _, _)| *u == url) {
            return Ok(UpstreamResponse {
                status: *status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: item.to_string().into_bytes(),
            });
        }
        Ok(UpstreamResponse {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("set-cookie".into(), "cms=1".into()),
                ("server".into(), "nginx".into()),
                ("x-key-echo".into(), "read-key-value".into()),
                ("cache-control".into(), "public, max-age=60".into()),
            ],
            body: b"{\"ok\":true}".to_vec(),
        })
    }

    async fn read_body(&self, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, UpstreamFailure> {
        if body.len() > limit {
            return Err(UpstreamFailure::Unreachable("too large".into()));
        }
        Ok(body)
    }
}

fn routes() -> String {
    json!({
        "cms": {
            "prefix": "/cms/",
            "upstream": "https://cms.example/api/",
            "inject": { "header": "api-key", "value": "{secret}" },
            "forward_all": true,
            "max_body_bytes": 200,
            "read": { "roles": ["anonymous"], "secret": "CMS_READ_KEY" },
            "write": { "roles": ["user"], "secret": "CMS_WRITE_KEY" },
            "DELETE": { "roles": ["admin"], "secret": "CMS_WRITE_KEY" }
        }
    })
    .to_string()
}

/// The signing secret and the CMS keys every test configuration has.
const SECRETS: &[(&str, &str)] = &[
    ("UPSTREAM_SIGNING_SECRET", SECRET),
    ("CMS_READ_KEY", "read-key-value"),
    ("CMS_WRITE_KEY", "write-key-value"),
    ("CMS_EDITOR_KEY", "editor-key-value"),
    ("DIRECTUS_READ_TOKEN", "directus-read-value"),
    ("DIRECTUS_WRITE_TOKEN", "directus-write-value"),
];

fn config_with(routes: &str) -> Result<Config, gatehouse::primitives::error::ConfigError> {
    common::try_config(&[("ROUTES", routes)], SECRETS)
}

struct Gate {
    config: Config,
    store: MemoryStore,
    upstream: Recorder,
}

impl Gate {
    fn new() -> Self {
        Self::with_routes(&routes())
    }

    fn with_routes(routes: &str) -> Self {
        Self {
            config: config_with(routes).expect("valid routes"),
            store: MemoryStore::default(),
            upstream: Recorder::default(),
        }
    }

    /// A token without a session for user `sub`, who is stored (created when new) holding
    /// `roles` too: an access token carries only the roles its user still holds.
    fn token(&self, sub: &str, roles: &[&str]) -> String {
        let roles_owned: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        match block_on(self.store.user_by_id(sub)).unwrap() {
            Some(mut user) => {
                user.roles.extend(roles_owned);
                user.roles.sort();
                user.roles.dedup();
                let event = AuditEvent {
                    at: NOW,
                    kind: "role_changed".into(),
                    actor_user_id: None,
                    subject_user_id: Some(sub.into()),
                    family_id: None,
                    ip: None,
                    user_agent: None,
                    detail: None,
                };
                block_on(self.store.set_roles(sub, &user.roles, NOW, &event)).unwrap();
            }
            None => {
                let user = User {
                    id: sub.into(),
                    email: format!("{sub}@example.test"),
                    name: None,
                    password_hash: PasswordPhc::from_stored("unused".into()),
                    roles: roles_owned,
                    disabled: false,
                    created_at: NOW,
                    updated_at: NOW,
                    totp: false,
                };
                block_on(self.store.create_user(&user, None, None)).unwrap();
            }
        }
        let claims = AccessClaims {
            iss: "gatehouse".into(),
            aud: "gatehouse".into(),
            sub: sub.into(),
            jti: "j1".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            sid: None,
            act: None,
            scope: None,
            routes: None,
        };
        self.config.tokens.keys.sign(claims, NOW, 900).unwrap()
    }

    /// Status, headers (if proxied) and the last upstream request (if one was sent by this call).
    fn send(&self, req: Request) -> (u16, Vec<(String, String)>, Option<UpstreamRequest>, Value) {
        let clock = FixedClock(NOW);
        let svc = common::services(&self.config, &self.store, &clock);
        let before = self.upstream.seen.borrow().len();
        let outcome = block_on(serve(&svc, &self.upstream, req));
        let seen = self.upstream.seen.borrow().get(before).cloned();
        match outcome {
            Outcome::Local(res) => (res.status, res.headers.clone(), seen, res.json_body()),
            Outcome::Proxied(answer) => (
                answer.status,
                answer.headers,
                seen,
                serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
            ),
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_caller_seen_before_is_proxied_without_touching_storage() {
    let gate = Gate::new();
    let token = gate.token("usr_1", &["user"]);
    let get = || {
        Request::new("GET", "/cms/content/items/posts")
            .with_header("authorization", &format!("Bearer {token}"))
    };
    let (status, _, seen, _) = gate.send(get());
    assert_eq!(status, 200);
    assert!(seen.is_some());
    let after_first = gate.store.operations();
    for _ in 0..3 {
        let (status, _, seen, _) = gate.send(get());
        assert_eq!(status, 200);
        assert!(seen.is_some(), "each request reaches the upstream once");
    }
    assert_eq!(
        gate.store.operations(),
        after_first,
        "a caller seen before costs no storage operation"
    );
}

#[test]
fn anonymous_read_gets_the_read_key_and_loses_client_credentials() {
    let gate = Gate::new();
    let req = Request::new(
        "GET",
        "/cms/content/items/posts?api_key=x&API.KEY=x&token=x&page=2",
    )
    .with_header("cookie", "a=b")
    .with_header("api-key", "client")
    .with_header("api_key", "client")
    .with_header("cockpit-token", "client")
    .with_header("x-gatehouse-user", "usr_evil")
    .with_header("connection", "close, x-hop")
    .with_header("x-hop", "1")
    .with_header("accept", "application/json");
    let (status, headers, seen, _) = gate.send(req);
    assert_eq!(status, 200);
    let seen = seen.expect("forwarded");
    assert_eq!(
        seen.url,
        "https://cms.example/api/content/items/posts?page=2"
    );
    let names: Vec<&str> = seen.headers.iter().map(|(k, _)| k.as_str()).collect();
    for gone in ["cookie", "api_key", "cockpit-token", "connection", "x-hop"] {
        assert!(!names.contains(&gone), "{gone} forwarded");
    }
    assert_eq!(header(&seen.headers, "api-key"), Some("read-key-value"));
    assert_eq!(header(&seen.headers, "accept"), Some("application/json"));
    assert_eq!(header(&seen.headers, "x-gatehouse-auth"), Some("anonymous"));
    assert_eq!(header(&seen.headers, "x-gatehouse-user"), None);
    // The answer loses its cookie, banner and the echoed key; anonymous caching is kept.
    assert_eq!(header(&headers, "set-cookie"), None);
    assert_eq!(header(&headers, "server"), None);
    assert_eq!(header(&headers, "x-key-echo"), None);
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=60")
    );
}

#[test]
fn roles_pick_the_rule_and_refusals_never_go_upstream() {
    let gate = Gate::new();
    let user = gate.token("usr_a", &["user"]);
    let admin = gate.token("usr_b", &["user", "admin"]);
    let bearer = |t: &str| format!("Bearer {t}");
    let post = |t: Option<&str>| {
        let req = Request::new("POST", "/cms/content/item/posts")
            .with_json(&json!({ "data": { "title": "t", "_by": "usr_evil" } }));
        match t {
            Some(t) => req.with_header("authorization", &bearer(t)),
            None => req,
        }
    };
    let (status, headers, seen, _) = gate.send(post(Some(&user)));
    assert_eq!(status, 200);
    let seen = seen.unwrap();
    assert_eq!(header(&seen.headers, "api-key"), Some("write-key-value"));
    assert_eq!(header(&seen.headers, "authorization"), None);
    assert_eq!(header(&seen.headers, "x-gatehouse-user"), Some("usr_a"));
    let body: Value = serde_json::from_slice(seen.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({ "data": { "title": "t", "_by": "usr_evil" } }),
        "forward_all: as sent"
    );
    assert_eq!(header(&headers, "cache-control"), Some("private, no-store"));

    let (status, _, seen, body) = gate.send(post(None));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("no_auth"))
    );
    assert!(seen.is_none());
    let delete = |t: &str| {
        Request::new("DELETE", "/cms/content/item/posts/1").with_header("authorization", &bearer(t))
    };
    let (status, _, seen, body) = gate.send(delete(&user));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_role"))
    );
    assert!(seen.is_none());
    let (status, _, seen, _) = gate.send(delete(&admin));
    assert_eq!(status, 200);
    assert_eq!(seen.unwrap().method, "DELETE");
    let (status, headers, _, body) = gate.send(Request::new("OPTIONS", "/cms/x"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(
        header(&headers, "allow"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE")
    );
}

#[test]
fn failures_map_to_their_codes() {
    let gate = Gate::new();
    for (path, status, code) in [
        ("/cms/down", 502, "upstream_unavailable"),
        ("/cms/slow", 504, "upstream_timeout"),
        ("/cms/%2e%2e/x", 400, "invalid_path"),
        ("/cms//x", 400, "invalid_path"),
        ("/elsewhere", 404, "not_found"),
    ] {
        let (s, _, _, body) = gate.send(Request::new("GET", path));
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    let user = gate.token("usr_a", &["user"]);
    let mut big = Request::new("POST", "/cms/content/item/posts")
        .with_header("authorization", &format!("Bearer {user}"))
        .with_json(&json!({ "data": { "title": "x".repeat(300) } }));
    let (s, _, seen, body) = gate.send(big.clone());
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert!(seen.is_none());
    // A forward_all route forwards a body it cannot read as it came.
    big.body = b"not json".to_vec();
    let (s, _, seen, _) = gate.send(big);
    assert_eq!(s, 200);
    assert_eq!(seen.unwrap().body.as_deref(), Some(&b"not json"[..]));
}

#[test]
fn the_signature_covers_method_path_query_identity_and_body() {
    let gate = Gate::new();
    let user = gate.token("usr_a", &["user"]);
    let (_, _, seen, _) = gate.send(
        Request::new("POST", "/cms/content/item/posts?x=1")
            .with_header("authorization", &format!("Bearer {user}"))
            .with_header("host", "gate.example")
            .with_header("cf-connecting-ip", "203.0.113.9")
            .with_header("x-forwarded-for", "10.0.0.1")
            .with_header("x-forwarded-host", "evil.example")
            .with_header("forwarded", "for=10.0.0.1;host=evil.example")
            .with_header("x-real-ip", "10.0.0.1")
            .with_json(&json!({ "data": { "title": "t" } })),
    );
    let seen = seen.unwrap();
    let input = header(&seen.headers, "signature-input").unwrap();
    assert!(input.starts_with(
        "gatehouse=(\"@method\" \"@path\" \"@query\" \"content-digest\" \"x-forwarded-for\" \
         \"x-forwarded-host\" \"x-forwarded-proto\" \"x-gatehouse-auth\" \"x-gatehouse-roles\" \
         \"x-gatehouse-user\");created=1800000000;"
    ));
    let digest = gatehouse::domain::proxy::sign::content_digest(seen.body.as_ref().unwrap());
    assert_eq!(
        header(&seen.headers, "content-digest"),
        Some(digest.as_str())
    );
    // Recompute with the same inputs: equal; any change: different.
    // The client's forwarding headers are gone; Gatehouse's own are signed.
    assert_eq!(
        header(&seen.headers, "x-forwarded-for"),
        Some("203.0.113.9")
    );
    assert_eq!(
        header(&seen.headers, "x-forwarded-host"),
        Some("gate.example")
    );
    assert_eq!(header(&seen.headers, "x-forwarded-proto"), Some("https"));
    for gone in ["forwarded", "x-real-ip"] {
        assert_eq!(header(&seen.headers, gone), None, "{gone}");
    }
    assert_eq!(
        seen.headers
            .iter()
            .filter(|(k, _)| k.starts_with("x-forwarded-"))
            .count(),
        3
    );
    let fields = [
        ("content-digest", digest.as_str()),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-host", "gate.example"),
        ("x-forwarded-proto", "https"),
        ("x-gatehouse-auth", "access_token"),
        ("x-gatehouse-roles", "user"),
        ("x-gatehouse-user", "usr_a"),
    ];
    let signed = gatehouse::domain::proxy::sign::Signed {
        method: "POST",
        path: "/api/content/item/posts",
        query: "x=1",
        fields: &fields,
        created: 1_800_000_000,
    };
    let (_, signature) = gatehouse::domain::proxy::sign::sign(SECRET.as_bytes(), &signed);
    assert_eq!(header(&seen.headers, "signature"), Some(signature.as_str()));
}

#[test]
fn route_config_errors_name_the_route_and_field() {
    let cases = [
        (
            json!({ "cms": { "upstream": "https://x/" , "read": { "roles": ["anonymous"] } } }),
            "route \"cms\": prefix",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "ftp://x/", "read": { "roles": ["anonymous"] } } }),
            "route \"cms\": upstream",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://user@x/", "read": { "roles": ["anonymous"] } } }),
            "route \"cms\": upstream",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/api", "read": { "roles": ["anonymous"] } } }),
            "must end with /",
        ),
        (
            json!({ "cms": { "prefix": "/auth/", "upstream": "https://x/", "read": { "roles": ["anonymous"] } } }),
            "overlaps",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "forward_all": true } }),
            "no rules",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "read": { "roles": ["anonymous"] } } }),
            "route \"cms\": endpoints: required",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "forward_all": true, "owner_field": "data._by", "write": { "roles": ["user"] } } }),
            "route \"cms\": owner_field",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "read": { "roles": [] } } }),
            "read.roles",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "read": { "roles": ["anonymous"], "secret": "NOPE" }, "inject": { "header": "api-key" } } }),
            "read.secret: the secret NOPE is not set",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "read": { "roles": ["anonymous"], "secret": "CMS_READ_KEY" } } }),
            "read.inject",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "read": { "roles": ["anonymous"], "secret": "CMS_READ_KEY", "inject": { "header": "host" } } } }),
            "cannot carry",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "reed": {} } }),
            "route \"cms\": reed: unknown field",
        ),
        (
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "timeout_ms": 5, "read": { "roles": ["anonymous"] } } }),
            "timeout_ms",
        ),
        (
            json!({ "a": { "prefix": "/cms/", "upstream": "https://x/", "forward_all": true, "read": { "roles": ["anonymous"] } }, "b": { "prefix": "/cms/", "upstream": "https://y/", "forward_all": true, "read": { "roles": ["anonymous"] } } }),
            "same prefix",
        ),
        (json!(["not", "an", "object"]), "keyed by route name"),
    ];
    for (routes, expected) in cases {
        let err = config_with(&routes.to_string()).expect_err(&routes.to_string());
        assert_eq!(err.var, "ROUTES");
        assert!(
            err.reason.contains(expected),
            "{expected:?} not in {:?}",
            err.reason
        );
        assert!(
            !err.to_string().contains("read-key-value"),
            "a secret in an error"
        );
    }
    let debug = format!("{:?}", config_with(&routes()).unwrap().proxy.routes);
    assert!(!debug.contains("read-key-value") && !debug.contains("write-key-value"));
}

#[test]
fn route_strip_lists_add_to_the_defaults() {
    let gate = Gate::with_routes(
        &json!({
            "cms": {
                "prefix": "/cms/",
                "upstream": "https://cms.example/api/",
                "strip_headers": ["X-Foo"],
                "strip_query": ["sid"],
                "forward_all": true,
                "read": { "roles": ["anonymous"] }
            }
        })
        .to_string(),
    );
    let mut req = Request::new(
        "GET",
        "/cms/items?api_key=c&token=c&access_token=c&sid=c&_method=DELETE&page=2",
    );
    let token = gate.token("usr_a", &["user"]);
    req = req.with_header("authorization", &format!("Bearer {token}"));
    for name in [
        "cookie",
        "api-key",
        "cockpit-token",
        "x-api-key",
        "x-foo",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x_method_override",
        "proxy",
        "proxy-authorization",
        "proxy-foo",
        "x-original-url",
        "x-rewrite-url",
        "keep-alive",
        "te",
        "upgrade",
    ] {
        req = req.with_header(name, "client-value");
    }
    let (status, _, seen, _) = gate.send(req.with_header("x-kept", "1"));
    assert_eq!(status, 200);
    let seen = seen.expect("forwarded");
    assert_eq!(seen.url, "https://cms.example/api/items?page=2");
    let names: Vec<&str> = seen.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"x-kept"));
    assert!(
        !seen
            .headers
            .iter()
            .any(|(_, v)| v == "client-value" || v.contains(&token)),
        "forwarded: {names:?}"
    );
}

#[test]
fn a_read_with_a_body_goes_upstream_without_it() {
    let gate = Gate::new();
    for method in ["GET", "HEAD"] {
        let mut req = Request::new(method, "/cms/content/items/posts")
            .with_header("content-type", "text/plain")
            .with_header("content-length", "5")
            .with_header("transfer-encoding", "chunked");
        req.body = b"hello".to_vec();
        let (status, _, seen, _) = gate.send(req);
        assert_eq!(status, 200, "{method}");
        let seen = seen.unwrap();
        assert_eq!(seen.body, None);
        assert_eq!(
            header(&seen.headers, "content-digest"),
            Some(gatehouse::domain::proxy::sign::content_digest(b"").as_str())
        );
        for gone in ["content-length", "transfer-encoding"] {
            assert_eq!(header(&seen.headers, gone), None, "{gone}");
        }
    }
}

#[test]
fn answers_vary_on_authorization() {
    assert_eq!(
        gatehouse::domain::proxy::filter_response(
            &config_with(&routes())
                .unwrap()
                .proxy
                .routes
                .iter()
                .next()
                .unwrap()
                .clone(),
            false,
            vec![
                ("vary".into(), "Accept-Encoding".into()),
                ("vary".into(), "Accept".into())
            ],
        )
        .into_iter()
        .filter(|(n, _)| n == "vary")
        .collect::<Vec<_>>(),
        vec![(
            "vary".to_string(),
            "Accept-Encoding, Accept, Authorization".to_string()
        )]
    );
    let gate = Gate::new();
    let (_, headers, _, _) = gate.send(Request::new("GET", "/cms/content/items/posts"));
    assert_eq!(header(&headers, "vary"), Some("Authorization"));
    let config = config_with(&routes()).unwrap();
    let route = config.proxy.routes.iter().next().unwrap();
    for already in ["*", "authorization", "Origin, Authorization"] {
        let out = gatehouse::domain::proxy::filter_response(
            route,
            false,
            vec![("vary".into(), already.into())],
        );
        assert_eq!(out, vec![("vary".to_string(), already.to_string())]);
    }
}

#[test]
fn debug_output_shows_no_credential() {
    let gate = Gate::new();
    let user = gate.token("usr_a", &["user"]);
    let req = Request::new("POST", "/cms/content/item/posts?api_key=client-query-key")
        .with_header("authorization", &format!("Bearer {user}"))
        .with_header("cookie", "gatehouse_refresh=client-cookie")
        .with_json(&json!({ "data": { "title": "client-body" } }));
    let debug = format!("{req:?}");
    for secret in [
        user.as_str(),
        "client-query-key",
        "client-cookie",
        "client-body",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("authorization") && debug.contains("/cms/content/item/posts"));
    let (_, _, seen, _) = gate.send(req);
    let seen = seen.unwrap();
    assert_eq!(header(&seen.headers, "api-key"), Some("write-key-value"));
    let debug = format!("{seen:?}");
    for secret in ["write-key-value", "client-body", "usr_a", SECRET] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    // An injected query parameter is hidden with the rest of the query.
    let gate = Gate::with_routes(
        &json!({ "q": { "prefix": "/q/", "upstream": "https://q.example/",
            "inject": { "query": "api_key" }, "forward_all": true,
            "read": { "roles": ["anonymous"], "secret": "CMS_READ_KEY" } } })
        .to_string(),
    );
    let (_, _, seen, _) = gate.send(Request::new("GET", "/q/items?page=2"));
    let seen = seen.unwrap();
    assert!(seen.url.contains("read-key-value"));
    assert!(!format!("{seen:?}").contains("read-key-value"));
}

#[test]
fn a_route_body_limit_is_capped() {
    let route = |limit: u64| {
        json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "max_body_bytes": limit,
            "forward_all": true, "read": { "roles": ["anonymous"] } } })
        .to_string()
    };
    assert!(config_with(&route(16 * 1024 * 1024)).is_ok());
    let err = config_with(&route(16 * 1024 * 1024 + 1)).unwrap_err();
    assert!(
        err.reason.contains("route \"cms\": max_body_bytes"),
        "{}",
        err.reason
    );
}

#[test]
fn a_method_override_in_a_write_body_is_refused() {
    // No owner field: bodies of any media type go upstream, but never with a `_method`.
    let gate = Gate::with_routes(
        &json!({
            "w": {
                "prefix": "/w/",
                "upstream": "https://w.example/",
                "forward_all": true,
                "write": { "roles": ["anonymous"] }
            }
        })
        .to_string(),
    );
    let refused: &[(&str, &[u8])] = &[
        ("application/json", br#"{"_method":"DELETE","title":"t"}"#),
        ("application/json", br#"{"\u005fmethod":"DELETE"}"#),
        ("application/vnd.api+json", br#"{"_METHOD":"DELETE"}"#),
        (
            "application/x-www-form-urlencoded",
            b"title=t&_method=DELETE",
        ),
        (
            "application/x-www-form-urlencoded",
            b"title=t&%5Fmethod=DELETE",
        ),
        (
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n",
        ),
    ];
    for (media, body) in refused {
        let mut req = Request::new("POST", "/w/items").with_header("content-type", media);
        req.body = body.to_vec();
        let (status, _, seen, answer) = gate.send(req);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{media}: {}",
            String::from_utf8_lossy(body)
        );
        assert!(seen.is_none(), "{media} went upstream");
    }
    let allowed: &[(&str, &[u8])] = &[
        (
            "application/json",
            br#"{"data":{"_method":"nested is data"}}"#,
        ),
        ("application/json", b"not json at all"),
        (
            "application/x-www-form-urlencoded",
            b"title=_method&method=x",
        ),
        ("text/plain", b"_method=DELETE"),
    ];
    for (media, body) in allowed {
        let mut req = Request::new("POST", "/w/items").with_header("content-type", media);
        req.body = body.to_vec();
        let (status, _, seen, _) = gate.send(req);
        assert_eq!(status, 200, "{media}: {}", String::from_utf8_lossy(body));
        assert_eq!(seen.unwrap().body.as_deref(), Some(*body));
    }
}

/// The `ROUTES` value of a recipe in docs/proxy.md (the TOML block after `<!-- recipe: name -->`),
/// as wrangler would bind it.
fn recipe(name: &str) -> String {
    let doc = include_str!("../docs/proxy.md");
    let marker = format!("<!-- recipe: {name} -->\n```toml\n");
    let start = doc.find(&marker).expect("recipe in docs/proxy.md") + marker.len();
    let end = start + doc[start..].find("```").unwrap();
    let parsed: toml::Table = toml::from_str(&doc[start..end]).expect("recipe is TOML");
    let routes = &parsed["vars"]["ROUTES"];
    serde_json::to_value(routes).unwrap().to_string()
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// Sends `req` and asserts it was refused with `status`/`code` and reached nothing upstream.
fn refused(gate: &Gate, req: Request, status: u16, expected: &str) -> String {
    let before = gate.upstream.seen.borrow().len();
    let (s, _, _, body) = gate.send(req);
    assert_eq!((s, code(&body)), (status, Some(expected)), "{body}");
    assert_eq!(
        gate.upstream.seen.borrow().len(),
        before,
        "a refused request went upstream"
    );
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn bearer(req: Request, token: &str) -> Request {
    req.with_header("authorization", &format!("Bearer {token}"))
}

#[test]
fn cockpit_recipe_reads_only_listed_endpoints_and_harmless_queries() {
    let gate = Gate::with_routes(&recipe("cockpit"));
    let (status, _, seen, _) = gate.send(Request::new(
        "GET",
        "/cms/content/items/posts?limit=5&skip=0&sort=%7B%22_created%22%3A-1%7D&filter=%7B%22author%22%3A%22usr_a%22%7D",
    ));
    assert_eq!(status, 200);
    let seen = seen.unwrap();
    assert!(seen
        .url
        .starts_with("https://cms.example.com/api/content/items/posts?limit=5&skip=0"));
    assert_eq!(header(&seen.headers, "api-key"), Some("read-key-value"));
    let (status, _, _, _) = gate.send(Request::new("HEAD", "/cms/content/item/comments/65f1c2"));
    assert_eq!(status, 200);

    for path in [
        "/cms/content/aggregate/posts?pipeline=%5B%7B%22%24out%22%3A%22collections_posts%22%7D%5D",
        "/cms/content/items/secrets",
        "/cms/content/items/posts/extra",
        "/cms/gql",
        "/cms/system/users",
        "/cms/",
    ] {
        refused(&gate, Request::new("GET", path), 404, "not_found");
    }
    for query in [
        "pipeline=%5B%5D",
        "populate=1",
        "filter=%7B%22%24where%22%3A%22sleep(1)%22%7D",
        "filter=%7B%22title%22%3A%7B%22%24func%22%3A%22x%22%7D%7D",
        "filter=%7B%22a%22%3A1%2C%22a%22%3A2%7D",
        "filter=%7Bnot+json",
        "filter[%24where]=x",
        "filter[title]=x",
        "limit=ten",
        "limit[]=1",
        "api_key=x",
        "api_key%00x=1",
        "api[key=1",
        "access[token=1",
        "API.KEY=1",
        "%20api_key=1",
        "token=1",
        "limit%00=1",
        "li%0Amit=1",
        "=1",
    ] {
        let msg = refused(
            &gate,
            Request::new("GET", &format!("/cms/content/items/posts?{query}")),
            400,
            "query_not_allowed",
        );
        assert!(msg.contains("query parameter"), "{query}: {msg}");
    }
    let msg = refused(
        &gate,
        Request::new("GET", "/cms/content/items/posts?pipeline=%5B%5D"),
        400,
        "query_not_allowed",
    );
    assert!(
        msg.contains("\"pipeline\"") && msg.contains("allowed: fields, filter, limit, skip, sort"),
        "{msg}"
    );

    // Methods are compared as sent: nothing unlisted becomes a GET.
    for method in ["SEARCH", "PROPFIND", "OPTIONS", "PUT", "DELETE", "PATCH"] {
        let before = gate.upstream.seen.borrow().len();
        let (status, headers, _, body) =
            gate.send(Request::new(method, "/cms/content/items/posts"));
        assert_eq!(
            (status, code(&body)),
            (405, Some("method_not_allowed")),
            "{method}"
        );
        assert_eq!(header(&headers, "allow"), Some("GET, HEAD"), "{method}");
        assert_eq!(gate.upstream.seen.borrow().len(), before);
    }
    let (_, headers, _, _) = gate.send(Request::new("PUT", "/cms/content/item/posts"));
    assert_eq!(header(&headers, "allow"), Some("POST"));
}

#[test]
fn cockpit_recipe_creates_owned_items_and_refuses_everything_else_in_the_body() {
    let gate = Gate::with_routes(&recipe("cockpit"));
    let user = gate.token("usr_a", &["user"]);
    let post = |body: Value| {
        bearer(Request::new("POST", "/cms/content/item/posts"), &user).with_json(&body)
    };
    let (status, _, seen, _) = gate.send(post(json!({
        "data": { "title": "t", "body": "b", "tags": ["x", {"deep": 1}], "author": "usr_evil" }
    })));
    assert_eq!(status, 200);
    let seen = seen.unwrap();
    assert_eq!(header(&seen.headers, "api-key"), Some("write-key-value"));
    let sent: Value = serde_json::from_slice(seen.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({ "data": { "title": "t", "body": "b", "tags": ["x", {"deep": 1}], "author": "usr_a" } })
    );
    // The owner is set even when the client leaves it out.
    let (_, _, seen, _) = gate.send(post(json!({ "data": { "title": "t" } })));
    let sent: Value = serde_json::from_slice(seen.unwrap().body.as_ref().unwrap()).unwrap();
    assert_eq!(sent["data"]["author"], "usr_a");

    for (body, named) in [
        (
            json!({ "data": { "title": "t", "_state": 0 } }),
            "data._state",
        ),
        (
            json!({ "data": { "title": "t", "_by": "usr_evil" } }),
            "data._by",
        ),
        (
            json!({ "data": { "title": "t" }, "data._by": "usr_evil" }),
            "data._by",
        ),
        (
            json!({ "data.author": "usr_evil", "data": { "title": "t" } }),
            "data.author",
        ),
        (
            json!({ "data": { "title": "t" }, "api_key": "k" }),
            "api_key",
        ),
        (
            json!({ "data": { "title": "t", "tags": [{ "access_token": "k" }] } }),
            "access_token",
        ),
        (
            json!({ "data": { "title": "t", "Api.Key": "k" } }),
            "Api.Key",
        ),
        (
            json!({ "data": { "title": "t" }, "_method": "DELETE" }),
            "_method",
        ),
        (
            json!({ "data": { "title": "t", "_cby": "usr_evil" } }),
            "data._cby",
        ),
        (json!({ "data": "a string" }), "data"),
        (
            json!({ "data": { "title": "t" }, "model": "pages" }),
            "model",
        ),
        (json!(["data"]), "JSON object"),
    ] {
        let msg = refused(&gate, post(body.clone()), 400, "body_not_allowed");
        assert!(msg.contains(named), "{body}: {msg}");
    }
    let mut dup = post(json!({}));
    dup.body = br#"{"data":{"title":"a","author":"usr_a","author":"usr_evil"}}"#.to_vec();
    let msg = refused(&gate, dup, 400, "body_not_allowed");
    assert!(msg.contains("author"), "{msg}");
    let mut text = bearer(Request::new("POST", "/cms/content/item/posts"), &user)
        .with_header("content-type", "text/plain");
    text.body = b"{\"data\":{\"title\":\"t\"}}".to_vec();
    refused(&gate, text, 415, "unsupported_media_type");
    let mut bad = post(json!({}));
    bad.body = b"{\"data\":".to_vec();
    refused(&gate, bad, 400, "invalid_json");
    refused(
        &gate,
        Request::new("POST", "/cms/content/item/posts")
            .with_json(&json!({ "data": { "title": "t" } })),
        401,
        "no_auth",
    );
    refused(
        &gate,
        bearer(Request::new("POST", "/cms/content/item/pages"), &user)
            .with_json(&json!({ "data": { "title": "t" } })),
        404,
        "not_found",
    );
    refused(
        &gate,
        bearer(Request::new("POST", "/cms/gql"), &user)
            .with_json(&json!({ "query": "mutation { saveContentItem(model: \"posts\", data: {_state: 0}) { _id } }" })),
        404,
        "not_found",
    );
}

#[test]
fn cockpit_recipe_updates_only_the_callers_own_items() {
    let gate = Gate::with_routes(&recipe("cockpit"));
    let alice = gate.token("usr_a", &["user"]);
    let lookup = |id: &str| format!("https://cms.example.com/api/content/item/posts/{id}");
    gate.upstream.borrow_stored().push((
        lookup("mine1"),
        200,
        json!({ "_id": "mine1", "author": "usr_a", "title": "old" }),
    ));
    gate.upstream.borrow_stored().push((
        lookup("theirs1"),
        200,
        json!({ "_id": "theirs1", "author": "usr_b" }),
    ));
    gate.upstream.borrow_stored().push((
        lookup("orphan1"),
        200,
        json!({ "_id": "orphan1", "author": null }),
    ));
    gate.upstream.borrow_stored().push((
        lookup("gone1"),
        404,
        json!({ "error": "Item not found" }),
    ));
    let save = |body: Value| {
        bearer(Request::new("POST", "/cms/content/item/posts"), &alice).with_json(&body)
    };

    // Someone else's item: only the lookup reached the CMS, with the write key.
    let before = gate.upstream.seen.borrow().len();
    let (status, _, _, body) = gate.send(save(
        json!({ "data": { "_id": "theirs1", "title": "mine now" } }),
    ));
    assert_eq!((status, code(&body)), (403, Some("not_owner")));
    let seen = gate.upstream.seen.borrow()[before..].to_vec();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].url.as_str()),
        ("GET", lookup("theirs1").as_str())
    );
    assert_eq!(header(&seen[0].headers, "api-key"), Some("read-key-value"));
    assert_eq!(header(&seen[0].headers, "x-gatehouse-user"), Some("usr_a"));
    assert!(seen[0].body.is_none());

    for (id, status, expected) in [("orphan1", 403, "not_owner"), ("gone1", 404, "not_found")] {
        let (s, _, _, body) = gate.send(save(json!({ "data": { "_id": id, "title": "x" } })));
        assert_eq!((s, code(&body)), (status, Some(expected)), "{id}");
    }
    for bad_id in [
        json!("../x"),
        json!({ "$ne": null }),
        json!(true),
        json!("a b"),
    ] {
        let (s, _, _, body) = gate.send(save(json!({ "data": { "_id": bad_id, "title": "x" } })));
        assert_eq!(
            (s, code(&body)),
            (400, Some("body_not_allowed")),
            "{bad_id}"
        );
    }

    // Her own item: looked up, then saved with the owner kept.
    let before = gate.upstream.seen.borrow().len();
    let (status, _, _, _) = gate.send(save(
        json!({ "data": { "_id": "mine1", "title": "new", "author": "usr_b" } }),
    ));
    assert_eq!(status, 200);
    let seen = gate.upstream.seen.borrow()[before..].to_vec();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "POST");
    let sent: Value = serde_json::from_slice(seen[1].body.as_ref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({ "data": { "_id": "mine1", "title": "new", "author": "usr_a" } })
    );
    // Unpublishing is not a field, even on one's own item.
    refused(
        &gate,
        save(json!({ "data": { "_id": "mine1", "_state": 0 } })),
        400,
        "body_not_allowed",
    );
}

#[test]
fn moderated_recipe_lands_drafts_and_lets_editors_publish() {
    let gate = Gate::with_routes(&recipe("cockpit-moderated"));
    let user = gate.token("usr_a", &["user"]);
    let editor = gate.token("usr_e", &["user", "editor"]);
    let save = |t: &str, body: Value| {
        bearer(Request::new("POST", "/cms/content/item/posts"), t).with_json(&body)
    };
    let (_, _, seen, _) = gate.send(save(&user, json!({ "data": { "title": "t" } })));
    let sent: Value = serde_json::from_slice(seen.unwrap().body.as_ref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({ "data": { "title": "t", "_state": 0, "author": "usr_a" } })
    );
    // Naming an item is for the editors' update only.
    refused(
        &gate,
        save(&user, json!({ "data": { "_id": "x1", "_state": 1 } })),
        403,
        "insufficient_role",
    );
    // An editor publishes any post with the editor key; only _state goes through.
    let (status, _, seen, _) = gate.send(save(
        &editor,
        json!({ "data": { "_id": "x1", "_state": 1 } }),
    ));
    assert_eq!(status, 200);
    let seen = seen.unwrap();
    assert_eq!(header(&seen.headers, "api-key"), Some("editor-key-value"));
    refused(
        &gate,
        save(
            &editor,
            json!({ "data": { "_id": "x1", "title": "rewritten" } }),
        ),
        400,
        "body_not_allowed",
    );
    // Sending the forced _state is refused, not silently overwritten.
    refused(
        &gate,
        save(&user, json!({ "data": { "title": "t", "_state": 1 } })),
        400,
        "body_not_allowed",
    );
}

#[test]
fn directus_recipe_checks_the_stored_owner_before_a_patch() {
    let gate = Gate::with_routes(&recipe("directus"));
    let alice = gate.token("usr_a", &["user"]);
    let lookup =
        |id: &str| format!("https://directus.example.com/items/articles/{id}?fields=author");
    gate.upstream.borrow_stored().push((
        lookup("1"),
        200,
        json!({ "data": { "author": "usr_a" } }),
    ));
    gate.upstream.borrow_stored().push((
        lookup("2"),
        200,
        json!({ "data": { "author": "usr_b" } }),
    ));
    gate.upstream.borrow_stored().push((
        lookup("3"),
        403,
        json!({ "errors": [{ "message": "forbidden" }] }),
    ));
    gate.upstream
        .borrow_stored()
        .push((lookup("4"), 401, json!({ "errors": [] })));
    let patch = |id: &str, body: Value| {
        bearer(
            Request::new("PATCH", &format!("/directus/items/articles/{id}")),
            &alice,
        )
        .with_json(&body)
    };
    let (status, _, _, body) = gate.send(patch("2", json!({ "title": "x" })));
    assert_eq!((status, code(&body)), (403, Some("not_owner")));
    let (status, _, _, body) = gate.send(patch("3", json!({ "title": "x" })));
    assert_eq!((status, code(&body)), (404, Some("not_found")));
    let (status, _, _, body) = gate.send(patch("4", json!({ "title": "x" })));
    assert_eq!((status, code(&body)), (502, Some("upstream_unavailable")));
    refused(
        &gate,
        patch("1", json!({ "title": "x", "status": "draft" })),
        400,
        "body_not_allowed",
    );
    refused(
        &gate,
        patch("1", json!({ "title": "x", "id": 2 })),
        400,
        "body_not_allowed",
    );
    let (status, _, seen, _) = gate.send(patch("1", json!({ "title": "x", "author": "usr_b" })));
    assert_eq!(status, 200);
    let lookup_seen = seen.unwrap();
    assert_eq!(lookup_seen.url, lookup("1"));
    assert_eq!(lookup_seen.method, "GET");
    let forwarded = gate.upstream.seen.borrow().last().cloned().unwrap();
    assert_eq!(
        forwarded.url,
        "https://directus.example.com/items/articles/1"
    );
    assert_eq!(
        header(&forwarded.headers, "authorization"),
        Some("Bearer directus-write-value")
    );
    let sent: Value = serde_json::from_slice(forwarded.body.as_ref().unwrap()).unwrap();
    assert_eq!(sent, json!({ "title": "x", "author": "usr_a" }));

    let (_, _, seen, _) = gate.send(
        bearer(Request::new("POST", "/directus/items/articles"), &alice)
            .with_json(&json!({ "title": "t", "author": "usr_b" })),
    );
    let sent: Value = serde_json::from_slice(seen.unwrap().body.as_ref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({ "title": "t", "status": "published", "author": "usr_a" })
    );
    for (method, path) in [
        ("POST", "/directus/graphql"),
        ("GET", "/directus/users/me"),
        ("GET", "/directus/server/info"),
        ("GET", "/directus/items/directus_users"),
    ] {
        refused(
            &gate,
            bearer(Request::new(method, path), &alice).with_json(&json!({})),
            404,
            "not_found",
        );
    }
    // Bulk updates and deletes are not endpoints of the recipe.
    for (method, path) in [
        ("PATCH", "/directus/items/articles"),
        ("DELETE", "/directus/items/articles/1"),
    ] {
        refused(
            &gate,
            bearer(Request::new(method, path), &alice),
            405,
            "method_not_allowed",
        );
    }
    for query in [
        "access_token=x",
        "deep=%7B%7D",
        "aggregate[count]=*",
        "filter=%7B%22a%22%3A1%2C%22a%22%3A2%7D",
    ] {
        refused(
            &gate,
            Request::new("GET", &format!("/directus/items/articles?{query}")),
            400,
            "query_not_allowed",
        );
    }
    let (status, _, seen, _) = gate.send(Request::new(
        "GET",
        "/directus/items/articles?filter[status][_eq]=published&fields=*&sort=-id",
    ));
    assert_eq!(
        status, 400,
        "a json filter must be sent as JSON, not in bracket form"
    );
    assert!(seen.is_none());
    let (status, _, seen, _) = gate.send(Request::new(
        "GET",
        "/directus/items/articles?filter=%7B%22status%22%3A%7B%22_eq%22%3A%22published%22%7D%7D&fields=*&sort=-id",
    ));
    assert_eq!(status, 200);
    assert_eq!(
        header(&seen.unwrap().headers, "authorization"),
        Some("Bearer directus-read-value")
    );
}

#[test]
fn endpoint_config_errors_name_the_route_and_endpoint() {
    let base = |endpoint: Value| {
        json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/",
            "inject": { "header": "api-key" },
            "read": { "roles": ["anonymous"], "secret": "CMS_READ_KEY" },
            "endpoints": [endpoint] } })
    };
    let cases = [
        (
            json!({ "method": "POST", "path": "gql", "action": "forward", "owner": "data.author", "roles": ["user"] }),
            "endpoints[0] (POST gql).owner",
        ),
        (
            json!({ "method": "POST", "path": "api/graphql", "action": "create", "fields": ["query"], "roles": ["user"] }),
            "GraphQL",
        ),
        (
            json!({ "method": "PATCH", "path": "items/{c}/{id}", "action": "update", "id": "{id}", "fields": ["title"], "owner": "author", "roles": ["user"] }),
            "must check the stored owner",
        ),
        (
            json!({ "method": "PATCH", "path": "items/{c}/{id}", "action": "update", "id": "{id}", "fields": ["title"], "lookup": { "path": "items/{c}/{id}", "owner": "data.author" }, "roles": ["user"] }),
            "must also set the owner",
        ),
        (
            json!({ "method": "PATCH", "path": "items/{c}/{id}", "action": "update", "id": "{id}", "fields": ["title"], "owner": "author", "lookup": { "path": "items/{c}/{id}", "owner": "data.author" }, "roles": ["anonymous"] }),
            "cannot admit anonymous",
        ),
        (
            json!({ "method": "POST", "path": "items/{c}", "action": "create", "fields": ["title", "_id"], "roles": ["user"] }),
            "never takes an item id",
        ),
        (
            json!({ "method": "POST", "path": "items/{c}", "action": "create", "fields": ["title", "api_key"], "roles": ["user"] }),
            "credential",
        ),
        (
            json!({ "method": "GET", "path": "items", "query": ["access_token"] }),
            "never forwarded",
        ),
        (
            json!({ "method": "POST", "path": "items", "roles": ["user"] }),
            "action: required",
        ),
        (
            json!({ "method": ["GET", "POST"], "path": "items", "roles": ["user"] }),
            "separate endpoints",
        ),
        (
            json!({ "method": "SEARCH", "path": "items" }),
            "\"SEARCH\": one of",
        ),
        (json!({ "method": "GET", "path": "/items" }), "leading /"),
        (
            json!({ "method": "GET", "path": "items/{a b}" }),
            "named segment",
        ),
        (
            json!({ "method": "GET", "path": "items/{c}", "values": { "d": ["x"] } }),
            "values.d: no such",
        ),
        (
            json!({ "method": "POST", "path": "items", "action": "create", "roles": ["user"] }),
            "fields: required",
        ),
        (
            json!({ "method": "DELETE", "path": "items/{id}", "action": "delete", "id": "{id}", "lookup": { "path": "elsewhere", "owner": "a" }, "roles": ["user"] }),
            "uses no {id}",
        ),
        (
            json!({ "method": "DELETE", "path": "items/{c}", "action": "delete", "id": "{c}", "lookup": { "path": "items/{c}/..", "owner": "a" }, "roles": ["user"] }),
            "holding {id}",
        ),
        (
            json!({ "method": "POST", "path": "items", "action": "create", "fields": ["data"], "owner": "data.author", "roles": ["user"] }),
            "inside the allowed data",
        ),
        (
            json!({ "method": "POST", "path": "items", "action": "create", "fields": ["a"], "deny": ["a"], "roles": ["user"] }),
            "also allowed",
        ),
        (
            json!({ "method": "GET", "path": "items", "query": { "filter": "regex" } }),
            "expected \"any\"",
        ),
        (
            json!({ "method": "GET", "path": "items", "color": 1 }),
            "endpoints[0].color: unknown field",
        ),
        (
            json!({ "method": "PUT", "path": "items" , "action": "create", "fields": ["a"] }),
            "no rule for PUT",
        ),
    ];
    for (endpoint, expected) in cases {
        let routes = base(endpoint.clone()).to_string();
        let err = config_with(&routes).expect_err(&routes);
        assert!(
            err.reason.contains("route \"cms\": endpoints[0]") && err.reason.contains(expected),
            "{expected:?} not in {:?}",
            err.reason
        );
    }
    let both = json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/", "forward_all": true,
        "read": { "roles": ["anonymous"] }, "endpoints": [{ "method": "GET", "path": "x" }] } });
    let err = config_with(&both.to_string()).unwrap_err();
    assert!(err.reason.contains("forward_all"), "{}", err.reason);
    for name in ["cockpit", "cockpit-moderated", "directus"] {
        let config = config_with(&recipe(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let debug = format!("{:?}", config.proxy.routes);
        assert!(!debug.contains("-value"), "a secret in Debug");
    }
}

// Regression tests from an independent review of the endpoint policy: each was a way around
// it before its fix.

fn sent_json(req: &UpstreamRequest) -> Value {
    serde_json::from_slice(req.body.as_ref().expect("a body")).expect("JSON")
}

fn route_with(endpoints: Value) -> String {
    json!({ "cms": { "prefix": "/cms/", "upstream": "https://cms.example.com/api/",
        "inject": { "header": "api-key", "value": "{secret}" },
        "endpoints": endpoints } })
    .to_string()
}

// Review finding 1 (medium, documented recipe `cockpit-moderated`): an update endpoint without an owner
// lookup never validates its `id`, so `data._id` reaches Cockpit as any JSON value. Cockpit
// takes `_id` as a MongoLite criterion: `{"$ne": ""}` or `true` matches every item, so one
// editor request unpublishes (or publishes) every post, and `$regex`/other operators reach
// MongoLite. The docs say the id "must be a plain string" for exactly this reason, but that
// check only runs when there is a lookup.
// Fix: validate the id (plain token, string) for every update/delete that names an `id`, not
// only owner-checked ones (call `Endpoint::item_id` whenever `ItemRef::id` is set), and forward
// the validated string.
#[test]
fn an_update_without_owner_check_still_refuses_an_operator_as_its_item_id() {
    let gate = Gate::with_routes(&recipe("cockpit-moderated"));
    let editor = gate.token("usr_e", &["editor"]);
    for id in [
        json!({ "$ne": "" }),
        json!(true),
        json!({ "$regex": ".*" }),
        json!([1, 2]),
    ] {
        let req = bearer(Request::new("POST", "/cms/content/item/posts"), &editor)
            .with_json(&json!({ "data": { "_id": id, "_state": 0 } }));
        refused(&gate, req, 400, "body_not_allowed");
    }
}

// Review finding 2 (medium, documented recipes `cockpit` / `cockpit-moderated`): client header names
// are normalized only for `_` (`api_key` = `api-key`), but PHP (its built-in server, and
// FPM/CGI via php_register_variable) also turns `.` into `_` in `$_SERVER` names. Verified
// with PHP 8.2 `php -S`: `Api.Key: smuggled` arrives as `$_SERVER['HTTP_API_KEY']`, and when
// both `api-key` and `api.key` are sent the later one wins. Gatehouse forwards `api.key`,
// `cockpit.token`, `x.forwarded.for`, `x.forwarded.host`, `x.http.method.override`,
// `x.original.url`, `x.gatehouse.user` untouched: a credential that competes with the injected
// key (wire order decides), spoofed forwarding headers, and method/URL overrides for PHP apps.
// Fix: drop every client header whose name has a character outside [A-Za-z0-9-] (as nginx and
// Apache do before CGI), or normalize `.`/`_` both to `-` before every strip-list comparison.
#[test]
fn header_names_php_would_read_as_stripped_ones_never_go_upstream() {
    let gate = Gate::with_routes(&recipe("cockpit"));
    let (status, _, seen, _) = gate.send(
        Request::new("GET", "/cms/content/items/posts")
            .with_header("api.key", "smuggled")
            .with_header("cockpit.token", "smuggled")
            .with_header("x.forwarded.for", "10.0.0.1")
            .with_header("x.forwarded.host", "evil.example")
            .with_header("x.http.method.override", "DELETE")
            .with_header("x.original.url", "/api/content/aggregate/posts")
            .with_header("x.gatehouse.user", "usr_victim"),
    );
    assert_eq!(status, 200);
    let seen = seen.unwrap();
    let leaked: Vec<&str> = seen
        .headers
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.contains('.'))
        .collect();
    assert!(
        leaked.is_empty(),
        "forwarded to a PHP CMS as HTTP_*: {leaked:?}"
    );
}

// Review finding 3 (medium, config validation): "an update that sets the owner must check the stored
// owner first" is enforced for `owner = …` only. The same binding written as
// `force = { author = "{user}" }` is accepted on an update with no lookup, so any signed-in user
// re-owns anyone's item: `PATCH /cms/items/articles/victim {"title":"x"}` is forwarded with
// `author = usr_a`.
// Fix: treat a forced `"{user}"` like `owner` in `check_owner_rules` (or refuse `{user}` in
// `force` and require `owner`).
#[test]
fn forced_user_on_an_update_without_lookup_is_refused() {
    let routes = route_with(
        json!([{ "method": "PATCH", "path": "items/{c}/{id}", "action": "update",
        "id": "{id}", "fields": ["title"], "force": { "author": "{user}" },
        "roles": ["user"], "secret": "CMS_WRITE_KEY" }]),
    );
    let accepted = config_with(&routes).is_ok();
    if accepted {
        let gate = Gate::with_routes(&routes);
        let alice = gate.token("usr_a", &["user"]);
        let (_, _, seen, _) = gate.send(
            bearer(Request::new("PATCH", "/cms/items/articles/victim"), &alice)
                .with_json(&json!({ "title": "x" })),
        );
        eprintln!("forwarded: {:?}", seen.as_ref().map(sent_json));
    }
    assert!(
        !accepted,
        "the config is accepted and hands other users' items to the caller"
    );
}

// Review finding 4 (medium, config validation + body policy): `deny`, the create-never-names-an-item
// rule and the owner path are only checked down to the first member listed in `fields`; below
// an allowed member any value goes through. With `fields = ["data"]`, `deny = ["data._state",
// "data._id"]` (accepted: deny is only compared for equality with fields), a create forwards
// `{"data":{"_id":"victim","_state":0,…}}`: on Cockpit that is an update (takeover, since the
// owner is forced) and an unpublish. The docs promise "a denied member refuses the request" and
// "a create never names an item".
// Fix: refuse at config time a `deny`/`owner`/`force`/id path that lies below a `fields` entry
// (or apply deny at any depth at run time), and on a create refuse `_id`/`id` members under an
// allowed object.
#[test]
fn deny_and_create_id_rules_hold_below_an_allowed_parent() {
    let routes = route_with(
        json!([{ "method": "POST", "path": "content/item/posts", "action": "create",
        "fields": ["data"], "deny": ["data._state", "data._id"], "owner": "data.author",
        "roles": ["user"], "secret": "CMS_WRITE_KEY" }]),
    );
    let Ok(_) = config_with(&routes) else {
        return; // refusing the config is a fix too
    };
    let gate = Gate::with_routes(&routes);
    let alice = gate.token("usr_a", &["user"]);
    refused(
        &gate,
        bearer(Request::new("POST", "/cms/content/item/posts"), &alice)
            .with_json(&json!({ "data": { "_id": "victim", "_state": 0, "title": "x" } })),
        400,
        "body_not_allowed",
    );
}

// Review finding 5 (medium, config validation): an owner-checked update may take its id from the body
// while its path has an `{id}` segment (a one-character slip: `id = "id"` for `id = "{id}"`).
// The lookup's `{id}` is then the body's id and the write goes to the path's: Gatehouse checks
// the caller's own item and PATCHes the victim's (`PATCH /cms/items/articles/victim` with
// `{"id":"mine"}`: lookup `items/articles/mine`, write `items/articles/victim`).
// Similarly a lookup path need not use the endpoint's other segments: with
// `path = "items/{collection}/{id}"`, `collection = ["articles","comments"]` and
// `lookup.path = "items/articles/{id}"`, owning article 5 lets a user patch comment 5.
// Fix: refuse a body-path `id` when the endpoint path has a segment named `id`, and require the
// lookup path to use every named segment of the endpoint path.
#[test]
fn owner_lookup_must_read_the_item_that_is_written() {
    let body_id = route_with(
        json!([{ "method": "PATCH", "path": "items/{collection}/{id}",
        "values": { "collection": ["articles"] }, "action": "update", "id": "id",
        "fields": ["title"], "owner": "author",
        "lookup": { "path": "items/{collection}/{id}?fields=author", "owner": "data.author", "secret": "CMS_READ_KEY" },
        "roles": ["user"], "secret": "CMS_WRITE_KEY" }]),
    );
    if config_with(&body_id).is_ok() {
        let gate = Gate::with_routes(&body_id);
        let alice = gate.token("usr_a", &["user"]);
        let base = "https://cms.example.com/api/items/articles";
        gate.upstream.borrow_stored().push((
            format!("{base}/mine?fields=author"),
            200,
            json!({ "data": { "author": "usr_a" } }),
        ));
        gate.upstream.borrow_stored().push((
            format!("{base}/victim?fields=author"),
            200,
            json!({ "data": { "author": "usr_b" } }),
        ));
        let (status, _, _, _) = gate.send(
            bearer(Request::new("PATCH", "/cms/items/articles/victim"), &alice)
                .with_json(&json!({ "id": "mine", "title": "pwned" })),
        );
        let last = gate.upstream.seen.borrow().last().cloned().unwrap();
        assert!(
            !(status == 200 && last.method == "PATCH" && last.url == format!("{base}/victim")),
            "checked `mine`, wrote `victim`"
        );
    }
    let other_collection = route_with(
        json!([{ "method": "PATCH", "path": "items/{collection}/{id}",
        "values": { "collection": ["articles", "comments"] }, "action": "update", "id": "{id}",
        "fields": ["title"], "owner": "author",
        "lookup": { "path": "items/articles/{id}", "owner": "data.author", "secret": "CMS_READ_KEY" },
        "roles": ["user"], "secret": "CMS_WRITE_KEY" }]),
    );
    assert!(
        config_with(&other_collection).is_err(),
        "a lookup that ignores {{collection}} checks another item than the one written"
    );
}

// Review finding 6 (low, config validation): two checks meant to stop unsafe configs only look at
// literal text. (a) The GraphQL guard checks literal segments, so `path = "{ep}"` with
// `values = { ep = ["graphql"] }` takes a body policy and owner (which GraphQL bypasses).
// (b) A lookup path is checked with `check_remainder`, which allows `#`: `items/x#/{id}` is
// accepted, and fetch drops everything after `#`, so the lookup reads `items/x`, not the item.
// Fix: apply the GraphQL check to allowed segment values too; refuse `#` (and anything outside
// unreserved characters and `/`) in a lookup path.
#[test]
fn config_guards_see_through_segment_values_and_lookup_fragments() {
    let graphql = route_with(
        json!([{ "method": "POST", "path": "{ep}", "values": { "ep": ["graphql"] },
        "action": "create", "fields": ["query", "variables"], "owner": "variables.author",
        "roles": ["user"], "secret": "CMS_WRITE_KEY" }]),
    );
    let hash = route_with(
        json!([{ "method": "PATCH", "path": "items/{collection}/{id}",
        "values": { "collection": ["articles"] }, "action": "update", "id": "{id}",
        "fields": ["title"], "owner": "author",
        "lookup": { "path": "items/x#/{id}", "owner": "data.author", "secret": "CMS_READ_KEY" },
        "roles": ["user"], "secret": "CMS_WRITE_KEY" }]),
    );
    assert!(
        config_with(&graphql).is_err(),
        "GraphQL behind a named segment takes an owner"
    );
    assert!(
        config_with(&hash).is_err(),
        "a lookup path with # is accepted"
    );
}

#[test]
fn a_create_with_a_whole_object_allowed_still_never_names_an_item() {
    let routes = route_with(
        json!([{ "method": "POST", "path": "content/item/posts", "action": "create",
        "fields": ["data"], "roles": ["user"], "secret": "CMS_WRITE_KEY" },
        { "method": "GET", "path": "content/items/posts", "query": { "filter": "json" },
          "roles": ["anonymous"], "secret": "CMS_READ_KEY" }]),
    );
    let gate = Gate::with_routes(&routes);
    let alice = gate.token("usr_a", &["user"]);
    let post = |body: Value| {
        bearer(Request::new("POST", "/cms/content/item/posts"), &alice).with_json(&body)
    };
    for id in ["_id", "id"] {
        let msg = refused(
            &gate,
            post(json!({ "data": { id: "victim", "title": "x" } })),
            400,
            "body_not_allowed",
        );
        assert!(msg.contains(&format!("data.{id}")), "{msg}");
    }
    let (status, _, _, _) = gate.send(post(
        json!({ "data": { "title": "x", "meta": { "id": 1 } } }),
    ));
    assert_eq!(status, 200, "an id deeper inside the item is data");
    // A rewritten body cannot keep the encoding it came with.
    let encoded = post(json!({ "data": { "title": "x" } })).with_header("content-encoding", "br");
    refused(&gate, encoded, 415, "unsupported_media_type");
    // A JSON value that is not UTF-8 is refused (PHP's strict decoder would fail and Cockpit fall
    // back to a laxer parser Gatehouse never checked).
    refused(
        &gate,
        Request::new("GET", "/cms/content/items/posts?filter=%7B%22%FF%22%3A1%7D"),
        400,
        "query_not_allowed",
    );
}

/// A gate whose pages at `https://site.example` may read answers (CORS).
fn gate_with_origin() -> Gate {
    let routes = routes();
    let config = common::try_config(
        &[
            ("ROUTES", &routes),
            ("ALLOWED_ORIGINS", "https://site.example"),
        ],
        SECRETS,
    );
    Gate {
        config: config.expect("valid configuration"),
        store: MemoryStore::default(),
        upstream: Recorder::default(),
    }
}

/// The fast path's decision for `req` (no body) at `now`.
fn fast(gate: &Gate, req: &Request, now: i64) -> Fast {
    fast::try_forward(&gate.config, now, &SystemRng, req, false)
}

#[test]
fn the_fast_path_decides_exactly_as_the_usual_path() {
    let gate = gate_with_origin();
    let token = gate.token("usr_1", &["user"]);
    let bearer = |req: Request| req.with_header("authorization", &format!("Bearer {token}"));
    let reads = [
        Request::new("GET", "/cms/content/items/posts?page=2&api_key=x")
            .with_header("cookie", "a=b")
            .with_header("accept", "application/json")
            .with_header("origin", "https://site.example"),
        Request::new("HEAD", "/cms/content/items/posts"),
        bearer(Request::new("GET", "/cms/content/items/posts")),
    ];
    // The first sight of the token's user needs storage: the usual path, which reads it once.
    assert!(matches!(fast(&gate, &reads[2], NOW), Fast::Slow));
    gate.send(reads[2].clone());
    for req in reads {
        let Fast::Forward { route, decision } = fast(&gate, &req, NOW) else {
            panic!("{} {} took the usual path", req.method.as_str(), req.path);
        };
        let (status, headers, seen, _) = gate.send(req.clone());
        assert_eq!(status, 200);
        if req.header("origin").is_some() {
            assert!(header(&headers, "access-control-allow-origin").is_some());
        }
        assert!(
            decision.request == seen.expect("forwarded"),
            "the same upstream request"
        );
        assert_eq!(
            decision.authenticated,
            req.header("authorization").is_some()
        );
        // The answer's head: the recorder's answer, filtered as the usual path filters it.
        let upstream_head = vec![
            ("content-type".into(), "application/json".into()),
            ("set-cookie".into(), "cms=1".into()),
            ("server".into(), "nginx".into()),
            ("x-key-echo".into(), "read-key-value".into()),
            ("cache-control".into(), "public, max-age=60".into()),
        ];
        let head = fast::answer_head(
            &gate.config,
            route,
            decision.authenticated,
            req.header("origin"),
            200,
            upstream_head,
        )
        .unwrap();
        assert_eq!(head, headers);
    }
}

#[test]
fn the_fast_path_refuses_as_the_usual_path_and_leaves_the_rest_to_it() {
    let gate = gate_with_origin();
    let token = gate.token("usr_1", &["user"]);
    let bearer = |req: Request| req.with_header("authorization", &format!("Bearer {token}"));
    gate.send(bearer(Request::new("GET", "/cms/content/items/posts")));
    let ops = gate.store.operations();
    let site = |req: Request| req.with_header("origin", "https://site.example");
    // Refused from memory: the same answer as the usual path's, CORS included.
    let refused = [
        (
            bearer(Request::new("DELETE", "/cms/content/item/posts/1")),
            403,
        ),
        (
            Request::new("GET", "/cms/x").with_header("authorization", "Bearer not.a.token"),
            401,
        ),
        (Request::new("GET", "/cms/%2e%2e/admin"), 400),
    ];
    for (req, status) in refused {
        let req = site(req);
        let Fast::Refuse(fast) = fast(&gate, &req, NOW) else {
            panic!("{} {} was not refused", req.method.as_str(), req.path);
        };
        let before = gate.upstream.seen.borrow().len();
        let (slow_status, slow_headers, seen, slow_body) = gate.send(req);
        assert_eq!((fast.status, slow_status), (status, status));
        assert_eq!(fast.headers, slow_headers);
        assert!(header(&fast.headers, "access-control-allow-origin").is_some());
        assert_eq!(fast.json_body(), slow_body);
        assert!(seen.is_none() && gate.upstream.seen.borrow().len() == before);
    }
    // Not proxied, a preflight, a body sent or declared: the usual path.
    let slow = [
        Request::new("GET", "/auth/me"),
        Request::new("GET", "/nowhere"),
        Request::new("OPTIONS", "/cms/content/items/posts")
            .with_header("origin", "https://site.example")
            .with_header("access-control-request-method", "GET"),
        bearer(Request::new("GET", "/cms/content/items/posts")).with_header("content-length", "5"),
        bearer(Request::new("GET", "/cms/content/items/posts"))
            .with_header("transfer-encoding", "chunked"),
    ];
    for req in &slow {
        assert!(
            matches!(fast(&gate, req, NOW), Fast::Slow),
            "{} {}",
            req.method.as_str(),
            req.path
        );
    }
    let read = bearer(Request::new("GET", "/cms/content/items/posts"));
    assert!(matches!(
        fast::try_forward(&gate.config, NOW, &SystemRng, &read, true),
        Fast::Slow
    ));
    let empty = read.clone().with_header("content-length", "0");
    assert!(matches!(fast(&gate, &empty, NOW), Fast::Forward { .. }));
    // Once what the isolate knows of the caller is older than REVOCATION_DELAY_SECONDS, the
    // usual path reads it again.
    assert!(matches!(
        fast(&gate, &read, NOW + 10_000 - 1),
        Fast::Forward { .. }
    ));
    assert!(matches!(fast(&gate, &read, NOW + 10_000), Fast::Slow));
    assert_eq!(
        gate.store.operations(),
        ops,
        "the fast path touches no storage"
    );
}

#[test]
fn a_failed_fast_path_request_answers_like_the_usual_path() {
    let gate = gate_with_origin();
    let site = "https://site.example";
    let origin = Some(site);
    let route = gate.config.proxy.routes.position("/cms/down").unwrap().0;
    for (failure, url, code) in [
        (
            UpstreamFailure::Unreachable("connection refused".into()),
            "/cms/down",
            "upstream_unavailable",
        ),
        (UpstreamFailure::Timeout, "/cms/slow", "upstream_timeout"),
    ] {
        let fast = fast::failed(&gate.config, route, origin, failure);
        let (status, headers, _, body) =
            gate.send(Request::new("GET", url).with_header("origin", site));
        assert_eq!(fast.status, status);
        assert_eq!(fast.headers, headers);
        assert_eq!(fast.json_body(), body);
        assert_eq!(body["error"]["code"], code);
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            origin,
            "CORS as for every answer"
        );
    }
    let no_route = fast::failed(&gate.config, 99, None, UpstreamFailure::Timeout);
    assert_eq!(no_route.status, 500);
}
