//! The `Mcp-Param-{Name}` headers of MCP 2026-07-28's Streamable HTTP
//! transport: a tool's `inputSchema` may mark a parameter with
//! `"x-mcp-header": "Name"`, and a client calling that tool then mirrors the
//! argument's value into `Mcp-Param-Name`, so that an intermediary can route
//! or rate-limit on it. Warden acts on the body, so it refuses a `tools/call`
//! whose headers say something else (an intermediary in front of it may have
//! acted on the header).
//!
//! The revision's rules (Streamable HTTP, Custom Headers from Tool Parameters):
//! - Which markers count: those of the tool's definition as Warden last
//!   fetched it from the upstream and serves it in `tools/list` (the pinned
//!   snapshot; a definition changed since its pin is held for an operator
//!   anyway). A marker must sit on a property "statically reachable from the
//!   schema root: reachable via a chain consisting solely of `properties`
//!   keys", name a non-empty RFC 9110 token, be case-insensitively unique, and
//!   mark an `integer`, `string` or `boolean` parameter; one anywhere else
//!   "makes the annotation — and thus the tool definition — invalid", and
//!   clients "MUST exclude the invalid tool", so none of its markers is
//!   expected.
//! - The value is read "at the exact property path of the annotated
//!   property"; a `null` or absent value has no header ("Server MUST NOT
//!   expect the header"), a present one must have it ("Client omits header but
//!   value is in body: Server MUST reject the request"). A header whose
//!   parameter has no value in the body agrees with nothing and is refused too.
//! - Values: a string as is, an integer in decimal, a boolean `true` /
//!   `false`; `=?base64?…?=` is decoded before comparing ([`headers::decode`]);
//!   integers "SHOULD" compare numerically (`42.0` and `42` are equal).
//! - A mismatch, a missing header, invalid characters or bad Base64: `400 Bad
//!   Request` and `HeaderMismatch` (-32020).
//!
//! Headers no marker names are not Warden's to judge ("MUST forward it and
//! otherwise ignore it"); a tool without markers costs a map lookup.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::{Number, Value};

use super::headers;
use super::upstream::McpUpstream;
use crate::gateway::pins::ToolSnapshot;

/// The marker keyword of a parameter's schema.
const MARKER: &str = "x-mcp-header";
/// Deepest `properties` chain (and subschema nesting) looked at: a deeper
/// schema's markers are not honoured, as if the definition were invalid.
const SCHEMA_DEPTH_MAX: usize = 32;

/// One marked parameter of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marked {
    /// `Mcp-Param-{Name}` as the schema spells it, for messages.
    header: String,
    /// The same in lower case, as `HeaderMap` looks names up.
    lookup: String,
    /// Property names from `arguments` to the value.
    path: Vec<String>,
}

/// The marked parameters of the tools of one snapshot whose markers are all
/// valid; tools without any are absent.
#[derive(Debug, Default)]
pub struct ParamHeaders {
    by_tool: HashMap<String, Vec<Marked>>,
    /// Tools whose markers are invalid, and why: a 2026-07-28 client "MUST
    /// exclude the invalid tool from the result of `tools/list`", so Warden,
    /// the upstream's client, leaves them out of what it lists and refuses
    /// calls of them in that revision.
    invalid: HashMap<String, String>,
}

