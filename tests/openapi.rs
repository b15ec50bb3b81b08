//! docs/openapi.yaml against the code: docs/openapi.json (what the worker serves at
//! `/openapi.json`) is its current conversion, it has exactly the route table's endpoints, and
//! its `ErrorCode` enum is exactly the codes of the `Error` enum.
//!
//! After changing docs/openapi.yaml, write the conversion with
//! `GATEHOUSE_WRITE_OPENAPI_JSON=1 cargo test --test openapi`.

mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use gatehouse::domain::store::memory::MemoryStore;
use gatehouse::primitives::error::{ConfigError, Error, TokenRejection, WebAuthnRejection};
use gatehouse::primitives::http::Request;
use gatehouse::primitives::platform::FixedClock;
use gatehouse::routes::{handle, table};

const YAML: &str = "docs/openapi.yaml";
const JSON: &str = "docs/openapi.json";

/// A YAML document as read, mappings in their order (serde_json's maps would sort them).
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Uint(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut members: Vec<(String, Node)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Node>()? {
                    if members.iter().any(|(m, _)| *m == k) {
                        return Err(serde::de::Error::custom(format!("repeated key {k:?}")));
                    }
                    members.push((k, v));
                }
                Ok(Node::Map(members))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(n) => s.serialize_i64(*n),
            Node::Uint(n) => s.serialize_u64(*n),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(t) => s.serialize_str(t),
            Node::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Map(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// docs/openapi.yaml as compact JSON text (it is compiled into the worker), members in the
/// YAML's order.
fn converted() -> String {
    let yaml = std::fs::read_to_string(root().join(YAML)).unwrap();
    let node: Node = serde_saphyr::from_str(&yaml).expect("docs/openapi.yaml is YAML");
    let mut json = serde_json::to_string(&node).unwrap();
    json.push('\n');
    json
}

fn spec() -> Value {
    serde_json::from_str(&converted()).unwrap()
}

#[test]
fn the_served_json_is_the_current_conversion_of_the_yaml() {
    let want = converted();
    let path = root().join(JSON);
    if std::env::var_os("GATEHOUSE_WRITE_OPENAPI_JSON").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{JSON} is not the conversion of {YAML}: run GATEHOUSE_WRITE_OPENAPI_JSON=1 cargo test --test openapi"
    );
}

/// `METHOD /path` of every operation a path of the spec has, parameters as `{}`; proxied
/// routes (tagged `proxy`, they come from configuration) left out.
fn spec_endpoints(spec: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let pattern = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    "{}"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "head", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let proxied = op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "proxy"));
            if !proxied {
                out.insert(format!("{} {pattern}", method.to_uppercase()));
            }
        }
    }
    out
}

#[test]
fn the_spec_has_exactly_the_route_tables_endpoints() {
    let mut table_endpoints = BTreeSet::new();
    for (method, pattern) in table::rows() {
        table_endpoints.insert(format!("{method} {pattern}"));
        if method == "GET" {
            // GET rows answer HEAD too.
            table_endpoints.insert(format!("HEAD {pattern}"));
        }
    }
    let spec_endpoints = spec_endpoints(&spec());
    assert!(table_endpoints.len() > 40, "{table_endpoints:?}");
    let missing: Vec<_> = table_endpoints.difference(&spec_endpoints).collect();
    assert!(
        missing.is_empty(),
        "routes missing from {YAML}: {missing:?}"
    );
    let extra: Vec<_> = spec_endpoints.difference(&table_endpoints).collect();
    assert!(
        extra.is_empty(),
        "{YAML} names endpoints the route table lacks: {extra:?}"
    );
    assert!(spec()["paths"]["/openapi.json"]["get"].is_object());
}

