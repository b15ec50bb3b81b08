//! Properties of the proxy's body policy (`domain::proxy::policy`, `domain::proxy::json`): the
//! strict parser reads every duplicate-free document as serde_json does and refuses every
//! document that repeats a member, at any depth and in any spelling; a body the policy lets
//! through is valid JSON with no credential member, no denied member, every forced member at
//! its forced value, the owner set, and the client's other members unchanged.

mod common;

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use gatehouse::domain::proxy::json::{find_member, parse, StrictError};
use gatehouse::domain::proxy::routes::normalize_param_name;
use gatehouse::domain::proxy::{Route, Routes};
use gatehouse::primitives::error::Error;

/// Endpoint policies as a route lists them; each is checked with every body.
fn policies() -> Vec<Value> {
    vec![
        json!({ "method": "POST", "path": "a", "action": "create",
            "fields": ["data.title", "data.meta", "tags"],
            "force": { "data._state": 0, "data.by": "{user}", "flags.public": { "x": [1] } },
            "deny": ["data.status", "data._state"], "owner": "data.author" }),
        json!({ "method": "PATCH", "path": "b/{id}", "action": "update",
            "fields": ["title", "tags", "data.body"], "deny": ["status", "data.id"],
            "force": { "published": false } }),
        json!({ "method": "POST", "path": "c", "action": "create",
            "fields": ["data", "meta.note"], "force": { "meta.owner": "{user}" }, "owner": "author" }),
    ]
}

static ROUTE: LazyLock<Route> = LazyLock::new(|| {
    let routes = json!({ "cms": {
        "prefix": "/cms/", "upstream": "https://cms.example/api/", "strip_query": ["secret_x"],
        "write": { "roles": ["user"] }, "endpoints": policies(),
    }});
    let routes = Routes::parse(&routes.to_string(), &|_| None, 65_536).expect("valid routes");
    let route = routes.iter().next().unwrap().clone();
    route
});

/// Member names: those the policies name first, then credentials and names never accepted.
const NAMES: &[&str] = &[
    "data",
    "title",
    "meta",
    "note",
    "tags",
    "status",
    "author",
    "by",
    "_state",
    "_id",
    "id",
    "body",
    "flags",
    "public",
    "owner",
    "published",
    "x",
    "api_key",
    "API_KEY",
    "api.key",
    "api%5Fkey",
    "api key",
    "token",
    "access_token",
    "_method",
    "secret_x",
    "a[b]",
    "",
    "\u{1}",
];
const POLICY_NAMES: usize = 16;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(&NAMES[..POLICY_NAMES]),
        1 => proptest::sample::select(NAMES),
    ]
    .prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Fractions in 1/64ths: serde_json (without `float_roundtrip`) may read other decimals
        // back one ulp off, and the strict parser reads numbers exactly as serde_json does.
        (-1e6f64..1e6).prop_map(|f| Value::from((f * 64.0).round() / 64.0)),
        "\\PC{0,6}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            1 => proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            2 => proptest::collection::vec((name(), inner), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Value> {
    proptest::collection::vec((name(), value()), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A JSON document that may repeat members: objects are member lists.
#[derive(Debug, Clone)]
enum Doc {
    Leaf(Value),
    Array(Vec<Doc>),
    Object(Vec<(String, Doc)>),
}

fn doc() -> impl Strategy<Value = Doc> {
    leaf()
        .prop_map(Doc::Leaf)
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Doc::Array),
                proptest::collection::vec((proptest::sample::select(&NAMES[..8]), inner), 0..4)
                    .prop_map(|m| Doc::Object(
                        m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                    )),
            ]
        })
}

/// The text of `doc`, member names escaped as `\uXXXX` where `escape` says so.
fn render(doc: &Doc, escape: &mut impl Iterator<Item = bool>) -> String {
    match doc {
        Doc::Leaf(v) => v.to_string(),
        Doc::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|d| render(d, escape))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Doc::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .map(|(k, v)| {
                    let name = if escape.next().unwrap_or(false) {
                        k.chars()
                            .map(|c| format!("\\u{:04x}", c as u32))
                            .collect::<String>()
                    } else {
                        serde_json::to_string(k)
                            .unwrap()
                            .trim_matches('"')
                            .to_string()
                    };
                    format!("\"{name}\" : {}", render(v, escape))
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
    }
}

/// The member names some object of `doc` repeats.
fn repeated(doc: &Doc, out: &mut Vec<String>) {
    match doc {
        Doc::Leaf(_) => {}
        Doc::Array(items) => items.iter().for_each(|d| repeated(d, out)),
        Doc::Object(members) => {
            for (i, (k, v)) in members.iter().enumerate() {
                if members[..i].iter().any(|(p, _)| p == k) {
                    out.push(k.clone());
                }
                repeated(v, out);
            }
        }
    }
}

/// The paths `policy` names, with some it does not and some credentials inside allowed ones.
fn policy_paths(policy: &Value) -> Vec<String> {
    let mut paths: Vec<String> = ["fields", "deny"]
        .iter()
        .flat_map(|k| policy[k].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .chain(
            policy["force"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys().cloned()),
        )
        .chain(policy["owner"].as_str().map(str::to_string))
        .collect();
    let extra: Vec<String> = paths
        .iter()
        .flat_map(|p| {
            [
                format!("{p}.api_key"),
                format!("{p}.x"),
                format!("{p}._method"),
            ]
        })
        .collect();
    paths.extend(extra);
    paths.extend(["x", "api_key", "data.x", "API_KEY"].map(str::to_string));
    paths
}

/// Sets the dotted `path` of `value` (an object) to `new`, making objects on the way.
fn set(value: &mut Value, path: &str, new: Value) {
    let mut node = value;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, key) in keys.iter().enumerate() {
        if !node.is_object() {
            *node = json!({});
        }
        let map = node.as_object_mut().unwrap();
        if i + 1 == keys.len() {
            map.insert(key.to_string(), new);
            return;
        }
        node = map.entry(key.to_string()).or_insert_with(|| json!({}));
    }
}

fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |node, key| node.as_object()?.get(key))
}

