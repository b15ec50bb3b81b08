//! Properties of query-name reading (`domain::proxy::names`), the percent decoder
//! (`primitives::encoding`) and an endpoint's query list: nothing panics; `encode_component`
//! round-trips through both decoders; a name the list admits is admitted under every reading a
//! program behind the proxy may give it (PHP, URLSearchParams, `qs`, a second decoding pass).

mod common;

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::json;

use gatehouse::domain::proxy::names::{php_name, readings};
use gatehouse::domain::proxy::Routes;
use gatehouse::primitives::encoding::{
    decode_query_bytes, decode_query_component, decode_query_component_strict, encode_component,
    QueryDecodeError,
};
use gatehouse::primitives::error::Error;

/// The names the endpoint lists (all of kind `any`).
const LISTED: &[&str] = &["limit", "sort", "fields", "filter", "page_size", "q"];

static ROUTES: LazyLock<Routes> = LazyLock::new(|| {
    let query: serde_json::Map<String, serde_json::Value> = LISTED
        .iter()
        .map(|n| (n.to_string(), json!("any")))
        .collect();
    let routes = json!({ "cms": {
        "prefix": "/cms/", "upstream": "https://cms.example/api/",
        "endpoints": [{ "method": "GET", "path": "items", "roles": ["anonymous"], "query": query }],
    }});
    Routes::parse(&routes.to_string(), &|_| None, 65_536).expect("valid routes")
});

/// Spellings that make PHP, `qs` and URLSearchParams read names differently.
const NAME_PIECES: &[&str] = &[
    "limit",
    "sort",
    "fields",
    "filter",
    "page",
    "_size",
    "q",
    "api",
    "key",
    "_key",
    "token",
    "access",
    "_method",
    "API",
    "KEY",
    "Limit",
    "_",
    "%5F",
    "%5f",
    ".",
    "%2E",
    " ",
    "+",
    "%20",
    "[",
    "]",
    "%5B",
    "%5D",
    "[]",
    "[x]",
    "%00",
    "\0",
    "?",
    "%3F",
    "%25",
    "%255F",
    "%",
    "%6C",
    "%6c%69mit",
    "%3D",
    "%26",
    "%3B",
    "%C3%A9",
    "é",
    "\u{130}",
];

/// A raw parameter name: no `=`, `&` or `;` (they end a name).
fn raw_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => common::prop::pieces(NAME_PIECES, 1..5),
        1 => any::<String>(),
    ]
    .prop_map(|n| n.replace(['=', '&', ';'], ""))
}

/// Every top-level name a reader behind the proxy may see for the raw name `raw`, lower-cased
/// (a CMS may compare names without case).
fn reader_names(raw: &str) -> Vec<String> {
    let once = decode_query_component(raw);
    let twice = decode_query_component(&once);
    let mut names = Vec::new();
    for decoded in [&once, &twice] {
        // PHP ($_GET, parse_str; its built-in server also drops a leading `?`).
        names.push(php_name(decoded));
        names.push(php_name(decoded.strip_prefix('?').unwrap_or(decoded)));
        // URLSearchParams then qs: the name up to its first `[`; qs with allowDots: or `.`.
        names.push(decoded.split('[').next().unwrap().to_string());
        names.push(decoded.split(['[', '.']).next().unwrap().to_string());
    }
    names.into_iter().map(|n| n.to_lowercase()).collect()
}

proptest! {
    #![proptest_config(common::prop::config())]

    /// No input panics a decoder or a reader; the lenient decoders agree with each other and,
    /// where it accepts, with the strict one, which refuses exactly malformed escapes and
    /// non-UTF-8.
    #[test]
    fn decoders_and_readers_never_panic_and_agree(raw in prop_oneof![raw_name(), any::<String>()]) {
        let lenient = decode_query_component(&raw);
        let bytes = decode_query_bytes(&raw);
        prop_assert_eq!(&lenient, &String::from_utf8_lossy(&bytes));
        let malformed = raw.match_indices('%').any(|(i, _)| {
            raw.as_bytes().get(i + 1..i + 3).is_none_or(|h| !h.iter().all(u8::is_ascii_hexdigit))
        });
        match decode_query_component_strict(&raw) {
            Ok(s) => {
                prop_assert!(!malformed);
                prop_assert_eq!(&s, &lenient);
            }
            Err(QueryDecodeError::MalformedEscape) => prop_assert!(malformed),
            Err(QueryDecodeError::NotUtf8) => {
                prop_assert!(!malformed);
                prop_assert!(std::str::from_utf8(&bytes).is_err());
            }
        }
        let name = readings(&raw);
        prop_assert_eq!(&name.decoded, &lenient);
        prop_assert!(!name.readings.is_empty());
        for (i, r) in name.readings.iter().enumerate() {
            prop_assert_eq!(r, &r.to_lowercase());
            prop_assert!(!name.readings[..i].contains(r), "repeated reading");
        }
        let _ = php_name(&raw);
    }

    /// `encode_component` writes only unreserved characters and upper-case escapes, and both
    /// decoders give back exactly what was encoded.
    #[test]
    fn encode_component_round_trips(value in any::<String>()) {
        let encoded = encode_component(&value);
        let mut rest = encoded.as_str();
        while let Some(c) = rest.chars().next() {
            if c == '%' {
                let hex = &rest[1..3];
                prop_assert!(hex.chars().all(|h| h.is_ascii_digit() || ('A'..='F').contains(&h)), "{hex}");
                rest = &rest[3..];
            } else {
                prop_assert!(c.is_ascii_alphanumeric() || "-._~".contains(c), "{c:?}");
                rest = &rest[1..];
            }
        }
        prop_assert_eq!(decode_query_component(&encoded), value.clone());
        prop_assert_eq!(decode_query_bytes(&encoded), value.as_bytes().to_vec());
        prop_assert_eq!(decode_query_component_strict(&encoded), Ok(value));
    }

    /// A parameter the endpoint's list admits is admitted under every reading: each name a
    /// reader may file it under is listed, so no spelling of an unlisted name (a credential,
    /// `_method`) gets through. A refusal is `query_not_allowed`.
    #[test]
    fn an_admitted_name_is_listed_under_every_reading(
        raw in raw_name(),
        value in "[a-z0-9]{0,4}",
    ) {
        let endpoint = &ROUTES.iter().next().unwrap().endpoints[0];
        match endpoint.check_query(&format!("{raw}={value}")) {
            Ok(()) => {
                for name in reader_names(&raw).into_iter().chain(readings(&raw).readings) {
                    prop_assert!(LISTED.contains(&name.as_str()), "{raw:?} admitted, read as {name:?}");
                }
            }
            Err(Error::QueryNotAllowed(_)) => {}
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }

    /// Listed names, however they are encoded, are admitted.
    #[test]
    fn listed_names_are_admitted_in_any_encoding(
        which in 0..LISTED.len(),
        mask in proptest::collection::vec(any::<bool>(), 16),
        upper in any::<bool>(),
    ) {
        let name = LISTED[which];
        let raw: String = name
            .chars()
            .zip(mask.iter().cycle())
            .map(|(c, enc)| {
                let c = if upper { c.to_ascii_uppercase() } else { c };
                if *enc { format!("%{:02X}", c as u32) } else { c.to_string() }
            })
            .collect();
        let endpoint = &ROUTES.iter().next().unwrap().endpoints[0];
        prop_assert_eq!(endpoint.check_query(&format!("{raw}=1")), Ok(()));
    }
}
