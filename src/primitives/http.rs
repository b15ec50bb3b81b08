//! The core's own small HTTP types: what the adapter hands in and gets back.

use crate::primitives::cookies;
use crate::primitives::error::{Error, TokenRejection};

/// Reads headers written as one `name\nvalue\n…` string (how the Workers adapter moves them
/// across the boundary in one call).
pub fn headers_from_flat(flat: &str) -> Vec<(String, String)> {
    let mut parts = flat.split('\n');
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        pairs.push((name.to_string(), value.to_string()));
    }
    pairs
}

/// Writes headers as one `name\nvalue\n…` string. A line break or NUL in a name or value
/// would let one header become two: refused (the runtime refuses them in headers anyway).
pub fn flat_headers(pairs: &[(String, String)]) -> Result<String, String> {
    let mut flat = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (name, value) in pairs {
        if name.contains(['\n', '\r', '\0']) || value.contains(['\n', '\r', '\0']) {
            return Err(format!("the header {name:?} holds a line break or NUL"));
        }
        flat.push_str(name);
        flat.push('\n');
        flat.push_str(value);
        flat.push('\n');
    }
    Ok(flat)
}

/// A request method. The common ones are variants; any other is kept as sent (upper-cased), so
/// an unknown method reaches the route table and gets its `405`, never turns into `GET`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    #[default]
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other method, upper-cased.
    Other(Box<str>),
}

impl Method {
    /// Reads a method name, case-insensitively.
    pub fn parse(raw: &str) -> Self {
        let known = [
            ("GET", Self::Get),
            ("HEAD", Self::Head),
            ("POST", Self::Post),
            ("PUT", Self::Put),
            ("PATCH", Self::Patch),
            ("DELETE", Self::Delete),
            ("OPTIONS", Self::Options),
        ];
        known
            .into_iter()
            .find(|(name, _)| raw.eq_ignore_ascii_case(name))
            .map_or_else(|| Self::Other(raw.to_ascii_uppercase().into()), |(_, m)| m)
    }

    /// The method's name, upper-case.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(name) => name,
        }
    }

    /// `GET` and `HEAD`: the methods that only read.
    pub fn is_read(&self) -> bool {
        matches!(self, Self::Get | Self::Head)
    }
}

impl From<&str> for Method {
    fn from(raw: &str) -> Self {
        Self::parse(raw)
    }
}

impl PartialEq<str> for Method {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An incoming request, already size-limited by the adapter. `Debug` shows no header value,
/// query or body: they carry credentials.
#[derive(Clone, Default)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL path, still percent-encoded, e.g. `/auth/login`.
    pub path: String,
    /// The raw query string without its `?` (empty when there is none).
    pub query: String,
    /// The URL's scheme (`https`, or `http` in local development); empty: `https`.
    pub scheme: String,
    /// Header names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body bytes (empty when there was none).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &if self.query.is_empty() { "" } else { "…" })
            .field("headers", &RedactedHeaders(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Formats headers as their names only, each value shown as `…`.
pub struct RedactedHeaders<'a>(pub &'a [(String, String)]);

impl std::fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, _)| (name, "…")))
            .finish()
    }
}

impl Request {
    /// A request with no headers and no body; `target` is a path with an optional `?query`.
    pub fn new(method: &str, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method: Method::parse(method),
            path: path.to_string(),
            query: query.to_string(),
            ..Self::default()
        }
    }

    /// Adds a header (builder style; the name is lower-cased).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets a JSON body and its content type.
    pub fn with_json(mut self, body: &serde_json::Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.with_header("content-type", "application/json")
    }

    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name` from the `Cookie` header(s) (the first, if several).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies(name).next()
    }

    /// Every value of cookie `name`, in the order sent.
    pub fn cookies<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let headers = self
            .headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .map(|(_, v)| v.as_str());
        cookies::values(headers, name)
    }

    /// The bearer token of the `Authorization` header: `Ok(None)` when there is no such header,
    /// `Err` when there is one but it is not `Bearer <token>`.
    pub fn bearer(&self) -> Result<Option<&str>, Error> {
        let Some(value) = self.header("authorization") else {
            return Ok(None);
        };
        match value.trim().split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Ok(Some(token.trim()))
            }
            _ => Err(Error::InvalidToken(TokenRejection::Malformed)),
        }
    }

    /// The media type of the `Content-Type` header, lower-case and without parameters
    /// (`None` when there is no such header).
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The scheme the request came in with (`https` unless the adapter said otherwise).
    pub fn scheme(&self) -> &str {
        if self.scheme.is_empty() {
            "https"
        } else {
            &self.scheme
        }
    }

    /// The client's IP address as Cloudflare reports it.
    pub fn client_ip(&self) -> Option<&str> {
        self.header("cf-connecting-ip")
    }

    /// The `User-Agent`, cut to 256 characters.
    pub fn user_agent(&self) -> Option<String> {
        self.header("user-agent")
            .map(|ua| ua.chars().take(256).collect())
    }
}

/// A response for the adapter to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers to send, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// A line for the worker's log (an error's cause), never a secret; not sent.
    pub log: Option<String>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
                ("x-content-type-options".into(), "nosniff".into()),
            ],
            body: body.to_string().into_bytes(),
            log: None,
        }
    }

    /// An empty response.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: vec![("cache-control".into(), "no-store".into())],
            body: Vec::new(),
            log: None,
        }
    }

    /// The JSON error response for `err`, with its log line.
    pub fn error(err: &Error) -> Self {
        let mut response = Self::json(err.status(), &err.to_json());
        if let Some((name, value)) = err.header() {
            response = response.with_header(name, &value);
        }
        response.log = Some(err.to_string());
        response
    }

    /// Sets a header, replacing any of the same name.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(k, _)| *k != name);
        self.headers.push((name, value.to_string()));
        self
    }

    /// Adds a header, keeping others of the same name (for `set-cookie`).
    pub fn append_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (tests and the self-test).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_headers_round_trip_and_refuse_line_breaks() {
        let pairs = vec![
            (
                "content-type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            ),
            ("x-empty".to_string(), String::new()),
            ("set-cookie".to_string(), "a=b; Path=/".to_string()),
        ];
        let flat = flat_headers(&pairs).unwrap();
        assert_eq!(headers_from_flat(&flat), pairs);
        assert_eq!(headers_from_flat(""), vec![]);
        for bad in ["a\nevil: 1", "a\rb", "a\0b"] {
            assert!(
                flat_headers(&[("x".into(), bad.into())]).is_err(),
                "{bad:?}"
            );
            assert!(
                flat_headers(&[(bad.into(), "v".into())]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cookies_are_found_among_many() {
        let req = Request::new("GET", "/")
            .with_header("Cookie", "a=1; gatehouse_refresh=abc ; b=2")
            .with_header("Cookie", "c=3");
        assert_eq!(req.cookie("gatehouse_refresh"), Some("abc"));
        assert_eq!(req.cookie("c"), Some("3"));
        assert_eq!(req.cookie("gatehouse"), None);
    }

    #[test]
    fn bearer_parsing() {
        let req = |v: &str| Request::new("GET", "/").with_header("authorization", v);
        assert_eq!(req("Bearer abc").bearer().unwrap(), Some("abc"));
        assert_eq!(req("bearer  abc ").bearer().unwrap(), Some("abc"));
        assert!(req("Basic abc").bearer().is_err());
        assert!(req("Bearer ").bearer().is_err());
        assert_eq!(Request::new("GET", "/").bearer().unwrap(), None);
    }
}