/// Every (dotted path, value) of the object members of `value`, leaves and inner nodes alike.
fn members(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push((path.clone(), v.clone()));
            members(v, &path, out);
        }
    }
}

proptest! {
    #![proptest_config(common::prop::config())]

    /// A document without repeated members parses strictly to what serde_json reads, compact
    /// or pretty; arbitrary bytes never panic the parser.
    #[test]
    fn the_strict_parser_reads_what_serde_json_reads(
        v in value(),
        junk in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        prop_assert_eq!(parse(v.to_string().as_bytes()), Ok(v.clone()));
        prop_assert_eq!(parse(serde_json::to_string_pretty(&v).unwrap().as_bytes()), Ok(v));
        match parse(&junk) {
            Ok(v) => prop_assert_eq!(Some(v), serde_json::from_slice::<Value>(&junk).ok()),
            Err(StrictError::Syntax) => prop_assert!(serde_json::from_slice::<Value>(&junk).is_err()),
            Err(StrictError::Duplicate(_)) => {}
        }
    }

    /// A document is refused as a duplicate exactly when some object repeats a member, whether
    /// the names are spelled alike or one is escaped; otherwise it parses as serde_json reads it.
    #[test]
    fn a_repeated_member_is_always_refused(
        d in doc(),
        escapes in proptest::collection::vec(any::<bool>(), 0..16),
    ) {
        let text = render(&d, &mut escapes.into_iter().chain(std::iter::repeat(false)));
        let mut dups = Vec::new();
        repeated(&d, &mut dups);
        match parse(text.as_bytes()) {
            Err(StrictError::Duplicate(name)) => prop_assert!(dups.contains(&name), "{name:?} in {text}"),
            Ok(v) => {
                prop_assert!(dups.is_empty(), "{text} accepted");
                prop_assert_eq!(Some(v), serde_json::from_str::<Value>(&text).ok());
            }
            Err(StrictError::Syntax) => return Err(TestCaseError::fail(format!("{text} refused as syntax"))),
        }
    }

    /// What a create or update lets through: an object, valid JSON, no credential member at any
    /// depth, no denied member it did not force, every forced member and the owner at their
    /// values, and every other member the client sent unchanged. A refusal is
    /// `body_not_allowed`, and a body holding a credential or denied member is always refused.
    #[test]
    fn a_policed_body_keeps_the_policy(
        which in 0usize..3,
        start in prop_oneof![Just(json!({})), body()],
        picks in proptest::collection::vec((any::<proptest::sample::Index>(), value()), 0..5),
    ) {
        let endpoint = &ROUTE.endpoints[which];
        let policy = &policies()[which];
        // Mostly the paths the policy names (so that most bodies pass and denied or forced
        // members are sent among allowed ones), over a few random members.
        let mut body = start;
        let paths = policy_paths(policy);
        for (i, v) in picks {
            set(&mut body, &paths[i.index(paths.len())], v);
        }
        let credentials = ROUTE.credential_names();
        let is_credential = |k: &str| credentials.contains(&normalize_param_name(k));
        // A `Caller` is only made inside the crate, from a verified credential: the policy is
        // applied here for an anonymous caller, whose `{user}` is `null`.
        let user = Value::Null;
        let forced: Vec<(String, Value)> = policy["force"]
            .as_object()
            .unwrap_or(&Map::new())
            .iter()
            .map(|(p, v)| (p.clone(), if v == "{user}" { user.clone() } else { v.clone() }))
            .chain(policy["owner"].as_str().map(|o| (o.to_string(), user.clone())))
            .collect();
        let denied: Vec<&str> = policy["deny"].as_array().map_or(vec![], |d| d.iter().filter_map(Value::as_str).collect());
        let sent_denied = denied.iter().any(|d| at(&body, d).is_some());
        let sent_credential = find_member(&body, &is_credential).is_some();
        match endpoint.apply_body(body.clone(), None, credentials) {
            Ok(out) => {
                prop_assert!(!sent_denied && !sent_credential, "{body} accepted");
                prop_assert!(out.is_object());
                prop_assert_eq!(parse(out.to_string().as_bytes()), Ok(out.clone()));
                prop_assert_eq!(find_member(&out, &is_credential), None);
                for (path, v) in &forced {
                    prop_assert_eq!(at(&out, path), Some(v), "{} in {}", path, out);
                }
                for d in &denied {
                    prop_assert!(at(&out, d).is_none() || forced.iter().any(|(p, _)| p == d));
                }
                let mut sent = Vec::new();
                members(&body, "", &mut sent);
                for (path, v) in sent {
                    let touched = forced.iter().any(|(p, _)| {
                        p == &path || p.starts_with(&format!("{path}.")) || path.starts_with(&format!("{p}."))
                    });
                    if !touched {
                        prop_assert_eq!(at(&out, &path), Some(&v), "{} changed", path);
                    }
                }
            }
            Err(Error::BodyNotAllowed(_)) => {}
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }
}
