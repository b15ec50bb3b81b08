//! Properties of configuration parsing (`domain::config`, `domain::vars`, `domain::proxy::routes`):
//! any value of any variable, and any `ROUTES` document, is parsed without a panic; an error
//! names the variable whose value is wrong, and never holds the value of a secret.

mod common;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use gatehouse::domain::config::Config;
use gatehouse::primitives::encoding::b64url;
use gatehouse::primitives::error::ConfigError;

/// Every variable `Config::from_lookup` reads, with whether it is a secret.
const VARS: &[(&str, bool)] = &[
    ("JWT_ISSUER", false),
    ("JWT_AUDIENCE", false),
    ("ACCESS_TOKEN_TTL", false),
    ("REFRESH_TOKEN_TTL", false),
    ("REFRESH_IDLE_TIMEOUT", false),
    ("REFRESH_GRACE_SECONDS", false),
    ("CLOCK_LEEWAY_SECONDS", false),
    ("PBKDF2_ITERATIONS", false),
    ("MAX_BODY_BYTES", false),
    ("REGISTRATION", false),
    ("DEFAULT_ROLES", false),
    ("COOKIE_SAMESITE", false),
    ("ALLOWED_ORIGINS", false),
    ("JWT_SIGNING_KEY", true),
    ("JWT_NEXT_PUBLIC_KEY", false),
    ("JWT_PREVIOUS_PUBLIC_KEYS", false),
    ("ROUTES", false),
    ("UPSTREAM_SIGNING_SECRET", true),
    ("API_KEY_PEPPER", true),
    ("RATE_LIMIT_WINDOW_SECONDS", false),
    ("RATE_LIMIT_LOGIN_PER_ACCOUNT", false),
    ("RATE_LIMIT_LOGIN_PER_IP", false),
    ("RATE_LIMIT_REGISTER_PER_IP", false),
    ("RATE_LIMIT_REFRESH_PER_FAMILY", false),
    ("AUDIT_RETENTION_DAYS", false),
    ("SESSION_RETENTION_DAYS", false),
    ("REVOCATION_DELAY_SECONDS", false),
];

/// Values near the edges of what the variables accept.
fn var_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => prop_oneof![
            (-10i64..1_000_000_000).prop_map(|n| n.to_string()),
            Just("99999999999999999999".to_string()),
            Just(" 60 ".to_string()),
            Just("1e3".to_string()),
        ],
        1 => proptest::sample::select(vec![
            "open", "closed", "Lax", "strict", "None", "user,admin", "anonymous", "https://a.example",
            "http://localhost:3000,https://b.example/", "*", "", "  ", "{}", "[]",
        ]).prop_map(str::to_string),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| b64url(&b)),
    ]
}

/// A `ROUTES` document: keys of the route table with values of any type, or a good route with
/// one field changed.
fn routes_value() -> impl Strategy<Value = String> {
    let field = proptest::sample::select(vec![
        "prefix",
        "upstream",
        "timeout_ms",
        "max_body_bytes",
        "public",
        "endpoints",
        "forward_all",
        "inject",
        "strip_headers",
        "strip_query",
        "read",
        "write",
        "GET",
        "DELETE",
        "owner_field",
        "nope",
    ]);
    let value = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("/cms/")),
        Just(json!("https://cms.example/api/")),
        Just(json!({ "roles": ["anonymous"], "secret": "CMS_KEY" })),
        Just(json!({ "header": "api-key", "value": "{secret}" })),
        Just(json!([{ "method": "GET", "path": "items/{m}", "roles": ["user"] }])),
        Just(
            json!([{ "method": "POST", "path": "x", "action": "create", "fields": ["a"], "roles": ["user"] }])
        ),
        Just(json!([])),
    ];
    let good = json!({ "prefix": "/cms/", "upstream": "https://cms.example/api/",
        "endpoints": [{ "method": "GET", "path": "items", "roles": ["anonymous"] }] });
    prop_oneof![
        2 => (proptest::collection::btree_map(field.clone(), value.clone(), 0..4), "[a-z_-]{0,5}|\\PC{0,4}")
            .prop_map(|(m, name)| json!({ name: Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()) }).to_string()),
        2 => (field, value).prop_map(move |(k, v)| {
            let mut route = good.clone();
            route[k] = v;
            json!({ "cms": route }).to_string()
        }),
        1 => any::<String>(),
    ]
}

fn parse(vars: &[(&str, String)]) -> Result<Config, ConfigError> {
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    Config::from_lookup(&lookup)
}

/// A valid base configuration: the signing key, route secrets and the upstream signing secret.
fn base() -> Vec<(&'static str, String)> {
    vec![
        ("JWT_SIGNING_KEY", b64url(&[3u8; 32])),
        (
            "UPSTREAM_SIGNING_SECRET",
            "an upstream signing secret of 32+ chars".into(),
        ),
        ("CMS_KEY", "cms-key-value".into()),
    ]
}

proptest! {
    #![proptest_config(common::prop::config())]

    /// One variable set to anything over a valid configuration: no panic, and an error names
    /// that variable (or the one it must agree with), never a secret's value.
    #[test]
    fn an_error_names_the_variable(which in 0..VARS.len(), value in var_value()) {
        let (var, secret) = VARS[which];
        let mut vars = base();
        vars.push((var, value.clone()));
        match parse(&vars) {
            Ok(config) => {
                if secret && value.trim().len() >= 8 {
                    let shown = format!("{config:?}");
                    prop_assert!(!shown.contains(value.trim()));
                }
            }
            Err(err) => {
                // The idle timeout is checked against the absolute lifetime.
                let partner = match var {
                    "REFRESH_TOKEN_TTL" => "REFRESH_IDLE_TIMEOUT",
                    _ => var,
                };
                prop_assert!(err.var == var || err.var == partner, "{var} set, {} blamed: {err}", err.var);
                prop_assert!(err.to_string().contains(err.var));
                if secret && value.trim().len() >= 8 {
                    prop_assert!(!err.to_string().contains(value.trim()), "{err}");
                    let shown = format!("{err:?}");
                    prop_assert!(!shown.contains(value.trim()));
                }
            }
        }
    }

    /// Any `ROUTES` document: no panic, and an error names `ROUTES` (and never the value of a
    /// route's secret).
    #[test]
    fn routes_errors_name_routes(routes in routes_value()) {
        let mut vars = base();
        vars.push(("ROUTES", routes));
        if let Err(err) = parse(&vars) {
            prop_assert_eq!(err.var, "ROUTES", "{}", err);
            prop_assert!(!err.to_string().contains("cms-key-value"));
        }
    }
}
