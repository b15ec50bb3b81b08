//! The proxy through the portable core: `serve` with a recording upstream and a controllable
//! clock. The end-to-end suite repeats the important cases in workerd against a real server.

use std::cell::RefCell;

use futures::executor::block_on;
use serde_json::{json, Value};

use gatehouse::app::{serve, Outcome, Services};
use gatehouse::config::Config;
use gatehouse::encoding::b64url;
use gatehouse::http::Request;
use gatehouse::platform::{FixedClock, RustPbkdf2, SystemRng};
use gatehouse::proxy::{Upstream, UpstreamFailure, UpstreamRequest, UpstreamResponse};
use gatehouse::store::memory::MemoryStore;
use gatehouse::token::AccessClaims;

const NOW: i64 = 1_800_000_000_000;
const SECRET: &str = "an upstream signing secret of 32+ chars";

/// Records what it is sent; answers by path like a tiny CMS.
#[derive(Default)]
struct Recorder {
    seen: RefCell<Vec<UpstreamRequest>>,
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
}

fn routes() -> String {
    json!({
        "cms": {
            "prefix": "/cms/",
            "upstream": "https://cms.example/api/",
            "inject": { "header": "api-key", "value": "{secret}" },
            "owner_field": "data._by",
            "max_body_bytes": 200,
            "read": { "roles": ["anonymous"], "secret": "CMS_READ_KEY" },
            "write": { "roles": ["user"], "secret": "CMS_WRITE_KEY" },
            "DELETE": { "roles": ["admin"], "secret": "CMS_WRITE_KEY" }
        }
    })
    .to_string()
}

