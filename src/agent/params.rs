//! Method parameters: serde into each method's own type, with errors that name the field.
//!
//! [`parse_params`] turns a request's raw parameters into a method's type (which refuses
//! unknown fields), saying which field is wrong and what it should have been; [`Text`] and
//! [`Pairs`] are the field types with the protocol's own checks (no NUL byte; an object of
//! strings in its order); [`text_or_base64`] and [`at_most`] check what serde cannot.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::protocol::Failure;

/// A method's parameters as its type `T` (which denies unknown fields); the error names the
/// field and what it should have been. A `null` counts as absent.
pub fn parse_params<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, Failure> {
    let params: Map<String, Value> = params
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .collect();
    serde_path_to_error::deserialize(Value::Object(params)).map_err(|err| {
        let path = err.path().to_string();
        Failure::bad(explain(&path, &err.into_inner().to_string()))
    })
}

/// serde's words, as the protocol says them.
fn explain(path: &str, inner: &str) -> String {
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return match path {
            "." | "" => format!("`{field}` is missing"),
            parent => format!("`{parent}.{field}` is missing"),
        };
    }
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let takes = expected
            .strip_prefix(", expected one of ")
            .or_else(|| expected.strip_prefix(", expected "))
            .unwrap_or("nothing");
        let takes = if takes.starts_with("there are no fields") {
            "nothing"
        } else {
            takes
        };
        return format!("unknown parameter `{field}` (this method takes {takes})");
    }
    if let Some((_, expected)) = inner.rsplit_once(", expected ") {
        let expected = match expected {
            "a boolean" => "true or false",
            "u64" | "u32" | "usize" => "a whole number of 0 or more",
            "a sequence" => "an array",
            "a map" => "an object",
            "a string" => "a string",
            other => other,
        };
        return format!("`{path}` must be {expected}");
    }
    // A field's own check.
    match inner.starts_with("must") {
        true => format!("`{path}` {inner}"),
        false => format!("`{path}`: {inner}"),
    }
}

/// A string field without NUL bytes (no command, path or name can hold one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.contains('\0') {
            return Err(serde::de::Error::custom("must not contain a NUL byte"));
        }
        Ok(Self(text))
    }
}

impl Text {
    /// The text, `None` when empty (an empty selector is no selector).
    pub fn present(this: Option<Self>) -> Option<String> {
        this.map(|text| text.0).filter(|text| !text.is_empty())
    }
}

/// An object of strings, in its order: `{"NAME": "value", …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Text>()?.0;
                    if key.is_empty() || key.contains(['=', '\0']) {
                        return Err(serde::de::Error::custom(format!(
                            "`{}` is not a usable variable name and value (no `=`, no NUL)",
                            key.escape_debug()
                        )));
                    }
                    pairs.push((key, value));
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Bytes given as text (`name`) or as base64 (`name_b64`), not both.
pub fn text_or_base64(
    name: &str,
    text: Option<String>,
    b64: Option<String>,
) -> Result<Option<Vec<u8>>, Failure> {
    use base64::Engine as _;
    match (text, b64) {
        (Some(_), Some(_)) => Err(Failure::bad(format!(
            "give `{name}` or `{name}_b64`, not both"
        ))),
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Some)
            .map_err(|err| Failure::bad(format!("`{name}_b64` is not base64: {err}"))),
        (None, None) => Ok(None),
    }
}

/// `value` if it is at most `max`, else a `bad_request` naming `name`.
pub fn at_most(name: &str, value: Option<u64>, max: u64) -> Result<Option<u64>, Failure> {
    match value {
        Some(value) if value > max => Err(Failure::bad(format!("`{name}` must be at most {max}"))),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: Text,
        n: Option<u64>,
        flag: Option<bool>,
        list: Option<Vec<Text>>,
        env: Option<Pairs>,
    }

    fn parse(json: Value) -> Result<Sample, String> {
        let map = json.as_object().cloned().unwrap_or_default();
        parse_params::<Sample>(map).map_err(|failure| failure.message)
    }

    #[test]
    fn params_name_the_field_and_what_it_should_be() {
        let texts: Vec<String> = [
            json!({}),
            json!({"name": 3}),
            json!({"name": "a\u{0}b"}),
            json!({"name": "a", "n": -1}),
            json!({"name": "a", "flag": "yes"}),
            json!({"name": "a", "list": "x"}),
            json!({"name": "a", "list": ["x", 1]}),
            json!({"name": "a", "env": {"A": 1}}),
            json!({"name": "a", "env": {"A=B": "x"}}),
            json!({"name": "a", "env": []}),
            json!({"name": "a", "bogus": 1}),
        ]
        .into_iter()
        .map(|json| parse(json).unwrap_err())
        .collect();
        insta::assert_snapshot!(texts.join("\n"), @r"
        `name` is missing
        `name` must be a string
        `name` must not contain a NUL byte
        `n` must be a whole number of 0 or more
        `flag` must be true or false
        `list` must be an array
        `list[1]` must be a string
        `env.A` must be a string
        `env`: `A=B` is not a usable variable name and value (no `=`, no NUL)
        `env` must be an object of strings
        unknown parameter `bogus` (this method takes `name`, `n`, `flag`, `list`, `env`)
        ");
        // A null is no value.
        let sample = parse(json!({"name": "a", "n": null, "env": {"X": "1"}})).unwrap();
        assert_eq!(sample.n, None);
        assert_eq!(sample.env.unwrap().0, vec![("X".into(), "1".into())]);
    }

    #[test]
    fn bytes_come_as_text_or_base64() {
        assert_eq!(
            text_or_base64("x", None, Some("AAEC/w==".into())).unwrap(),
            Some(vec![0, 1, 2, 255])
        );
        insta::assert_snapshot!(text_or_base64("x", Some("a".into()), Some("YQ==".into())).unwrap_err().message, @"give `x` or `x_b64`, not both");
        insta::assert_snapshot!(at_most("wait_ms", Some(40_000), 30_000).unwrap_err().message, @"`wait_ms` must be at most 30000");
    }
}
