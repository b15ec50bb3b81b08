//! How the programs behind a proxy read a query parameter's name.
//!
//! A CMS does not see the raw `name=value` pair Gatehouse checked: PHP (`$_GET`, `parse_str`)
//! decodes it, cuts the name at the first NUL byte, drops leading spaces, turns `.` and ` ` into
//! `_`, reads `a[b]` as key `a` with sub-key `b`, and turns an unclosed `[` into `_`
//! (`api[key` is `api_key`); Node's `URLSearchParams` and `qs` decode it and read `a[b]` (and,
//! with `allowDots`, `a.b`) as rooted at `a`. [`readings`] gives every top-level name one of those
//! readers can see, so a policy that admits a name only when it admits all of its readings lets
//! no spelling of a refused name through. `tests/fixtures/php-query-names.json` holds PHP's own
//! answers for a table of spellings, and the tests below check [`php_name`] against it.

use crate::primitives::encoding::decode_query_component;

/// PHP's `max_input_nesting_level` default: a name nested deeper is dropped.
const PHP_MAX_NESTING: usize = 64;

/// The top-level key PHP's `parse_str` (and `$_GET`) files the decoded parameter name under;
/// empty when PHP drops the pair.
pub fn php_name(decoded: &str) -> String {
    let name = decoded.split('\0').next().unwrap_or("");
    let name = name.trim_start_matches(' ');
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.char_indices() {
        match c {
            ' ' | '.' => out.push('_'),
            '[' if out.is_empty() => return out,
            '[' => {
                let rest = &name[i + 1..];
                if rest.contains(']') {
                    // `a[…]`: an array under `a`, unless nested too deep.
                    if nesting(&name[i..]) > PHP_MAX_NESTING {
                        return String::new();
                    }
                    return out;
                }
                // Not an index: the `[` and, after it, every ` `, `.` and `[` become `_`.
                out.push('_');
                out.extend(rest.chars().map(|c| match c {
                    ' ' | '.' | '[' => '_',
                    c => c,
                }));
                return out;
            }
            c => out.push(c),
        }
    }
    out
}

/// How many `[…]` levels PHP reads from `brackets` (which starts at the first `[`).
fn nesting(brackets: &str) -> usize {
    let mut levels = 0;
    let mut rest = brackets;
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            break;
        };
        levels += 1;
        rest = &inner[end + 1..];
    }
    levels
}

/// A raw (still percent-encoded) parameter name, decoded, with the names readers see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamName {
    /// The decoded name, for messages.
    pub decoded: String,
    /// Every top-level name a reader may file it under, lower-case, without repeats.
    pub readings: Vec<String>,
    /// Whether a reader can see structure in it (`a[b]`, `a.b`): not a plain scalar name.
    pub structured: bool,
    /// Whether the decoded name holds control characters (NUL included).
    pub has_controls: bool,
}

/// Decodes a raw parameter name and lists its readings: PHP's (also as its built-in server reads
/// a name that starts the query with `?`), the name up to its first `[` (URLSearchParams with
/// `qs`), and up to its first `[` or `.` (`qs` with `allowDots`).
pub fn readings(raw: &str) -> ParamName {
    let decoded = decode_query_component(raw);
    let mut readings: Vec<String> = Vec::with_capacity(4);
    let plain = decoded.split('[').next().unwrap_or("");
    let dotted = decoded.split(['[', '.']).next().unwrap_or("");
    // PHP's built-in server drops a `?` that starts the query (`??api_key=1` is `api_key`).
    let unquestioned = php_name(decoded.strip_prefix('?').unwrap_or(&decoded));
    for name in [
        php_name(&decoded),
        unquestioned,
        plain.to_string(),
        dotted.to_string(),
    ] {
        let name = name.to_lowercase();
        if !readings.contains(&name) {
            readings.push(name);
        }
    }
    ParamName {
        structured: decoded.contains(['[', ']', '.']),
        has_controls: decoded.chars().any(char::is_control),
        readings,
        decoded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/php-query-names.json");

    fn cases() -> Vec<Value> {
        let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
        fixture["cases"].as_array().expect("cases").clone()
    }

    #[test]
    fn php_names_match_php_itself() {
        let cases = cases();
        assert!(cases.len() >= 30, "the fixture covers the table");
        for case in cases {
            let raw = case["raw"].as_str().unwrap();
            let php_keys: Vec<&str> = case["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            let ours: Vec<String> = raw
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| php_name(&decode_query_component(pair.split('=').next().unwrap())))
                .filter(|k| !k.is_empty())
                .fold(Vec::new(), |mut acc, k| {
                    if !acc.contains(&k) {
                        acc.push(k);
                    }
                    acc
                });
            assert_eq!(ours, php_keys, "PHP reads {raw:?} as {php_keys:?}");
        }
    }

    #[test]
    fn every_spelling_php_reads_as_a_name_is_among_the_readings() {
        for case in cases() {
            let raw = case["raw"].as_str().unwrap();
            let pairs: Vec<ParamName> = raw
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| readings(pair.split('=').next().unwrap()))
                .collect();
            for key in case["keys"].as_array().unwrap() {
                let key = key.as_str().unwrap().to_lowercase();
                assert!(
                    pairs.iter().any(|p| p.readings.contains(&key)),
                    "{raw:?}: PHP's {key:?} is not among the readings"
                );
            }
        }
    }

    #[test]
    fn the_reported_spellings_all_read_as_credentials() {
        for (raw, expected) in [
            ("api_key%00x", "api_key"),
            ("api[key", "api_key"),
            ("access[token", "access_token"),
            ("api.key", "api_key"),
            ("api%20key", "api_key"),
            ("+api_key", "api_key"),
            ("API_KEY", "api_key"),
            ("api%5Fkey", "api_key"),
            ("api_key[]", "api_key"),
            ("?api_key", "api_key"),
        ] {
            let name = readings(raw);
            assert!(
                name.readings.iter().any(|r| r == expected),
                "{raw}: {:?}",
                name.readings
            );
        }
        let plain = readings("limit");
        assert_eq!(plain.readings, vec!["limit"]);
        assert!(!plain.structured && !plain.has_controls);
        let nested = readings("filter%5Bstatus%5D%5B_eq%5D");
        assert_eq!(nested.readings, vec!["filter"]);
        assert!(nested.structured);
        assert!(readings("a%00b").has_controls);
    }
}
