//! Strict JSON for policy decisions: a document with a repeated object member is refused, since
//! readers disagree on which copy wins (most keep the last, some the first, a streaming
//! validator may check one and the CMS read the other).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictError {
    /// Not JSON at all.
    Syntax,
    /// An object repeats this member name.
    Duplicate(String),
}

/// Parses `bytes` as JSON, refusing repeated members at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Strict {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match (result, duplicate.into_inner()) {
        (_, Some(name)) => Err(StrictError::Duplicate(name)),
        (Ok(value), None) => Ok(value),
        (Err(_), None) => Err(StrictError::Syntax),
    }
}

#[derive(Clone, Copy)]
struct Strict<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(key);
                return Err(de::Error::custom("duplicate member"));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// The first object member name, at any depth, for which `refused` holds, with its dotted path.
pub fn find_member(value: &Value, refused: &dyn Fn(&str) -> bool) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if refused(k) {
                Some(k.clone())
            } else {
                find_member(v, refused).map(|inner| format!("{k}.{inner}"))
            }
        }),
        Value::Array(items) => items.iter().find_map(|v| find_member(v, refused)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordinary_documents_parse_as_serde_json_does() {
        for text in [
            r#"{"a":1,"b":[true,null,"x",1.5,-3],"c":{"d":{}}}"#,
            "[]",
            "12",
            r#""\u0024where""#,
        ] {
            let ours = parse(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn repeated_members_are_refused_at_any_depth() {
        assert_eq!(
            parse(br#"{"a":1,"a":2}"#),
            Err(StrictError::Duplicate("a".into()))
        );
        assert_eq!(
            parse(br#"{"data":{"title":"x","author":"me","author":"you"}}"#),
            Err(StrictError::Duplicate("author".into()))
        );
        assert_eq!(
            parse(br#"[{"x":[{"k":1,"k":1}]}]"#),
            Err(StrictError::Duplicate("k".into()))
        );
        // An escaped spelling is the same member.
        assert_eq!(
            parse(br#"{"_id":1,"\u005fid":2}"#),
            Err(StrictError::Duplicate("_id".into()))
        );
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_are_refused() {
        for text in ["{", "{'a':1}", "{\"a\":1} x", "", "nul", "{\"a\":1,}"] {
            assert_eq!(parse(text.as_bytes()), Err(StrictError::Syntax), "{text}");
        }
    }

    #[test]
    fn members_are_found_anywhere() {
        let doc = json!({"data": {"tags": [{"meta": {"$where": "1"}}]}});
        assert_eq!(
            find_member(&doc, &|k| k.starts_with('$')),
            Some("data.tags.meta.$where".into())
        );
        assert_eq!(find_member(&doc, &|k| k == "nope"), None);
    }
}
