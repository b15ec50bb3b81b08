//! Cookies: reading them from `Cookie` headers and writing `Set-Cookie` values.

/// A cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations and same-site requests (the default).
    Lax,
    /// Same-site requests only.
    Strict,
    /// Sent cross-site too (needs `Secure`; blocked by browsers that block third-party cookies).
    None,
}

impl SameSite {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}

/// The values of cookie `name` in `Cookie` header values, in the order sent.
pub fn values<'a, 'n, I>(
    cookie_headers: I,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n, I>
where
    I: Iterator<Item = &'a str>,
{
    cookie_headers
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value for an HttpOnly, Secure cookie; `max_age_secs` 0 deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: i64,
    same_site: SameSite,
) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite={}",
        same_site.as_str()
    )
}
