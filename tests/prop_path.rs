//! Properties of the proxy's path checker (`domain::proxy::path::check_remainder`): no input
//! panics, and every remainder it accepts stays under the upstream base in every reading a
//! program on the way may give it: as sent, percent-decoded once or twice, with backslashes as
//! slashes, with servlet `;params` cut from each segment. Plain paths are accepted.

mod common;

use proptest::prelude::*;

use gatehouse::domain::proxy::path::check_remainder;
use gatehouse::primitives::error::Error;

/// Pieces that make escapes likely: dots, slashes, escapes of every kind, `;`, controls.
const PIECES: &[&str] = &[
    "a",
    "b",
    "x1",
    "~",
    "-",
    "_",
    "é",
    ".",
    "..",
    "/",
    "//",
    "\\",
    ";",
    ";x=1",
    ":",
    "%",
    "%2",
    "%2e",
    "%2E",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%25",
    "%252e",
    "%3b",
    "%3B",
    "%3a",
    "%00",
    "%0a",
    "%20",
    "%7f",
    "%41",
    "%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%C3%A9",
    "%e2%80%ae",
    "%ef%bc%8e",
    "%u002e",
    " ",
    "\t",
    "\0",
    "?",
    "#",
    "@",
    "http:",
    "c:",
];

/// Plain segments, to keep most generated remainders acceptable.
const PLAIN: &[&str] = &[
    "a", "b", "items", "x1", "posts", "é", "%C3%A9", "v1.2", "~u", "_",
];

fn remainder() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        3 => common::prop::pieces(PLAIN, 1..3),
        2 => common::prop::pieces(PIECES, 1..4),
    ];
    prop_oneof![
        6 => proptest::collection::vec(segment, 1..5).prop_map(|s| s.join("/")),
        4 => common::prop::pieces(PIECES, 0..10),
        1 => any::<String>(),
        1 => "[a-z0-9./%;:\\\\-]{0,16}",
    ]
}

/// One percent-decoding pass over bytes, as a server does it: a valid `%XX` becomes its byte,
/// anything else stays.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Every reading of `remainder` a program between Gatehouse and the CMS may make.
fn readings(remainder: &str) -> Vec<Vec<u8>> {
    let raw = remainder.as_bytes().to_vec();
    let once = percent_decode(&raw);
    let twice = percent_decode(&once);
    let mut all = vec![raw, once, twice];
    // Windows and WHATWG "special" URLs read `\` as `/`.
    let slashed: Vec<Vec<u8>> = all
        .iter()
        .map(|r| {
            r.iter()
                .map(|&b| if b == b'\\' { b'/' } else { b })
                .collect()
        })
        .collect();
    all.extend(slashed);
    all
}

proptest! {
    #![proptest_config(common::prop::config())]

    /// Any remainder: no panic, and a refusal is always `invalid_path`.
    #[test]
    fn arbitrary_remainders_never_panic(remainder in remainder()) {
        match check_remainder(&remainder) {
            Ok(()) | Err(Error::InvalidPath(_)) => {}
            Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
    }

    /// An accepted remainder, in every reading: no `.` or `..` segment (also with `;params`
    /// cut, as servlet containers do), no empty segment but a trailing one, no leading `/`, no
    /// backslash, control character, space or NUL, valid UTF-8, nothing left to decode after
    /// one pass (so double decoding changes nothing), no `:` in the first segment.
    #[test]
    fn accepted_remainders_stay_under_the_base_in_every_reading(remainder in remainder()) {
        prop_assume!(check_remainder(&remainder).is_ok());
        let decoded = percent_decode(remainder.as_bytes());
        prop_assert!(std::str::from_utf8(&decoded).is_ok(), "not UTF-8 once decoded");
        prop_assert!(!decoded.contains(&b'%'), "a % survives one decoding pass");
        for reading in readings(&remainder) {
            prop_assert!(
                !reading.iter().any(|&b| b < 0x21 || b == 0x7f || b == b'\\'),
                "a control, space or backslash in {:?}", String::from_utf8_lossy(&reading)
            );
            if reading.is_empty() {
                continue;
            }
            let segments: Vec<&[u8]> = reading.split(|&b| b == b'/').collect();
            for (i, segment) in segments.iter().enumerate() {
                let trailing = i + 1 == segments.len() && i > 0;
                prop_assert!(!segment.is_empty() || trailing, "an empty segment in {:?}", String::from_utf8_lossy(&reading));
                let bare = segment.split(|&b| b == b';').next().unwrap();
                prop_assert!(
                    bare != b"." && bare != b"..",
                    "a dot segment in {:?}", String::from_utf8_lossy(&reading)
                );
            }
        }
        // A scheme or drive is only ever read from a raw colon: an encoded one is no delimiter.
        let first = remainder.split(['/', '\\']).next().unwrap();
        prop_assert!(!first.contains(':'), "an absolute form");
    }

    /// Segments of unreserved characters (not all dots), percent-encoded non-ASCII letters, and
    /// `;params` are accepted, with or without a trailing slash.
    #[test]
    fn plain_paths_are_accepted(
        segments in proptest::collection::vec(
            prop_oneof![
                4 => "[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,10}",
                1 => "[a-z]{1,4}(%C3%A9|%E2%82%AC)[a-z]{0,3}",
                1 => "[a-z]{1,4};[a-z]=[0-9]",
            ],
            1..6,
        ),
        trailing in any::<bool>(),
    ) {
        let mut path = segments.join("/");
        if trailing {
            path.push('/');
        }
        prop_assert_eq!(check_remainder(&path), Ok(()));
    }
}
