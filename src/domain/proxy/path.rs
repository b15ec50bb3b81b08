//! Path safety: the part of a request path after a route's prefix, checked before it is appended
//! to the upstream base.
//!
//! The rule is strict on purpose. A remainder is accepted only if no decoder or normalizer on
//! the way to the CMS (the runtime's URL parser, a reverse proxy, PHP, a Java servlet container)
//! could read it as leaving the base. So any of these is refused, with no attempt to "clean" it:
//!
//! * dot segments (`.`, `..`, also with `;params` as servlet containers read them, and with
//!   the `;` percent-encoded, as they read them behind a decoding proxy);
//! * empty segments (`//`), which also covers scheme-relative forms;
//! * a colon in the first segment (`http:…`, `c:…`: absolute forms);
//! * backslashes, control characters and whitespace, raw or percent-encoded;
//! * percent-encoded `/`, `\`, `.` or `%` (encoded separators, encoded dots, double encoding);
//! * malformed percent escapes, and encoded bytes that are not valid UTF-8 (overlong forms
//!   such as `%c0%ae` or `%e0%80%af`).

use crate::primitives::encoding::hex_pair;
use crate::primitives::error::Error;

/// Checks `remainder` (still percent-encoded, without a leading `/`).
pub fn check_remainder(remainder: &str) -> Result<(), Error> {
    let decoded = decode_checked(remainder)?;
    let Ok(decoded) = std::str::from_utf8(&decoded) else {
        return Err(Error::InvalidPath("encoded bytes that are not valid UTF-8"));
    };
    if remainder.is_empty() {
        return Ok(());
    }
    check_segments(remainder, decoded)
}

/// Percent-decodes `remainder` once, refusing escapes of separators, dots, `%` and control
/// characters, raw backslashes and raw control characters.
fn decode_checked(remainder: &str) -> Result<Vec<u8>, Error> {
    let bytes = remainder.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(Error::InvalidPath("a truncated percent escape"))?;
            let value = hex_pair(hex).ok_or(Error::InvalidPath("a malformed percent escape"))?;
            match value {
                b'/' | b'\\' => return Err(Error::InvalidPath("an encoded path separator")),
                b'.' => return Err(Error::InvalidPath("an encoded dot")),
                b'%' => return Err(Error::InvalidPath("double percent-encoding")),
                0..=0x20 | 0x7f => return Err(Error::InvalidPath("an encoded control character")),
                _ => {}
            }
            decoded.push(value);
            i += 3;
            continue;
        }
        match b {
            b'\\' => return Err(Error::InvalidPath("a backslash")),
            0..=0x20 | 0x7f => return Err(Error::InvalidPath("a control character or space")),
            _ => {}
        }
        decoded.push(b);
        i += 1;
    }
    Ok(decoded)
}

/// The segments of a non-empty remainder, as sent and decoded: none empty (but a trailing
/// slash), none a dot segment, no scheme-like first segment.
fn check_segments(remainder: &str, decoded: &str) -> Result<(), Error> {
    let segments: Vec<&str> = remainder.split('/').collect();
    // Encoded separators are refused above, so the decoded text has the same segments.
    let decoded_segments: Vec<&str> = decoded.split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            // Only a trailing slash may leave an empty last segment.
            if index == last && index > 0 {
                continue;
            }
            return Err(Error::InvalidPath("an empty path segment"));
        }
        // Also as a servlet container reads the segment once a decoder on the way (a reverse
        // proxy) has turned `%3B` into `;`: `..%3Bx` and `.%3B` are dot segments to it.
        let bare = segment.split(';').next().unwrap_or("");
        let decoded_bare = decoded_segments[index].split(';').next().unwrap_or("");
        if [bare, decoded_bare].iter().any(|b| *b == "." || *b == "..") {
            return Err(Error::InvalidPath("a dot segment"));
        }
        if index == 0 && segment.contains(':') {
            return Err(Error::InvalidPath("an absolute URL form"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_pass() {
        for ok in [
            "",
            "content/items/posts",
            "content/item/posts/65f1c2",
            "content/items/posts/",
            "assets/caf%C3%A9.png",
            "files/report.v2.pdf",
            "a/.well-known-ish/b",
            "a/..b/c",
        ] {
            assert!(check_remainder(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "a/./b",
            ".",
            "%2e%2e/x",
            "%2E%2E/x",
            ".%2e/x",
            "%2e./x",
            "a%2fb",
            "a%2F..%2Fb",
            "a%5cb",
            "a\\b",
            "..\\x",
            "%252e%252e/x",
            "%25",
            "a//b",
            "/etc/passwd",
            "//evil.example/x",
            "http://evil.example/x",
            "https:evil.example",
            "c:/windows",
            "a%00b",
            "a%0ab",
            "a%0d%0aHost:x",
            "a\tb",
            "a b",
            "a%20b",
            "%c0%ae%c0%ae/x",
            "%c0%af",
            "%e0%80%ae",
            "%f0%80%80%ae",
            "%ff",
            "%",
            "%2",
            "%zz",
            "..;/x",
            "a/..;jsessionid=1/b",
            "a/.;/b",
            "..%3Bx/y",
            "a/.%3b/b",
            "..%3b",
        ] {
            assert!(check_remainder(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