fn config_with(routes: &str) -> Result<Config, gatehouse::config::ConfigError> {
    let seed = b64url(&[7; 32]);
    let routes = routes.to_string();
    let lookup = move |name: &str| -> Option<String> {
        match name {
            "JWT_SIGNING_KEY" => Some(seed.clone()),
            "ROUTES" => Some(routes.clone()),
            "UPSTREAM_SIGNING_SECRET" => Some(SECRET.into()),
            "CMS_READ_KEY" => Some("read-key-value".into()),
            "CMS_WRITE_KEY" => Some("write-key-value".into()),
            _ => None,
        }
    };
    Config::from_lookup(&lookup)
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

    fn token(&self, sub: &str, roles: &[&str]) -> String {
        let claims = AccessClaims {
            iss: "gatehouse".into(),
            aud: "gatehouse".into(),
            sub: sub.into(),
            jti: "j1".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            sid: None,
        };
        self.config.keys.sign(claims, NOW, 900).unwrap()
    }

    /// Status, headers (if proxied) and the last upstream request (if one was sent by this call).
    fn send(&self, req: Request) -> (u16, Vec<(String, String)>, Option<UpstreamRequest>, Value) {
        let clock = FixedClock(NOW);
        let svc = Services {
            config: &self.config,
            store: &self.store,
            hasher: &RustPbkdf2,
            clock: &clock,
            rng: &SystemRng,
        };
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
    assert_eq!(body["data"]["_by"], "usr_a");
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
    big.body = b"not json".to_vec();
    let (s, _, _, body) = gate.send(big);
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
}

#[test]
fn the_signature_covers_method_path_query_identity_and_body() {
    let gate = Gate::new();
    let user = gate.token("usr_a", &["user"]);
    let (_, _, seen, _) = gate.send(
        Request::new("POST", "/cms/content/item/posts?x=1")
            .with_header("authorization", &format!("Bearer {user}"))
            .with_json(&json!({ "data": { "title": "t" } })),
    );
    let seen = seen.unwrap();
    let input = header(&seen.headers, "signature-input").unwrap();
    assert!(input.starts_with(
        "gatehouse=(\"@method\" \"@path\" \"@query\" \"content-digest\" \"x-gatehouse-auth\" \
         \"x-gatehouse-roles\" \"x-gatehouse-user\");created=1800000000;"
    ));
    let digest = gatehouse::proxy::sign::content_digest(seen.body.as_ref().unwrap());
    assert_eq!(
        header(&seen.headers, "content-digest"),
        Some(digest.as_str())
    );
    // Recompute with the same inputs: equal; any change: different.
    let fields = [
        ("content-digest", digest.as_str()),
        ("x-gatehouse-auth", "access_token"),
        ("x-gatehouse-roles", "user"),
        ("x-gatehouse-user", "usr_a"),
    ];
    let signed = gatehouse::proxy::sign::Signed {
        method: "POST",
        path: "/api/content/item/posts",
        query: "x=1",
        fields: &fields,
        created: 1_800_000_000,
    };
    let (_, signature) = gatehouse::proxy::sign::sign(SECRET.as_bytes(), &signed);
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
            json!({ "cms": { "prefix": "/cms/", "upstream": "https://x/" } }),
            "no rules",
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
            json!({ "a": { "prefix": "/cms/", "upstream": "https://x/", "read": { "roles": ["anonymous"] } }, "b": { "prefix": "/cms/", "upstream": "https://y/", "read": { "roles": ["anonymous"] } } }),
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
    let debug = format!("{:?}", config_with(&routes()).unwrap().routes);
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
fn owner_binding_refuses_an_empty_write_and_strips_owner_rooted_query_parameters() {
    let gate = Gate::new();
    let user = gate.token("usr_a", &["user"]);
    let admin = gate.token("usr_b", &["user", "admin"]);
    let auth = |t: &str| format!("Bearer {t}");
    for method in ["POST", "PUT", "PATCH"] {
        let req = Request::new(method, "/cms/content/item/posts?data[_by]=usr_evil")
            .with_header("authorization", &auth(&user))
            .with_header("content-type", "application/json");
        let (status, _, seen, body) = gate.send(req);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{method}"
        );
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("data._by"));
        assert!(seen.is_none(), "{method} went upstream");
    }
    // A DELETE names its item in the path; no body is needed.
    let (status, _, seen, _) = gate.send(
        Request::new("DELETE", "/cms/content/item/posts/1")
            .with_header("authorization", &auth(&admin)),
    );
    assert_eq!(status, 200);
    assert!(seen.unwrap().body.is_none());

    let q = "data[_by]=usr_evil&data%5B_by%5D=usr_evil&data.title=x&%20data[x]=1&DATA[_by]=e&database=1&page=2";
    let (status, _, seen, _) = gate.send(
        Request::new("POST", &format!("/cms/content/item/posts?{q}"))
            .with_header("authorization", &auth(&user))
            .with_json(&json!({ "data": { "title": "t" } })),
    );
    assert_eq!(status, 200);
    assert_eq!(
        seen.unwrap().url,
        "https://cms.example/api/content/item/posts?database=1&page=2"
    );
    // Reads keep their filters on the owner field.
    let (_, _, seen, _) = gate.send(Request::new(
        "GET",
        "/cms/content/items/posts?data[_by]=usr_a",
    ));
    assert_eq!(
        seen.unwrap().url,
        "https://cms.example/api/content/items/posts?data[_by]=usr_a"
    );

    // A route whose owner field is top-level, open to anonymous writers: the field is null.
    let gate = Gate::with_routes(
        &json!({
            "d": {
                "prefix": "/d/",
                "upstream": "https://d.example/",
                "owner_field": "author",
                "write": { "roles": ["anonymous"] }
            }
        })
        .to_string(),
    );
    let (status, _, seen, _) = gate.send(
        Request::new(
            "POST",
            "/d/items/articles?author=usr_evil&Author%5B%5D=x&authors=1",
        )
        .with_json(&json!({ "title": "t", "author": "usr_evil" })),
    );
    assert_eq!(status, 200);
    let seen = seen.unwrap();
    assert_eq!(seen.url, "https://d.example/items/articles?authors=1");
    let body: Value = serde_json::from_slice(seen.body.as_ref().unwrap()).unwrap();
    assert_eq!(body, json!({ "title": "t", "author": null }));
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
            Some(gatehouse::proxy::sign::content_digest(b"").as_str())
        );
        for gone in ["content-length", "transfer-encoding"] {
            assert_eq!(header(&seen.headers, gone), None, "{gone}");
        }
    }
}

#[test]
fn answers_vary_on_authorization() {
    assert_eq!(
        gatehouse::proxy::filter_response(
            &config_with(&routes())
                .unwrap()
                .routes
                .iter()
                .next()
                .unwrap()
                .clone(),
            None,
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
    let route = config.routes.iter().next().unwrap();
    for already in ["*", "authorization", "Origin, Authorization"] {
        let out =
            gatehouse::proxy::filter_response(route, None, vec![("vary".into(), already.into())]);
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
            "inject": { "query": "api_key" },
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
            "read": { "roles": ["anonymous"] } } })
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
