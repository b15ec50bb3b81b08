//! JSON request bodies: one parser and one mapping of every way a body can be wrong to an error.

use serde_json::{Map, Value};

use crate::primitives::error::Error;
use crate::primitives::http::Request;

/// Parses a JSON object body of at most `max_bytes`. `allow_empty`: an empty body counts as
/// `{}`.
pub fn json_body(
    req: &Request,
    max_bytes: usize,
    allow_empty: bool,
) -> Result<Map<String, Value>, Error> {
    if req.body.len() > max_bytes {
        return Err(Error::PayloadTooLarge(max_bytes));
    }
    let content_type = req.media_type();
    if content_type
        .as_deref()
        .is_some_and(|media| media != "application/json")
    {
        return Err(Error::UnsupportedMediaType);
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        if allow_empty {
            return Ok(Map::new());
        }
        return Err(if content_type.is_none() {
            Error::UnsupportedMediaType
        } else {
            Error::InvalidJson
        });
    }
    if content_type.is_none() {
        return Err(Error::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::BadRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(_) => Err(Error::InvalidJson),
    }
}

/// A required string member.
pub fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(Error::BadRequest(format!("{name}: required"))),
        Some(_) => Err(Error::BadRequest(format!("{name}: expected a string"))),
    }
}

/// An optional string member (`null` counts as absent).
pub fn optional_string<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::BadRequest(format!(
            "{name}: expected a string or null"
        ))),
    }
}

/// An optional boolean member (absent or `null`: `false`).
pub fn optional_bool(body: &Map<String, Value>, name: &str) -> Result<bool, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::BadRequest(format!("{name}: expected true or false"))),
    }
}
