//! CORS: which pages may read Gatehouse's answers and send it credentialed requests.
//!
//! One function, [`apply`], adds the CORS headers to the head of every response — buffered or
//! streamed, success or error — at the single exit all responses pass through, so a page can
//! read a 401's or a 429's error code as well as a 200. [`preflight`] answers `OPTIONS`.
//!
//! Only origins listed in `ALLOWED_ORIGINS` get CORS headers (with
//! `Access-Control-Allow-Credentials: true`); every other origin gets none at all, so the
//! browser hides the answer from it. `Vary: Origin` goes on every response, so a cache never
//! serves one origin's headers to another.

use crate::primitives::error::ConfigError;
use crate::primitives::http::{Request, Response};

/// Methods announced in preflight answers.
pub const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
/// Request headers announced in preflight answers.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-CSRF-Token";
/// Response headers a page may read besides the CORS-safelisted ones.
pub const EXPOSE_HEADERS: &str = "Retry-After, WWW-Authenticate";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_SECS: u32 = 600;

/// The origins listed in `ALLOWED_ORIGINS`, lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// Parses `ALLOWED_ORIGINS`: comma-separated origins, each `http(s)://host[:port]` with no path,
    /// no wildcard and no credentials; stored lower-case.
    pub fn parse(raw: Option<&str>) -> Result<Self, ConfigError> {
        let mut origins = Vec::new();
        for item in raw
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let bad = |why: &str| {
                ConfigError::new(
                    "ALLOWED_ORIGINS",
                    format!("{item:?} {why} (expected e.g. https://www.example.com or http://localhost:3000)"),
                )
            };
            let origin = item.trim_end_matches('/').to_ascii_lowercase();
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(|| bad("is not an http(s) origin"))?;
            if rest.is_empty()
                || rest.contains(['/', '?', '#', '@', '*', ' '])
                || rest.starts_with(':')
                || rest.ends_with(':')
            {
                return Err(bad(
                    "is not an origin (scheme://host[:port], no path or wildcard)",
                ));
            }
            if let Some((_, port)) = rest.rsplit_once(':').filter(|(h, _)| !h.ends_with(']')) {
                if !rest.starts_with('[') && port.parse::<u16>().is_err() {
                    return Err(bad("has an invalid port"));
                }
            }
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Self(origins))
    }

    /// The listed origins, lower-case, in the order given.
    pub fn list(&self) -> &[String] {
        &self.0
    }

    /// Whether `origin` (an `Origin` header's value) is listed.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim();
        self.0.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

fn has(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k == name)
}

/// Adds the CORS headers for a request's `Origin` header to a response's headers (names
/// lower-case). Headers already set for a public resource (`access-control-allow-origin: *`) are
/// kept; applying twice changes nothing.
pub fn apply(origins: &AllowedOrigins, origin: Option<&str>, headers: &mut Vec<(String, String)>) {
    if !headers
        .iter()
        .any(|(k, v)| k == "vary" && v.to_ascii_lowercase().contains("origin"))
    {
        headers.push(("vary".into(), "Origin".into()));
    }
    if has(headers, "access-control-allow-origin") {
        return;
    }
    let Some(origin) = origin.filter(|o| origins.allows(o)) else {
        return;
    };
    headers.push(("access-control-allow-origin".into(), origin.to_string()));
    headers.push(("access-control-allow-credentials".into(), "true".into()));
    headers.push((
        "access-control-expose-headers".into(),
        EXPOSE_HEADERS.into(),
    ));
}

/// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), or `None`
/// when `req` is not one. Unlisted origins get a 204 without CORS headers: the browser then
/// refuses to send the real request.
pub fn preflight(origins: &AllowedOrigins, req: &Request) -> Option<Response> {
    if req.method != "OPTIONS" || req.header("access-control-request-method").is_none() {
        return None;
    }
    let mut response = Response::empty(204);
    if req.header("origin").is_some_and(|o| origins.allows(o)) {
        response = response
            .with_header("access-control-allow-methods", ALLOW_METHODS)
            .with_header("access-control-allow-headers", ALLOW_HEADERS)
            .with_header("access-control-max-age", &MAX_AGE_SECS.to_string());
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AllowedOrigins {
        AllowedOrigins::parse(Some("https://site.example")).unwrap()
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn listed_origin_gets_credentials_others_nothing() {
        let config = config();
        let req = Request::new("GET", "/auth/me").with_header("origin", "https://site.example");
        let mut headers = Vec::new();
        apply(&config, req.header("origin"), &mut headers);
        assert_eq!(
            get(&headers, "access-control-allow-origin"),
            Some("https://site.example")
        );
        assert_eq!(
            get(&headers, "access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(get(&headers, "vary"), Some("Origin"));

        for origin in ["https://evil.example", "null", "https://site.example.evil"] {
            let req = Request::new("GET", "/auth/me").with_header("origin", origin);
            let mut headers = Vec::new();
            apply(&config, req.header("origin"), &mut headers);
            assert_eq!(get(&headers, "vary"), Some("Origin"));
            assert!(
                !headers
                    .iter()
                    .any(|(k, _)| k.starts_with("access-control-")),
                "{origin}"
            );
        }
    }

    #[test]
    fn public_resources_keep_their_wildcard() {
        let config = config();
        let req = Request::new("GET", "/client/gatehouse.js")
            .with_header("origin", "https://site.example");
        let mut headers = vec![("access-control-allow-origin".into(), "*".into())];
        apply(&config, req.header("origin"), &mut headers);
        assert_eq!(get(&headers, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&headers, "access-control-allow-credentials"), None);
    }

    #[test]
    fn preflights() {
        let config = config();
        assert!(preflight(&config, &Request::new("OPTIONS", "/auth/login")).is_none());
        let ok = preflight(
            &config,
            &Request::new("OPTIONS", "/auth/refresh")
                .with_header("origin", "https://site.example")
                .with_header("access-control-request-method", "POST"),
        )
        .unwrap();
        assert_eq!(ok.status, 204);
        assert_eq!(
            get(&ok.headers, "access-control-allow-headers"),
            Some(ALLOW_HEADERS)
        );
        assert_eq!(get(&ok.headers, "access-control-max-age"), Some("600"));
        let no = preflight(
            &config,
            &Request::new("OPTIONS", "/auth/refresh")
                .with_header("origin", "https://evil.example")
                .with_header("access-control-request-method", "POST"),
        )
        .unwrap();
        assert!(!no
            .headers
            .iter()
            .any(|(k, _)| k.starts_with("access-control-")));
    }
}
