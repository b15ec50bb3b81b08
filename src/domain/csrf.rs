//! CSRF protection of cookie-authenticated state changes.
//!
//! A request that authenticates with the refresh cookie (which the browser attaches on its own)
//! must show two things:
//! - it comes from an allowed page: `Sec-Fetch-Site: same-origin`, or an `Origin` listed in
//!   `ALLOWED_ORIGINS`;
//! - it knows the session's CSRF token, sent as `X-CSRF-Token`.
//!
//! The token is derived, not stored: `ghc_<session id>.<mac>`, the mac an HMAC-SHA256 of the
//! session (refresh family) id under a key derived from the signing secret. It is the same for
//! the whole session (all tabs share it) and stops being accepted when the session ends, because
//! the cookie stops working. It names its session (the id is no secret: the access token's `sid`
//! carries it too), so a refresh can check it before reading anything and hand the store the one
//! session the cookie's token must belong to ([`vouched_session`]).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::primitives::cors::AllowedOrigins;
use crate::primitives::encoding::b64url;
use crate::primitives::error::Error;
use crate::primitives::http::Request;

/// Name of the request header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The key CSRF tokens are computed with. Its value never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfKey([u8; 32]);

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    /// Derives the CSRF key from the signing key's seed (HMAC-SHA256 with a fixed label), so
    /// rotating the signing key also rotates CSRF tokens and nothing new has to be configured.
    pub fn derive(seed: &[u8; 32]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(seed).expect("HMAC takes any key length");
        mac.update(b"gatehouse csrf key v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, family_id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"session:");
        mac.update(family_id.as_bytes());
        b64url(&mac.finalize().into_bytes())
    }

    /// The CSRF token of session (family) `family_id`.
    pub fn token(&self, family_id: &str) -> String {
        format!("ghc_{family_id}.{}", self.mac(family_id))
    }

    /// Whether `presented` is the token of `family_id` (constant time). The older form,
    /// `ghc_<mac>` without the session id, still counts where the session is known (logout, the
    /// console), so a page opened before the upgrade can still end its session; a refresh,
    /// which learns its session from the token, needs the current form (the JS client fetches
    /// it from `GET /auth/session` when refused).
    pub fn matches(&self, family_id: &str, presented: &str) -> bool {
        if self.session_of(presented) == Some(family_id) {
            return true;
        }
        let expected = self.mac(family_id);
        presented.strip_prefix("ghc_").is_some_and(|mac| {
            mac.len() == expected.len() && bool::from(mac.as_bytes().ct_eq(expected.as_bytes()))
        })
    }

    /// The session `presented` is the token of, if its mac is right (compared in constant time).
    pub fn session_of<'a>(&self, presented: &'a str) -> Option<&'a str> {
        let (family_id, mac) = presented.strip_prefix("ghc_")?.rsplit_once('.')?;
        let expected = self.mac(family_id);
        (expected.len() == mac.len() && bool::from(expected.as_bytes().ct_eq(mac.as_bytes())))
            .then_some(family_id)
    }
}

/// Checks where a cookie-authenticated request comes from: an `Origin` in `ALLOWED_ORIGINS` or
/// Gatehouse's own origin, or, without an `Origin`, a browser's `Sec-Fetch-Site: same-origin`.
/// Anything else (`Origin: null`, an unlisted origin even with `Sec-Fetch-Site: same-origin`,
/// neither header) is refused.
pub fn check_origin(origins: &AllowedOrigins, req: &Request) -> Result<(), Error> {
    check_source(
        req,
        |origin| origins.allows(origin) || is_own_origin(req, origin),
        "origin not allowed",
    )
}

/// An `Origin` that `allowed` accepts, or, without an `Origin`, `Sec-Fetch-Site: same-origin`.
fn check_source(
    req: &Request,
    allowed: impl Fn(&str) -> bool,
    refusal: &'static str,
) -> Result<(), Error> {
    match req.header("origin") {
        Some(origin) if allowed(origin) => Ok(()),
        Some(_) => Err(Error::CsrfValidationFailed(refusal)),
        None if req
            .header("sec-fetch-site")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("same-origin")) =>
        {
            Ok(())
        }
        None => Err(Error::CsrfValidationFailed(
            "no Origin or Sec-Fetch-Site header",
        )),
    }
}

/// Checks that a request authenticated by the admin console's cookie comes from a page of
/// Gatehouse's own origin: `Origin` equal to it, or, without an `Origin`, `Sec-Fetch-Site:
/// same-origin`. `ALLOWED_ORIGINS` does not count: the sites listed there may refresh their
/// users' sessions, but never drive the admin console.
pub fn check_same_origin(req: &Request) -> Result<(), Error> {
    check_source(
        req,
        |origin| is_own_origin(req, origin),
        "not Gatehouse's own origin",
    )
}

