//! Request bodies: JSON read into a type, with a bad one answered by the field
//! that is wrong.

use crate::error::ApiError;

/// Parses a JSON body, naming the offending field when it is wrong.
///
/// The field is the path serde was at when it failed (`environment`,
/// `budgets.max_calls`, `scopes[2]`). A missing or unknown field fails at its
/// parent, so its name is appended from the message; anything else at the top
/// (not an object, trailing bytes, bad syntax) names `body`.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde would also read a struct from an array of its fields in order; a body is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{') {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = e.inner().to_string();
        // `.` is the top; `?` is where serde could not say (the input ended early).
        let path = match e.path().to_string() {
            p if p == "?" => ".".to_owned(),
            p => p,
        };
        // An unknown field's path already ends with it; a missing one's does not.
        let named = message.starts_with("missing field `").then(|| message.split('`').nth(1)).flatten();
        let field = match (path.as_str(), named) {
            (".", Some(name)) => name.to_owned(),
            (".", None) => "body".to_owned(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            (at, None) => at.to_owned(),
        };
        ApiError::field(&field, message)
    })?;
    de.end().map_err(|e| ApiError::field("body", e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use warden_store::directory::Environment;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        max_calls: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        environment: Environment,
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        budgets: Option<Inner>,
    }

    fn field_of(body: &str) -> String {
        match parse_body::<Outer>(body.as_bytes()).unwrap_err() {
            ApiError::InvalidRequest { fields, .. } => fields[0].field.clone(),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn bad_values_name_their_field_not_the_value() {
        assert_eq!(field_of(r#"{"environment":"moon"}"#), "environment");
        assert_eq!(field_of(r#"{"environment":7}"#), "environment");
        assert_eq!(field_of(r#"{"environment":"prod","scopes":["a",3]}"#), "scopes[1]");
        assert_eq!(field_of(r#"{"environment":"prod","budgets":{"max_calls":-1}}"#), "budgets.max_calls");
    }

    #[test]
    fn missing_and_unknown_fields_are_named_with_their_parent() {
        assert_eq!(field_of(r#"{}"#), "environment");
        assert_eq!(field_of(r#"{"environment":"prod","colour":1}"#), "colour");
        assert_eq!(field_of(r#"{"environment":"prod","budgets":{}}"#), "budgets.max_calls");
        assert_eq!(field_of(r#"{"environment":"prod","budgets":{"max_calls":1,"x":2}}"#), "budgets.x");
    }

    #[test]
    fn malformed_bodies_name_the_body() {
        assert_eq!(field_of("[1]"), "body");
        assert_eq!(field_of("{\"environment\":\"prod\"} trailing"), "body");
        assert_eq!(field_of("{"), "body");
        let good: Outer =
            parse_body(br#" {"environment":"prod","scopes":["a"],"budgets":{"max_calls":3}}"#).unwrap();
        assert_eq!(good.environment, Environment::Prod);
        assert_eq!((good.scopes.len(), good.budgets.map(|b| b.max_calls)), (1, Some(3)));
    }
}
