//! Small encoding and hashing helpers shared by the token, password and storage code.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::primitives::platform::{random_array, Rng};

/// Base64url without padding (JWT, JWK, refresh tokens).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` on any other alphabet or on padding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Standard base64 without padding, the alphabet of PHC strings.
pub fn b64_phc(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Decodes a PHC base64 field.
pub fn b64_phc_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s).ok()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Decodes lower- or upper-case hex.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// RFC 4648 base32, lower-case, no padding: identifiers that are safe in URLs and paths.
pub fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The byte a two-digit hex escape (`hex`, e.g. `b"2F"`) stands for.
pub fn hex_pair(hex: &[u8]) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16);
    Some((digit(hex[0])? * 16 + digit(hex[1])?) as u8)
}

/// A query-string component percent-decoded (`+` is a space): the bytes, and whether every
/// `%` began a valid escape (an invalid one is kept as it is).
fn percent_decode(raw: &str) -> (Vec<u8>, bool) {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut well_formed = true;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(hex_pair) {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => {
                    well_formed = false;
                    out.push(b'%');
                }
            },
            b => out.push(b),
        }
        i += 1;
    }
    (out, well_formed)
}

/// Percent-decodes a query-string component (`+` is a space); invalid escapes stay as they are
/// and bytes that are not UTF-8 become U+FFFD.
pub fn decode_query_component(raw: &str) -> String {
    String::from_utf8_lossy(&percent_decode(raw).0).into_owned()
}

/// Percent-decodes a query-string component to its bytes (`+` is a space); invalid escapes stay
/// as they are.
pub fn decode_query_bytes(raw: &str) -> Vec<u8> {
    percent_decode(raw).0
}

/// Why [`decode_query_component_strict`] refused a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryDecodeError {
    /// A `%` that does not begin a two-digit hex escape.
    MalformedEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Percent-decodes a query-string component (`+` is a space), refusing malformed escapes and
/// bytes that are not UTF-8.
pub fn decode_query_component_strict(raw: &str) -> Result<String, QueryDecodeError> {
    let (bytes, well_formed) = percent_decode(raw);
    if !well_formed {
        return Err(QueryDecodeError::MalformedEscape);
    }
    String::from_utf8(bytes).map_err(|_| QueryDecodeError::NotUtf8)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A new random identifier with `prefix`: 128 bits in base32.
pub fn new_id(rng: &dyn Rng, prefix: &str) -> String {
    let bytes: [u8; 16] = random_array(rng);
    format!("{prefix}{}", base32_lower(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_decode() {
        assert_eq!(decode_query_component("api%5Fkey"), "api_key");
        assert_eq!(decode_query_component("a+b%20c"), "a b c");
        assert_eq!(decode_query_component("%zz%"), "%zz%");
        assert_eq!(encode_component("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn strict_query_decoding_refuses_bad_escapes_and_non_utf8() {
        assert_eq!(
            decode_query_component_strict("a+b%2Fc").as_deref(),
            Ok("a b/c")
        );
        assert_eq!(
            decode_query_component_strict("%zz"),
            Err(QueryDecodeError::MalformedEscape)
        );
        assert_eq!(
            decode_query_component_strict("a%2"),
            Err(QueryDecodeError::MalformedEscape)
        );
        assert_eq!(
            decode_query_component_strict("%ff"),
            Err(QueryDecodeError::NotUtf8)
        );
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(hex_decode("0g"), None);
        assert_eq!(hex_decode("abc"), None);
    }

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2, "abc".
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base32_rfc4648_vectors() {
        // RFC 4648 section 10, lower-cased, without padding.
        for (input, want) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), want);
        }
    }

    #[test]
    fn base64url_rejects_padding_and_std_alphabet() {
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        assert!(b64url_decode("-_8=").is_none());
        assert!(b64url_decode("+/8").is_none());
    }
}
