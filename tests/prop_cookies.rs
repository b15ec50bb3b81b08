//! Properties of cookies (`primitives::cookies`, `Request::cookie`/`cookies`): no header
//! panics; a cookie the serializer writes is read back exactly, among any other cookies;
//! values come in the order sent, the first wins for `Request::cookie`, and the refresh
//! endpoint uses no refresh cookie when two are sent.

mod common;

use futures::executor::block_on;
use proptest::prelude::*;

use gatehouse::domain::store::memory::MemoryStore;
use gatehouse::primitives::cookies::{set_cookie, values, SameSite};
use gatehouse::primitives::http::Request;
use gatehouse::primitives::platform::FixedClock;
use gatehouse::routes::auth::REFRESH_COOKIE;
use gatehouse::routes::handle;

/// RFC 6265 `token` characters (a cookie name).
const TOKEN_CHARS: &str =
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn cookie_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(proptest::sample::select(TOKEN_CHARS.chars().collect::<Vec<_>>()), 1..12)
            .prop_map(|c| c.into_iter().collect()),
        1 => Just(REFRESH_COOKIE.to_string()),
    ]
}

/// RFC 6265 `cookie-octet`s: printable ASCII but space, `"`, `,`, `;` and `\`.
fn cookie_value() -> impl Strategy<Value = String> {
    let octets: Vec<char> = (0x21u8..0x7f)
        .filter(|b| !b"\",;\\".contains(b))
        .map(char::from)
        .collect();
    proptest::collection::vec(proptest::sample::select(octets), 0..24)
        .prop_map(|c| c.into_iter().collect())
}

/// A name that resembles `name` without being it: other case, a prefix or suffix.
fn near_miss(name: &str) -> impl Strategy<Value = String> {
    let name = name.to_string();
    prop_oneof![
        Just(name.to_uppercase()),
        Just(format!("x{name}")),
        Just(format!("{name}_")),
        Just(format!("{name}2")),
        Just(name[..name.len() - 1].to_string()),
    ]
    .prop_filter("differs", move |n| n != &name && !n.is_empty())
}

/// What one `;`-separated piece of a `Cookie` header holds.
#[derive(Debug, Clone)]
enum Piece {
    /// `name=value`, with optional whitespace around each.
    Pair {
        name: String,
        value: String,
        pad: (bool, bool),
    },
    /// Something without `=`, or blank.
    Junk(String),
}

fn piece(target: String) -> impl Strategy<Value = Piece> {
    let names = prop_oneof![
        2 => Just(target.clone()),
        2 => near_miss(&target),
        2 => cookie_name(),
    ];
    prop_oneof![
        6 => (names, cookie_value(), any::<(bool, bool)>())
            .prop_map(|(name, value, pad)| Piece::Pair { name, value, pad }),
        1 => proptest::sample::select(vec!["", " ", "junk", "  flag  "]).prop_map(|s| Piece::Junk(s.into())),
    ]
}

fn render(piece: &Piece) -> String {
    match piece {
        Piece::Pair { name, value, pad } => {
            let sp = |b: bool| if b { " " } else { "" };
            format!("{}{name}{}={}{value}", sp(pad.0), sp(pad.1), sp(pad.1))
        }
        Piece::Junk(s) => s.clone(),
    }
}

/// The pieces spread over `Cookie` headers: a header break before each piece marked `true`.
fn headers(pieces: &[Piece], breaks: &[bool], separator: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            if breaks[i % breaks.len()] {
                out.push(String::new());
            } else {
                out.last_mut().unwrap().push_str(separator);
            }
        }
        out.last_mut().unwrap().push_str(&render(p));
    }
    out
}

/// The values sent under `name`, in order, as the generator wrote them.
fn sent(pieces: &[Piece], name: &str) -> Vec<String> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Pair { name: n, value, .. } if n == name => Some(value.clone()),
            _ => None,
        })
        .collect()
}

fn request(headers: &[String]) -> Request {
    headers
        .iter()
        .fold(Request::new("GET", "/"), |r, h| r.with_header("cookie", h))
}