/// The check of a request authenticated by the console cookie of session `family_id`: always
/// from Gatehouse's own origin, and, unless it is a `GET` or `HEAD`, with the session's CSRF
/// token in `X-CSRF-Token`.
pub fn check_console(key: &CsrfKey, req: &Request, family_id: &str) -> Result<(), Error> {
    check_same_origin(req)?;
    if req.method == "GET" || req.method == "HEAD" {
        return Ok(());
    }
    check_token(key, req, family_id)
}

fn check_token(key: &CsrfKey, req: &Request, family_id: &str) -> Result<(), Error> {
    match req.header(CSRF_HEADER).map(str::trim) {
        None | Some("") => Err(Error::CsrfValidationFailed("no X-CSRF-Token header")),
        Some(token) if key.matches(family_id, token) => Ok(()),
        Some(_) => Err(Error::CsrfValidationFailed("wrong X-CSRF-Token")),
    }
}

/// The session whose right token `X-CSRF-Token` holds.
fn vouched<'r>(key: &CsrfKey, req: &'r Request) -> Result<&'r str, Error> {
    match req.header(CSRF_HEADER).map(str::trim) {
        None | Some("") => Err(Error::CsrfValidationFailed("no X-CSRF-Token header")),
        Some(token) => key
            .session_of(token)
            .ok_or(Error::CsrfValidationFailed("wrong X-CSRF-Token")),
    }
}

/// Whether `origin` is the origin the request was sent to (Gatehouse served on the site's own
/// origin, which `ALLOWED_ORIGINS` need not list).
fn is_own_origin(req: &Request, origin: &str) -> bool {
    req.header("host").is_some_and(|host| {
        origin
            .strip_prefix(req.scheme())
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    })
}

/// The check of a request authenticated by a cookie whose session is not known yet: an allowed
/// origin, and a right CSRF token; returns the session the token belongs to. The cookie's token
/// must then be of that session: the caller hands it to the store as a condition, so a cookie
/// of another session changes nothing.
pub fn vouched_session<'r>(
    key: &CsrfKey,
    origins: &AllowedOrigins,
    req: &'r Request,
) -> Result<&'r str, Error> {
    check_origin(origins, req)?;
    vouched(key, req)
}