impl ParamHeaders {
    fn of_tools(tools: &[Value]) -> Self {
        let (mut by_tool, mut invalid) = (HashMap::new(), HashMap::new());
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
            let Some(schema) = tool.get("inputSchema") else { continue };
            match markers(schema) {
                Ok(marked) if marked.is_empty() => {}
                Ok(marked) => {
                    by_tool.insert(name.to_owned(), marked);
                }
                Err(why) => {
                    tracing::warn!(tool = name, reason = %why, "MCP 2026-07-28: tool excluded, its `x-mcp-header` markers are invalid");
                    invalid.insert(name.to_owned(), why);
                }
            }
        }
        Self { by_tool, invalid }
    }

    /// Why `tool`'s definition is invalid under 2026-07-28, if it is.
    pub fn invalid(&self, tool: &str) -> Option<&str> {
        self.invalid.get(tool).map(String::as_str)
    }

    /// The marked parameters of `snapshot`'s tools, worked out once per
    /// snapshot and kept beside it on the upstream.
    pub fn of_snapshot(mcp: &McpUpstream, snapshot: &Arc<ToolSnapshot>) -> Arc<Self> {
        if let Ok(slot) = mcp.param_headers.lock()
            && let Some((seen, known)) = slot.as_ref()
            // The slot holds `seen`, so its address cannot be reused by another.
            && Arc::ptr_eq(seen, snapshot)
        {
            return Arc::clone(known);
        }
        let built = Arc::new(Self::of_tools(&snapshot.tools));
        if let Ok(mut slot) = mcp.param_headers.lock() {
            *slot = Some((Arc::clone(snapshot), Arc::clone(&built)));
        }
        built
    }

    /// Checks a 2026-07-28 `tools/call` of `tool`: each of its marked
    /// parameters' headers against `arguments`; `Err` is why they disagree
    /// (the message of the HeaderMismatch).
    pub fn check(&self, tool: &str, headers: &HeaderMap, arguments: &Value) -> Result<(), String> {
        let Some(marked) = self.by_tool.get(tool) else { return Ok(()) };
        for m in marked {
            let name = &m.header;
            let at = || format!("arguments.{}", m.path.join("."));
            let body = m.path.iter().try_fold(arguments, |v, key| v.get(key)).filter(|v| !v.is_null());
            let header = headers::single(headers, &m.lookup)?;
            match (header, body) {
                (None, None) => {}
                (Some(raw), None) => {
                    return Err(format!(
                        "the `{name}` header (`{raw}`) has no value to match: `{}` is absent",
                        at()
                    ));
                }
                (None, Some(body)) => {
                    return Err(format!(
                        "the `{name}` header is required (the body's `{}` is `{body}`)",
                        at()
                    ));
                }
                (Some(raw), Some(body)) => {
                    let value = headers::decode(name, raw)?;
                    if !agrees(&value, body) {
                        return Err(format!(
                            "the `{name}` header (`{value}`) does not match the body's `{}` (`{body}`)",
                            at()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a decoded header value says what the body's value says.
fn agrees(header: &str, body: &Value) -> bool {
    match body {
        Value::String(s) => header == s,
        Value::Bool(b) => header == if *b { "true" } else { "false" },
        Value::Number(n) => same_number(header, n),
        // Not a primitive: nothing a header can mirror.
        _ => false,
    }
}

/// Numeric comparison: `42`, `42.0` and `+42` are the same integer.
fn same_number(header: &str, body: &Number) -> bool {
    if let (Ok(h), Some(b)) = (header.parse::<i64>(), body.as_i64()) {
        return h == b;
    }
    // Marked integers are within ±(2^53 - 1), exact in an f64.
    match (header.parse::<f64>(), body.as_f64()) {
        (Ok(h), Some(b)) => h.is_finite() && h == b,
        _ => false,
    }
}

/// The marked parameters of a tool's `inputSchema`; `Err` says why its
/// markers are invalid (and none of them is honoured).
fn markers(schema: &Value) -> Result<Vec<Marked>, String> {
    let Some(root) = schema.as_object() else { return Ok(Vec::new()) };
    if root.contains_key(MARKER) {
        return Err(format!("`{MARKER}` marks the schema root, not a parameter"));
    }
    let mut marked = Vec::new();
    collect(schema, &mut Vec::new(), &mut marked)?;
    let on_chain = marked.len();
    if count_markers(schema, 0)? != on_chain {
        return Err(format!("`{MARKER}` marks a parameter not reachable through `properties` alone"));
    }
    let mut seen = HashSet::new();
    for m in &marked {
        if !seen.insert(m.lookup.as_str()) {
            return Err(format!("`{MARKER}` `{}` is used twice", m.header));
        }
    }
    Ok(marked)
}

/// Every marker along `properties` chains from `schema`, validated one by one.
fn collect(schema: &Value, path: &mut Vec<String>, out: &mut Vec<Marked>) -> Result<(), String> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
    if path.len() >= SCHEMA_DEPTH_MAX {
        return Err(format!("the `properties` chain is deeper than {SCHEMA_DEPTH_MAX}"));
    }
    for (name, property) in properties {
        path.push(name.clone());
        if let Some(marker) = property.get(MARKER) {
            let at = path.join(".");
            let header = marker.as_str().filter(|h| !h.is_empty() && h.bytes().all(is_tchar));
            let Some(header) = header else {
                return Err(format!("`{MARKER}` of `{at}` is not a non-empty HTTP token: `{marker}`"));
            };
            if !primitive(property.get("type")) {
                return Err(format!("`{MARKER}` marks `{at}`, which is not an integer, string or boolean"));
            }
            let header = format!("Mcp-Param-{header}");
            out.push(Marked { lookup: header.to_ascii_lowercase(), header, path: path.clone() });
        }
        collect(property, path, out)?;
        path.pop();
    }
    Ok(())
}

/// Markers anywhere in `schema`, keywords told from property names: the keys
/// of `properties` and the other name-to-schema maps are names, the values of
/// `const`, `enum`, `default` and `examples` instance data.
fn count_markers(schema: &Value, depth: usize) -> Result<usize, String> {
    if depth > SCHEMA_DEPTH_MAX * 2 {
        return Err(format!("the schema nests deeper than {}", SCHEMA_DEPTH_MAX * 2));
    }
    let mut count = 0;
    match schema {
        Value::Object(object) => {
            for (key, value) in object {
                count += match key.as_str() {
                    MARKER => 1,
                    "const" | "enum" | "default" | "examples" => 0,
                    "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                        let mut sum = 0;
                        for sub in value.as_object().into_iter().flat_map(|m| m.values()) {
                            sum += count_markers(sub, depth + 1)?;
                        }
                        sum
                    }
                    _ => count_markers(value, depth + 1)?,
                };
            }
        }
        Value::Array(items) => {
            for item in items {
                count += count_markers(item, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(count)
}

/// `integer`, `string` or `boolean`, possibly nullable (`["string", "null"]`).
fn primitive(ty: Option<&Value>) -> bool {
    let is = |t: &str| matches!(t, "integer" | "string" | "boolean");
    match ty {
        Some(Value::String(t)) => is(t),
        Some(Value::Array(types)) => {
            let named: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            types.iter().all(Value::is_string) && named.len() == 1 && named.iter().all(|t| is(t))
        }
        _ => false,
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    use super::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_bytes(v).unwrap_or(HeaderValue::from_static("?")));
        }
        h
    }

    fn b64(s: &str) -> String {
        format!("=?base64?{}?=", STANDARD.encode(s))
    }

    /// A tool `deploy` marking `region` (string), `replicas` (integer),
    /// `dry_run` (boolean) and the nested `target.zone`.
    fn deploy() -> ParamHeaders {
        ParamHeaders::of_tools(&[json!({"name": "deploy", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "replicas": {"type": "integer", "x-mcp-header": "Replicas"},
            "dry_run": {"type": ["boolean", "null"], "x-mcp-header": "Dry-Run"},
            "target": {"type": "object", "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}}},
            "note": {"type": "string"}
        }}})])
    }

    #[test]
    fn header_values_are_decoded_from_the_base64_sentinel_and_otherwise_literal() {
        assert_eq!(headers::decode("Mcp-Param-A", "us-west1"), Ok("us-west1".to_owned()));
        assert_eq!(headers::decode("Mcp-Param-A", &b64("Hello, 世界")), Ok("Hello, 世界".to_owned()));
        assert_eq!(headers::decode("Mcp-Param-A", "=?base64?IHBhZGRlZCA=?="), Ok(" padded ".to_owned()));
        assert_eq!(
            headers::decode("Mcp-Param-A", &b64("=?base64?literal?=")),
            Ok("=?base64?literal?=".to_owned())
        );
        // The markers are case-sensitive and exact: anything else is literal.
        assert_eq!(headers::decode("Mcp-Param-A", "=?BASE64?YQ==?="), Ok("=?BASE64?YQ==?=".to_owned()));
        assert_eq!(headers::decode("Mcp-Param-A", "=?base64?YQ=="), Ok("=?base64?YQ==".to_owned()));
        assert!(headers::decode("Mcp-Param-A", "=?base64?!!?=").is_err(), "not Base64");
        let not_utf8 = format!("=?base64?{}?=", STANDARD.encode([0xff, 0xfe]));
        assert!(headers::decode("Mcp-Param-A", &not_utf8).is_err(), "not UTF-8");
    }

    #[test]
    fn marked_parameters_must_agree_with_the_body_when_present_and_be_absent_when_it_is() {
        let p = deploy();
        let args = json!({"region": "us-west1", "replicas": 3, "dry_run": true, "target": {"zone": "b"}, "note": "x"});
        let all: [(&'static str, &[u8]); 4] = [
            ("mcp-param-region", b"us-west1"),
            ("Mcp-Param-Replicas", b"3"),
            ("mcp-param-dry-run", b"true"),
            ("mcp-param-zone", b"b"),
        ];
        assert_eq!(p.check("deploy", &headers(&all), &args), Ok(()));

        for i in 0..all.len() {
            let mut fewer = all.to_vec();
            let (name, _) = fewer.remove(i);
            assert!(p.check("deploy", &headers(&fewer), &args).is_err(), "{name} missing");
        }
        let mut other = all.to_vec();
        other[0] = ("mcp-param-region", b"eu-west1");
        assert!(p.check("deploy", &headers(&other), &args).is_err(), "another region");
        other[0] = ("mcp-param-region", b"US-WEST1");
        assert!(p.check("deploy", &headers(&other), &args).is_err(), "values are case-sensitive");
        other[0] = ("mcp-param-region", b"us-west1");
        other[2] = ("mcp-param-dry-run", b"false");
        assert!(p.check("deploy", &headers(&other), &args).is_err(), "another boolean");
        let mut twice = all.to_vec();
        twice.push(("mcp-param-region", b"us-west1"));
        assert!(p.check("deploy", &headers(&twice), &args).is_err(), "sent twice");
        let mut obs_text = all.to_vec();
        obs_text[0] = ("mcp-param-region", "us-wést1".as_bytes());
        assert!(p.check("deploy", &headers(&obs_text), &args).is_err(), "raw non-ASCII must be Base64");

        // Integers compare as numbers; a Base64 value is decoded first.
        let floaty = json!({"region": "Zürich", "replicas": 3.0});
        let zurich = b64("Zürich");
        let ok: [(&'static str, &[u8]); 2] =
            [("mcp-param-region", zurich.as_bytes()), ("mcp-param-replicas", b"3")];
        assert_eq!(p.check("deploy", &headers(&ok), &floaty), Ok(()));
        let as_float: [(&'static str, &[u8]); 2] =
            [("mcp-param-region", zurich.as_bytes()), ("mcp-param-replicas", b"3.0")];
        assert_eq!(
            p.check("deploy", &headers(&as_float), &json!({"region": "Zürich", "replicas": 3})),
            Ok(())
        );

        // Null or absent: no header expected, and one sent has nothing to match.
        let sparse = json!({"region": "us-west1", "dry_run": null});
        assert_eq!(p.check("deploy", &headers(&[("mcp-param-region", b"us-west1")]), &sparse), Ok(()));
        let orphan: [(&'static str, &[u8]); 2] =
            [("mcp-param-region", b"us-west1"), ("mcp-param-replicas", b"3")];
        assert!(p.check("deploy", &headers(&orphan), &sparse).is_err(), "a header without a body value");

        // Unmarked tools and unrecognized headers are not looked at.
        assert_eq!(p.check("other", &headers(&[("mcp-param-region", b"x")]), &args), Ok(()));
        let mut extra = all.to_vec();
        extra.push(("mcp-param-note", b"anything"));
        assert_eq!(p.check("deploy", &headers(&extra), &args), Ok(()));
    }

    #[test]
    fn markers_of_an_invalid_definition_are_not_expected() {
        let invalid = [
            json!({"type": "object", "x-mcp-header": "Root"}),
            json!({"properties": {"n": {"type": "number", "x-mcp-header": "N"}}}),
            json!({"properties": {"o": {"type": "object", "x-mcp-header": "O"}}}),
            json!({"properties": {"s": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"s": {"type": "string", "x-mcp-header": "A B"}}}),
            json!({"properties": {"s": {"type": "string", "x-mcp-header": 7}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "X"}, "b": {"type": "string", "x-mcp-header": "x"}}}),
            json!({"properties": {"l": {"type": "array", "items": {"type": "string", "x-mcp-header": "Item"}}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}}, "anyOf": [{"properties": {"b": {"type": "string", "x-mcp-header": "B"}}}]}),
            json!({"properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"type": "string", "x-mcp-header": "A"}}}),
        ];
        for schema in invalid {
            assert!(markers(&schema).is_err(), "{schema}");
            let p = ParamHeaders::of_tools(&[json!({"name": "t", "inputSchema": schema})]);
            assert!(p.by_tool.is_empty(), "{schema}");
            assert!(p.invalid("t").is_some_and(|why| why.contains("x-mcp-header")), "{schema}");
        }
        let valid = ParamHeaders::of_tools(&[
            json!({"name": "t", "inputSchema": {"properties": {"s": {"type": "string"}}}}),
        ]);
        assert_eq!(valid.invalid("t"), None, "no markers is valid");
        // A property named like the keyword, or the keyword as instance data, is no marker.
        let named =
            json!({"properties": {"x-mcp-header": {"type": "string", "default": {"x-mcp-header": "D"}}}});
        assert_eq!(markers(&named), Ok(Vec::new()));
        assert!(ParamHeaders::of_tools(&[json!({"name": "t", "inputSchema": named})]).by_tool.is_empty());
    }
}