/// One error of each variant; the match in `variant_index` stops compiling when a variant is
/// added, and the test below checks the list holds every index once.
fn every_error() -> Vec<Error> {
    vec![
        Error::BadRequest(String::new()),
        Error::InvalidJson,
        Error::UnsupportedMediaType,
        Error::PayloadTooLarge(1),
        Error::NotFound,
        Error::MethodNotAllowed("GET".into()),
        Error::QueryNotAllowed(String::new()),
        Error::BodyNotAllowed(String::new()),
        Error::NotOwner,
        Error::NoAuth,
        Error::InvalidToken(TokenRejection::Malformed),
        Error::ExpiredToken,
        Error::InvalidCredentials,
        Error::RegistrationClosed,
        Error::EmailTaken,
        Error::WeakPassword(""),
        Error::InvalidRefreshToken(""),
        Error::RefreshTokenReused,
        Error::Misconfigured(ConfigError::new("X", "")),
        Error::InsufficientRole,
        Error::InvalidPath(""),
        Error::UpstreamUnavailable(String::new()),
        Error::UpstreamTimeout(1),
        Error::CsrfValidationFailed(""),
        Error::InvalidApiKey(""),
        Error::InvalidSession(""),
        Error::ScopeViolation,
        Error::AuthRateLimited(1),
        Error::Unavailable(String::new()),
        Error::Internal(String::new()),
        Error::MfaRequired,
        Error::InvalidOtp,
        Error::MfaNotEnrolled(""),
        Error::MfaUnavailable,
        Error::UntrustedIssuer(String::new()),
        Error::IssuerUnavailable(String::new()),
    ]
    .into_iter()
    .chain(
        WebAuthnRejection::ALL
            .into_iter()
            .map(|why| Error::WebAuthn(why, "")),
    )
    .collect()
}

const VARIANTS: usize = 37;

fn variant_index(err: &Error) -> usize {
    match err {
        Error::BadRequest(_) => 0,
        Error::InvalidJson => 1,
        Error::UnsupportedMediaType => 2,
        Error::PayloadTooLarge(_) => 3,
        Error::NotFound => 4,
        Error::MethodNotAllowed(_) => 5,
        Error::QueryNotAllowed(_) => 6,
        Error::BodyNotAllowed(_) => 7,
        Error::NotOwner => 8,
        Error::NoAuth => 9,
        Error::InvalidToken(_) => 10,
        Error::ExpiredToken => 11,
        Error::InvalidCredentials => 12,
        Error::RegistrationClosed => 13,
        Error::EmailTaken => 14,
        Error::WeakPassword(_) => 15,
        Error::InvalidRefreshToken(_) => 16,
        Error::RefreshTokenReused => 17,
        Error::Misconfigured(_) => 18,
        Error::InsufficientRole => 19,
        Error::InvalidPath(_) => 20,
        Error::UpstreamUnavailable(_) => 21,
        Error::UpstreamTimeout(_) => 22,
        Error::CsrfValidationFailed(_) => 23,
        Error::InvalidApiKey(_) => 24,
        Error::ScopeViolation => 25,
        Error::AuthRateLimited(_) => 26,
        Error::Unavailable(_) => 27,
        Error::Internal(_) => 28,
        Error::InvalidSession(_) => 29,
        Error::MfaRequired => 30,
        Error::InvalidOtp => 31,
        Error::MfaNotEnrolled(_) => 32,
        Error::MfaUnavailable => 33,
        Error::UntrustedIssuer(_) => 34,
        Error::IssuerUnavailable(_) => 35,
        Error::WebAuthn(..) => 36,
    }
}

#[test]
fn the_error_code_enum_is_exactly_the_codes_of_the_error_enum() {
    let errors = every_error();
    let indices: BTreeSet<usize> = errors.iter().map(variant_index).collect();
    assert_eq!(indices, (0..VARIANTS).collect(), "every variant, once");
    assert_eq!(errors.len(), VARIANTS - 1 + WebAuthnRejection::ALL.len());
    let codes: BTreeSet<&str> = errors.iter().map(Error::code).collect();
    let spec = spec();
    let enumerated: BTreeSet<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let missing: Vec<_> = codes.difference(&enumerated).collect();
    assert!(
        missing.is_empty(),
        "codes missing from ErrorCode: {missing:?}"
    );
    let unknown: Vec<_> = enumerated.difference(&codes).collect();
    assert!(
        unknown.is_empty(),
        "ErrorCode names codes no error has: {unknown:?}"
    );
}

#[test]
fn the_worker_serves_the_json_at_openapi_json() {
    let config = common::config(&[], &[]);
    let store = MemoryStore::new();
    let clock = FixedClock(common::T0);
    let svc = common::services(&config, &store, &clock);
    let file = std::fs::read(root().join(JSON)).unwrap();
    for method in ["GET", "HEAD"] {
        let res = futures::executor::block_on(handle(&svc, &Request::new(method, "/openapi.json")));
        assert_eq!(res.status, 200, "{method}");
        let header = |name: &str| {
            res.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("content-type"), Some("application/json"));
        assert_eq!(header("cache-control"), Some("public, max-age=300"));
        assert_eq!(header("access-control-allow-origin"), Some("*"));
        if method == "GET" {
            assert_eq!(res.body, file);
        }
    }
    let res = futures::executor::block_on(handle(&svc, &Request::new("POST", "/openapi.json")));
    assert_eq!(res.status, 405);
}
