//! The rules of an account's own fields: email and display name.

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
