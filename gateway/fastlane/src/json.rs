//! A JSON tree borrowing its strings from the answer's bytes: parsing an answer allocates
//! only its arrays and objects (and the few strings with escapes), not every string and map
//! node as `serde_json::Value` does. Parsing and validation are serde_json's.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// An object's members in document order. A key given twice: `get` finds the last one, as
/// Python's parsers keep it; walks over every member see both (only more to check).
pub type Object<'a> = Vec<(Cow<'a, str>, Json<'a>)>;

#[derive(Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// A number (no check reads one).
    Number,
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

impl<'a> Json<'a> {
    pub fn parse(text: &'a [u8]) -> Option<Json<'a>> {
        // UTF-8 checked once for the whole text, rather than string by string
        serde_json::from_str(std::str::from_utf8(text).ok()?).ok()
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(members) => Some(members),
            _ => None,
        }
    }
}

/// The value of `key` in an object (the last one if the key repeats).
pub fn get<'j, 'a>(object: &'j Object<'a>, key: &str) -> Option<&'j Json<'a>> {
    object.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The string value of `key` in an object.
pub fn get_str<'j>(object: &'j Object<'_>, key: &str) -> Option<&'j str> {
    get(object, key).and_then(Json::as_str)
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Json<'de>, E> {
        Ok(Json::Number)
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned()))) // a string with escapes
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(8);
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(members))
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// An object's key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_borrows() {
        let text = br#"{"a": "x", "b\u0041": ["y\n", 1, -2.5e3, true, null, {}], "a": "z"}"#;
        let json = Json::parse(text).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(get_str(object, "a"), Some("z")); // the last of a repeated key
        assert!(matches!(&object[0].1, Json::Str(Cow::Borrowed("x"))));
        let Some(Json::Array(items)) = get(object, "bA") else {
            panic!()
        };
        assert_eq!(items[0], Json::Str(Cow::Owned("y\n".into())));
        assert_eq!(
            &items[1..5],
            &[Json::Number, Json::Number, Json::Bool(true), Json::Null]
        );
        assert_eq!(items[5], Json::Object(vec![]));
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            &b"{"[..],
            b"{\"a\":1,}",
            b"[1] x",
            b"NaN",
            b"{\"a\":\"\xff\"}",
            b"\"\\ud800\"",
        ] {
            assert!(Json::parse(bad).is_none(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Json::parse(deep.as_bytes()).is_none()); // serde_json's depth limit
    }
}