proptest! {
    #![proptest_config(common::prop::config())]

    /// Any header text and any name: no panic, every value is trimmed and holds no `;`, and
    /// reading several headers is reading them joined with `;` (as HTTP/2 splits them).
    #[test]
    fn arbitrary_headers_never_panic(
        hs in proptest::collection::vec(
            prop_oneof![any::<String>(), common::prop::pieces(&["a", "=", ";", " ", "\t", "gatehouse_refresh", "\"", ","], 0..16)],
            0..4,
        ),
        name in prop_oneof![any::<String>(), Just(REFRESH_COOKIE.to_string()), Just("a".to_string())],
    ) {
        let got: Vec<&str> = values(hs.iter().map(String::as_str), &name).collect();
        for v in &got {
            prop_assert!(!v.contains(';'));
            prop_assert_eq!(*v, v.trim());
        }
        let joined = hs.join(";");
        let once: Vec<&str> = values(std::iter::once(joined.as_str()), &name).collect();
        prop_assert_eq!(&got, &once);
        let req = request(&hs);
        prop_assert_eq!(req.cookie(&name), got.first().copied());
    }

    /// Values come back exactly, in the order sent, whatever header they are in and whatever
    /// whitespace surrounds them; names match exactly (case and length); `Request::cookie` is the
    /// first of them.
    #[test]
    fn values_come_back_in_order_and_the_first_wins(
        (target, pieces) in cookie_name().prop_flat_map(|t| {
            (Just(t.clone()), proptest::collection::vec(piece(t), 0..8))
        }),
        breaks in proptest::collection::vec(any::<bool>(), 1..4),
        separator in proptest::sample::select(vec![";", "; ", " ;", " ; "]),
    ) {
        let hs = headers(&pieces, &breaks, separator);
        let expected = sent(&pieces, &target);
        let got: Vec<&str> = values(hs.iter().map(String::as_str), &target).collect();
        prop_assert_eq!(&got, &expected);
        let req = request(&hs);
        prop_assert_eq!(req.cookies(&target).collect::<Vec<_>>(), expected.clone());
        prop_assert_eq!(req.cookie(&target), expected.first().map(String::as_str));
    }

    /// What `set_cookie` writes is one `name=value` pair and the attributes: a browser stores the
    /// pair, sends it back among other cookies, and it is read back exactly.
    #[test]
    fn a_written_cookie_is_read_back_exactly(
        name in cookie_name(),
        value in cookie_value(),
        path in "/[a-z/]{0,8}",
        max_age in 0i64..100_000_000,
        same_site in proptest::sample::select(vec![SameSite::Lax, SameSite::Strict, SameSite::None]),
        before in proptest::collection::vec((cookie_name(), cookie_value()), 0..3),
        after in proptest::collection::vec((cookie_name(), cookie_value()), 0..3),
    ) {
        let written = set_cookie(&name, &value, &path, max_age, same_site);
        // A browser's reading (RFC 6265 section 5.2): the pair ends at the first `;`.
        let (pair, attributes) = written.split_once(';').unwrap();
        let (stored_name, stored_value) = pair.split_once('=').unwrap();
        prop_assert_eq!(stored_name.trim(), name.as_str());
        prop_assert_eq!(stored_value.trim(), value.as_str());
        let attributes: Vec<&str> = attributes.split(';').map(str::trim).collect();
        let path_attr = format!("Path={path}");
        let max_age_attr = format!("Max-Age={max_age}");
        let same_site_attr = format!("SameSite={}", same_site.as_str());
        prop_assert_eq!(
            attributes,
            vec![path_attr.as_str(), max_age_attr.as_str(), "HttpOnly", "Secure", same_site_attr.as_str()]
        );
        let others = |list: &[(String, String)]| {
            list.iter().filter(|(n, _)| *n != name).map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>()
        };
        let header = [others(&before), vec![pair.to_string()], others(&after)].concat().join("; ");
        let req = request(&[header]);
        prop_assert_eq!(req.cookies(&name).collect::<Vec<_>>(), vec![value.as_str()]);
    }

    /// `POST /auth/refresh` with refresh cookies only: none (or only empty ones) is `no_auth`,
    /// two or more non-empty ones are refused, whichever is first, before anything is looked up.
    #[test]
    fn the_refresh_endpoint_uses_no_cookie_when_two_are_sent(
        pieces in proptest::collection::vec(piece(REFRESH_COOKIE.to_string()), 0..6),
        breaks in proptest::collection::vec(any::<bool>(), 1..3),
    ) {
        let present = sent(&pieces, REFRESH_COOKIE).into_iter().filter(|v| !v.is_empty()).count();
        prop_assume!(present != 1);
        let config = common::config(&[], &[]);
        let store = MemoryStore::new();
        let clock = FixedClock(common::T0);
        let svc = common::services(&config, &store, &clock);
        let req = headers(&pieces, &breaks, "; ")
            .iter()
            .fold(
                Request::new("POST", "/auth/refresh").with_json(&serde_json::json!({})),
                |r, h| r.with_header("cookie", h),
            );
        let res = block_on(handle(&svc, &req));
        let expected = if present == 0 { "no_auth" } else { "invalid_refresh_token" };
        prop_assert_eq!((res.status, common::error_code(&res)), (401, Some(expected.to_string())));
    }
}
