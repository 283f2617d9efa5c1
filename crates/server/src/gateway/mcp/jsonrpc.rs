//! JSON-RPC 2.0 for the MCP endpoint: parsing an agent's message, and the
//! error objects the gateway answers with.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::gateway::reply::GatewayError;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC request.
pub const INVALID_REQUEST: i64 = -32600;
/// Unknown method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Bad params (and unknown tools, as MCP specifies).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP 2026-07-28: a mirrored header (`MCP-Protocol-Version`, `Mcp-Method`,
/// `Mcp-Name`) is missing, malformed or disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the request's protocol version is not served.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// Policy denied the call.
pub const DENIED: i64 = -32001;
/// Policy wants the agent to confirm.
pub const CONFIRMATION_REQUIRED: i64 = -32002;
/// Held for a human.
pub const HELD_FOR_APPROVAL: i64 = -32003;
/// The upstream is at its limit.
pub const UPSTREAM_BUSY: i64 = -32004;
/// The upstream could not be reached.
pub const UPSTREAM_UNAVAILABLE: i64 = -32005;
/// The upstream did not answer in time.
pub const UPSTREAM_TIMEOUT: i64 = -32006;
/// Warden could not decide or record (fail closed).
pub const WARDEN_UNAVAILABLE: i64 = -32007;
/// The agent's session may not act.
pub const FORBIDDEN: i64 = -32008;

/// One parsed request or notification.
#[derive(Debug, Clone)]
pub struct Message {
    /// `None` for a notification.
    pub id: Option<Value>,
    /// The method.
    pub method: String,
    /// The params (an object, or `Null`).
    pub params: Value,
}

/// What an agent sent.
#[derive(Debug)]
pub enum Incoming {
    /// A request or notification.
    Message(Message),
    /// A response to a server request (Warden sends none; ignored).
    Response,
}

/// Parses one message; `Err` is the id to answer with and the error object.
pub fn parse(bytes: &[u8]) -> Result<Incoming, Box<(Value, Value)>> {
    parse_unboxed(bytes).map_err(Box::new)
}

// Boxed once by `parse`; inside, the plain tuple keeps the early returns readable.
#[allow(clippy::result_large_err)]
fn parse_unboxed(bytes: &[u8]) -> Result<Incoming, (Value, Value)> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| (Value::Null, error(PARSE_ERROR, &format!("the body is not JSON: {e}"), None)))?;
    if value.is_array() {
        return Err((
            Value::Null,
            error(
                INVALID_REQUEST,
                "JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send one message per request",
                None,
            ),
        ));
    }
    let Some(obj) = value.as_object() else {
        return Err((Value::Null, error(INVALID_REQUEST, "a JSON-RPC message is an object", None)));
    };
    let id = obj.get("id").cloned();
    let answer_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((answer_id, error(INVALID_REQUEST, "`jsonrpc` must be \"2.0\"", None)));
    }
    if let Some(id) = &id
        && !(id.is_string() || id.is_i64() || id.is_u64())
    {
        return Err((Value::Null, error(INVALID_REQUEST, "`id` must be a string or an integer", None)));
    }
    let Some(method) = obj.get("method") else {
        if obj.contains_key("result") || obj.contains_key("error") {
            return Ok(Incoming::Response);
        }
        return Err((answer_id, error(INVALID_REQUEST, "`method` is required", None)));
    };
    let Some(method) = method.as_str() else {
        return Err((answer_id, error(INVALID_REQUEST, "`method` must be a string", None)));
    };
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    if !(params.is_object() || params.is_null()) {
        return Err((answer_id, error(INVALID_PARAMS, "`params` must be an object", None)));
    }
    Ok(Incoming::Message(Message { id, method: method.to_owned(), params }))
}

/// A JSON-RPC error object.
pub fn error(code: i64, message: &str, data: Option<Value>) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let (Some(data), Some(obj)) = (data, e.as_object_mut()) {
        obj.insert("data".into(), data);
    }
    e
}

/// The error object for a gateway refusal.
pub fn from_gateway(e: &GatewayError) -> Value {
    let code = match e {
        GatewayError::Denied { .. } => DENIED,
        GatewayError::ConfirmRequired { .. } => CONFIRMATION_REQUIRED,
        GatewayError::Held { .. } => HELD_FOR_APPROVAL,
        GatewayError::Busy { .. } => UPSTREAM_BUSY,
        GatewayError::UpstreamUnavailable { .. } => UPSTREAM_UNAVAILABLE,
        GatewayError::UpstreamTimeout { .. } => UPSTREAM_TIMEOUT,
        GatewayError::Api(ApiError::Unavailable(_)) => WARDEN_UNAVAILABLE,
        GatewayError::Api(ApiError::Forbidden(_) | ApiError::Unauthorized(_)) => FORBIDDEN,
        GatewayError::NotRouted { .. } | GatewayError::BadRequest(_) => INVALID_PARAMS,
        _ => INTERNAL_ERROR,
    };
    let mut data = e.body();
    if let (GatewayError::ConfirmRequired { decision_id, how, .. }, Some(obj)) = (e, data.as_object_mut()) {
        obj.insert(
            "confirm".into(),
            json!({"meta": {crate::gateway::CONFIRM_META: decision_id}, "how": how}),
        );
    }
    let message = data.get("message").and_then(Value::as_str).unwrap_or("refused").to_owned();
    error(code, &message, Some(data))
}

/// A response carrying `result`.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A response carrying `error`.
pub fn failure(id: &Value, error: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_malformed_message_gets_its_code() {
        let code = |b: &[u8]| parse(b).err().and_then(|e| e.1.get("code").and_then(Value::as_i64));
        assert_eq!(code(b"{"), Some(PARSE_ERROR));
        assert_eq!(code(b"[]"), Some(INVALID_REQUEST));
        assert_eq!(code(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#), Some(INVALID_REQUEST));
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), Some(INVALID_REQUEST));
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#), Some(INVALID_PARAMS));
        assert!(matches!(parse(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#), Ok(Incoming::Response)));
    }
}
