//! The request metadata headers of MCP 2026-07-28's Streamable HTTP transport:
//! `Mcp-Method` and `Mcp-Name` mirror the body's `method` and target so that
//! intermediaries can route on them without parsing the body; Warden, which
//! acts on the body, refuses a request whose headers do not say the same.
//!
//! The revision's rule (Streamable HTTP, Standard Request Headers and Server
//! Validation): `Mcp-Method` (from `method`) is required for all requests,
//! `Mcp-Name` (from `params.name` or `params.uri`) for `tools/call`,
//! `resources/read` and `prompts/get`; a required header that is missing, a
//! value that does not match the body, or one with invalid characters is
//! refused with `400 Bad Request` and `HeaderMismatch` (-32020). Values are
//! compared case-sensitively, and an `Mcp-Name` in the Base64 sentinel form
//! `=?base64?…?=` is decoded first. Earlier revisions define neither header.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::jsonrpc::Message;

/// The header mirroring the body's `method`.
const MCP_METHOD: &str = "mcp-method";
/// The header mirroring the body's target name or URI.
const MCP_NAME: &str = "mcp-name";
/// How an `Mcp-Name` that is not a plain header value is carried.
const BASE64_PREFIX: &str = "=?base64?";
const BASE64_SUFFIX: &str = "?=";

/// The body field `Mcp-Name` mirrors, for the methods that require it.
fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Checks a 2026-07-28 request's `Mcp-Method` and `Mcp-Name` against its
/// body; `Err` is why they disagree (the message of the HeaderMismatch).
pub fn check(headers: &HeaderMap, m: &Message) -> Result<(), String> {
    match single(headers, MCP_METHOD)? {
        None => {
            return Err(format!("the `Mcp-Method` header is required (the body's method is `{}`)", m.method));
        }
        Some(value) if value != m.method => {
            return Err(format!(
                "the `Mcp-Method` header (`{value}`) does not match the body's method (`{}`)",
                m.method
            ));
        }
        Some(_) => {}
    }
    let Some(field) = name_field(&m.method) else { return Ok(()) };
    let body = m.params.get(field).and_then(Value::as_str);
    let header = match single(headers, MCP_NAME)? {
        Some(raw) => Some(decode("Mcp-Name", raw)?),
        None => None,
    };
    match (header, body) {
        (Some(header), Some(body)) if header == body => Ok(()),
        // No target on either side: the method itself answers Invalid params.
        (None, None) => Ok(()),
        (None, Some(body)) => Err(format!(
            "the `Mcp-Name` header is required for `{}` (the body's `params.{field}` is `{body}`)",
            m.method
        )),
        (Some(header), body) => Err(format!(
            "the `Mcp-Name` header (`{header}`) does not match the body's `params.{field}` (`{}`)",
            body.unwrap_or("absent")
        )),
    }
}

/// The one value of header `name`: a header sent twice, or whose value is
/// not text (RFC 9110 field-value characters), is malformed.
pub(super) fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(format!("the `{name}` header is sent more than once"));
    }
    value.to_str().map(Some).map_err(|_| format!("the `{name}` header has invalid characters"))
}

/// A value of header `name` (`Mcp-Name` or an `Mcp-Param-{Name}`) as the
/// client meant it: the sentinel form, exactly `=?base64?…?=` in lowercase,
/// decoded (standard Base64 of UTF-8); any other value is taken literally.
pub(super) fn decode(name: &str, raw: &str) -> Result<String, String> {
    let Some(encoded) = raw.strip_prefix(BASE64_PREFIX).and_then(|rest| rest.strip_suffix(BASE64_SUFFIX))
    else {
        return Ok(raw.to_owned());
    };
    let bytes =
        STANDARD.decode(encoded).map_err(|_| format!("the `{name}` header (`{raw}`) is not valid Base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("the `{name}` header (`{raw}`) does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn message(method: &str, params: Value) -> Message {
        Message { id: Some(json!(1)), method: method.to_owned(), params }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_bytes(v.as_bytes()).unwrap_or(HeaderValue::from_static("?")));
        }
        h
    }

    #[test]
    fn method_is_required_for_every_request_and_name_for_the_three_named_ones() {
        let list = message("tools/list", json!({}));
        assert!(check(&headers(&[("mcp-method", "tools/list")]), &list).is_ok());
        // `Mcp-Name` is not defined for a list: ignored.
        assert!(check(&headers(&[("mcp-method", "tools/list"), ("mcp-name", "x")]), &list).is_ok());
        assert!(check(&headers(&[]), &list).is_err(), "missing Mcp-Method");
        assert!(
            check(&headers(&[("mcp-method", "Tools/List")]), &list).is_err(),
            "values are case-sensitive"
        );
        assert!(
            check(&headers(&[("mcp-method", "tools/list"), ("mcp-method", "tools/list")]), &list).is_err(),
            "sent twice"
        );

        for (method, field) in [("tools/call", "name"), ("prompts/get", "name"), ("resources/read", "uri")] {
            let m = message(method, json!({field: "tickets://42"}));
            assert!(
                check(&headers(&[("mcp-method", method), ("mcp-name", "tickets://42")]), &m).is_ok(),
                "{method}"
            );
            assert!(check(&headers(&[("mcp-method", method)]), &m).is_err(), "{method}: missing Mcp-Name");
            assert!(
                check(&headers(&[("mcp-method", method), ("mcp-name", "tickets://43")]), &m).is_err(),
                "{method}: another target"
            );
        }
    }

    #[test]
    fn a_base64_sentinel_name_is_decoded_before_comparing() {
        let m = message("tools/call", json!({"name": "météo"}));
        let encoded = format!("=?base64?{}?=", STANDARD.encode("météo"));
        assert!(check(&headers(&[("mcp-method", "tools/call"), ("mcp-name", &encoded)]), &m).is_ok());
        let bad = headers(&[("mcp-method", "tools/call"), ("mcp-name", "=?base64?***?=")]);
        assert!(check(&bad, &m).is_err(), "not Base64");
        let literal = message("tools/call", json!({"name": "=?base64?bWV0ZW8=?="}));
        let sent_plain = headers(&[("mcp-method", "tools/call"), ("mcp-name", "=?base64?bWV0ZW8=?=")]);
        assert!(check(&sent_plain, &literal).is_err(), "a sentinel-looking name must itself be encoded");
    }
}
