//! The rules of an account's own fields: email and display name.

use crate::domain::vars::valid_role;
use crate::primitives::error::Error;

/// Trims and lower-cases an email and checks its shape.
pub fn normalize_email(raw: &str) -> Result<String, Error> {
    let email = raw.trim().to_lowercase();
    let valid = email.chars().count() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(Error::BadRequest("email: not a valid email address".into()))
    }
}

/// Checks a display name: at most 200 characters, no control characters; blank means none.
pub fn normalize_name(raw: Option<&str>) -> Result<Option<String>, Error> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "name: at most 200 characters, no control characters".into(),
        ));
    }
    Ok(Some(name.to_string()))
}

/// Most roles one account holds.
pub const MAX_ROLES: usize = 32;

/// An account's roles: 1–64 of `a-z 0-9 _ - .` each, never `anonymous` (the role of no
/// caller), each once in the order given, at most [`MAX_ROLES`].
pub fn role_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if !valid_role(name) || name == "anonymous" {
            return Err(Error::BadRequest(format!(
                "roles: {name:?} is not a role name (1-64 of a-z 0-9 _ - ., not \"anonymous\")"
            )));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    if out.len() > MAX_ROLES {
        return Err(Error::BadRequest(format!("roles: at most {MAX_ROLES}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_at_most_254_characters_whatever_their_bytes() {
        let at = "@example.com";
        let local = |n: usize, c: char| std::iter::repeat_n(c, n).collect::<String>();
        assert!(normalize_email(&format!("{}{at}", local(254 - at.len(), 'a'))).is_ok());
        assert!(normalize_email(&format!("{}{at}", local(255 - at.len(), 'a'))).is_err());
        assert!(normalize_email(&format!("{}{at}", local(254 - at.len(), 'é'))).is_ok());
        assert!(normalize_email(&format!("{}{at}", local(255 - at.len(), 'é'))).is_err());
    }
}