/// The full check for a request authenticated by the cookie of session `family_id`.
pub fn check(
    key: &CsrfKey,
    origins: &AllowedOrigins,
    req: &Request,
    family_id: &str,
) -> Result<(), Error> {
    check_origin(origins, req)?;
    check_token(key, req, family_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the checks read of a configuration with these `ALLOWED_ORIGINS`.
    struct Config {
        csrf_key: CsrfKey,
        allowed_origins: AllowedOrigins,
    }

    fn config() -> Config {
        Config {
            csrf_key: CsrfKey::derive(&[42u8; 32]),
            allowed_origins: AllowedOrigins::parse(Some(
                "https://site.example, http://localhost:3000",
            ))
            .unwrap(),
        }
    }

    #[test]
    fn token_is_per_session_stable_and_keyed() {
        let config = config();
        let a = config.csrf_key.token("fam_a");
        assert_eq!(a, config.csrf_key.token("fam_a"));
        assert_ne!(a, config.csrf_key.token("fam_b"));
        assert!(config.csrf_key.matches("fam_a", &a));
        assert!(!config.csrf_key.matches("fam_b", &a));
        assert!(!config.csrf_key.matches("fam_a", &a[..a.len() - 1]));
        assert!(!config.csrf_key.matches("fam_a", &a.replace("ghc_", "ghx_")));
        // The token names its session; another session's name under the same mac is refused.
        assert!(a.starts_with("ghc_fam_a."));
        assert_eq!(config.csrf_key.session_of(&a), Some("fam_a"));
        let b = config.csrf_key.token("fam_b");
        let (_, mac_b) = b.rsplit_once('.').unwrap();
        assert_eq!(
            config.csrf_key.session_of(&format!("ghc_fam_a.{mac_b}")),
            None
        );
        for bad in ["", "ghc_", "ghc_fam_a", "ghc_fam_a.", "ghc_.x", "fam_a.x"] {
            assert_eq!(config.csrf_key.session_of(bad), None, "{bad}");
        }
        // The older form (the mac alone): accepted where the session is known, never as a
        // session's name.
        let (_, mac_a) = a.rsplit_once('.').unwrap();
        let legacy = format!("ghc_{mac_a}");
        assert!(config.csrf_key.matches("fam_a", &legacy));
        assert!(!config.csrf_key.matches("fam_b", &legacy));
        assert_eq!(config.csrf_key.session_of(&legacy), None);
        let other = CsrfKey::derive(&[9u8; 32]);
        assert_ne!(other.token("fam_a"), a);
        assert_eq!(other.session_of(&a), None);
        assert!(!other.matches("fam_a", &legacy));
        assert_eq!(format!("{other:?}"), "CsrfKey(..)");
    }

    #[test]
    fn the_console_needs_its_own_origin_and_a_token_on_changes() {
        let key = config().csrf_key;
        let token = key.token("fam_c");
        let own = |method: &str| {
            Request::new(method, "/admin/users")
                .with_header("host", "gate.example")
                .with_header("origin", "https://gate.example")
        };
        let check = |r: &Request| check_console(&key, r, "fam_c").is_ok();
        // Reads: the origin only.
        assert!(check(&own("GET")));
        assert!(check(
            &Request::new("GET", "/admin/users").with_header("sec-fetch-site", "same-origin")
        ));
        assert!(!check(&Request::new("GET", "/admin/users")));
        // A listed site is not the console's origin.
        let listed = Request::new("GET", "/admin/users")
            .with_header("host", "gate.example")
            .with_header("origin", "https://site.example");
        assert!(!check(&listed));
        assert!(!check(
            &Request::new("GET", "/admin/users").with_header("sec-fetch-site", "same-site")
        ));
        // Changes: the origin and the session's token.
        assert!(!check(&own("POST")));
        assert!(!check(&own("DELETE").with_header(CSRF_HEADER, "ghc_wrong")));
        assert!(!check(
            &own("POST").with_header(CSRF_HEADER, &key.token("fam_other"))
        ));
        assert!(check(&own("POST").with_header(CSRF_HEADER, &token)));
        assert!(check(&own("PUT").with_header(CSRF_HEADER, &token)));
        assert!(!check(&listed.clone().with_header(CSRF_HEADER, &token)));
    }

    #[test]
    fn origin_and_token_are_both_required() {
        let config = config();
        let token = config.csrf_key.token("fam_a");
        let base = Request::new("POST", "/auth/refresh");
        let code = |r: &Request| {
            check(&config.csrf_key, &config.allowed_origins, r, "fam_a").map_err(|e| e.to_string())
        };
        // Neither.
        assert!(code(&base).is_err());
        // Token without an origin.
        assert!(code(&base.clone().with_header(CSRF_HEADER, &token)).is_err());
        // Allowed origin without a token.
        assert!(code(&base.clone().with_header("origin", "https://site.example")).is_err());
        // Unlisted origin with the token.
        let evil = base
            .clone()
            .with_header("origin", "https://evil.example")
            .with_header(CSRF_HEADER, &token);
        assert!(code(&evil).is_err());
        // `Origin: null` (sandboxed frames, some redirects).
        let null = base
            .clone()
            .with_header("origin", "null")
            .with_header(CSRF_HEADER, &token);
        assert!(code(&null).is_err());
        // Both right.
        let good = base
            .clone()
            .with_header("origin", "https://site.example")
            .with_header(CSRF_HEADER, &token);
        assert!(code(&good).is_ok());
        // Same origin as reported by the browser, no Origin.
        let same = base
            .clone()
            .with_header("sec-fetch-site", "same-origin")
            .with_header(CSRF_HEADER, &token);
        assert!(code(&same).is_ok());
        // An unlisted Origin is refused even when the browser says same-origin.
        let forged = base
            .clone()
            .with_header("sec-fetch-site", "same-origin")
            .with_header("origin", "https://evil.example")
            .with_header(CSRF_HEADER, &token);
        assert!(code(&forged).is_err());
        // Gatehouse's own origin (served on the site's domain) needs no listing.
        let own = base
            .clone()
            .with_header("host", "gate.example")
            .with_header("origin", "https://gate.example")
            .with_header(CSRF_HEADER, &token);
        assert!(code(&own).is_ok());
        let own_on_http = base
            .clone()
            .with_header("host", "gate.example")
            .with_header("origin", "http://gate.example")
            .with_header(CSRF_HEADER, &token);
        assert!(
            code(&own_on_http).is_err(),
            "another scheme is another origin"
        );
        // same-site is not enough (a sibling subdomain could be hostile).
        let sibling = base
            .with_header("sec-fetch-site", "same-site")
            .with_header(CSRF_HEADER, &token);
        assert!(code(&sibling).is_err());
    }

    #[test]
    fn a_refresh_learns_its_session_from_the_token_after_the_origin() {
        let config = config();
        let vouched = |r: &Request| {
            vouched_session(&config.csrf_key, &config.allowed_origins, r)
                .map(str::to_string)
                .map_err(|e| e.to_string())
        };
        let token = config.csrf_key.token("fam_a");
        let from_site =
            Request::new("POST", "/auth/refresh").with_header("origin", "https://site.example");
        assert_eq!(
            vouched(&from_site.clone().with_header(CSRF_HEADER, &token)),
            Ok("fam_a".to_string())
        );
        assert!(vouched(&from_site).is_err());
        assert!(vouched(
            &from_site
                .clone()
                .with_header(CSRF_HEADER, "ghc_fam_a.wrong")
        )
        .is_err());
        let evil = Request::new("POST", "/auth/refresh")
            .with_header("origin", "https://evil.example")
            .with_header(CSRF_HEADER, &token);
        assert!(vouched(&evil).is_err());
    }
}
