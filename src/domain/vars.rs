//! Reading Worker vars and secrets, and the name rules they share (roles).

use std::fmt;

use crate::primitives::error::ConfigError;

/// Looks up a variable by name; `None` when unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The trimmed value of `var`; `None` when unset or blank.
pub fn get(lookup: Lookup<'_>, var: &str) -> Option<String> {
    lookup(var)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A whole number in `min..=max` from `var`, or `default` when unset.
pub fn int_in<T>(
    lookup: Lookup<'_>,
    var: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = get(lookup, var) else {
        return Ok(default);
    };
    let value: T = raw
        .parse()
        .map_err(|_| ConfigError::new(var, format!("expected a whole number, got {raw:?}")))?;
    if value < min || value > max {
        return Err(ConfigError::new(
            var,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value)
}

/// Whether `role` is a valid role name: 1–64 of `a-z 0-9 _ - .`.
pub fn valid_role(role: &str) -> bool {
    !role.is_empty()
        && role.len() <= 64
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
}
