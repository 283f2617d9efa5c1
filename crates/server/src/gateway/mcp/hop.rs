//! What crosses Warden between agent and upstream: the `_meta` keys that
//! describe one hop stay on it, in both directions.
//!
//! Warden is two MCP peers: a server to the agent and, separately, a client of
//! the upstream. It agrees a protocol version with each on its own (with the
//! agent by `initialize` or, from 2026-07-28, by each request's `_meta`; with
//! the upstream by `initialize`, asking 2025-11-25), and it does the same for
//! the client and server identities, capabilities and progress notifications.

use serde_json::{Map, Value};

/// Warden's own `_meta` keys (`warden/confirm`, `warden/rollback`).
const WARDEN_PREFIX: &str = "warden/";
/// Opts a request into progress notifications for the peer that sent it.
const PROGRESS_TOKEN: &str = "progressToken";

/// True for a `_meta` key under a prefix MCP reserves: one whose second label
/// is `modelcontextprotocol` or `mcp` (`io.modelcontextprotocol/…`, `dev.mcp/…`).
fn reserved_by_mcp(key: &str) -> bool {
    let Some((prefix, _)) = key.split_once('/') else { return false };
    matches!(prefix.split('.').nth(1), Some("modelcontextprotocol" | "mcp"))
}

/// The agent's request `_meta` as it may travel to the upstream, or `None`
/// when nothing of it may.
//
// Why: MCP's per-request protocol fields (2026-07-28: `io.modelcontextprotocol/
// protocolVersion`, `…/clientInfo`, `…/clientCapabilities`, `…/logLevel`) and
// `progressToken` describe the hop they travel on: who the client is, what it
// can do, which version this request speaks, where progress goes. On the
// upstream hop the client is Warden, in the session it negotiated by
// `initialize` (a legacy version, which carries none of these fields: the
// handshake said it once). Forwarded, they make the upstream serve the request
// as a 2026-07-28 request of the agent ("a request carrying modern per-request
// `_meta` is served statelessly", versioning), so over Streamable HTTP it
// rejects the disagreement with Warden's `MCP-Protocol-Version` header
// (`-32020`, HeaderMismatch), and over stdio it answers in 2026-07-28 shapes
// and believes capabilities (elicitation, tasks, …) Warden does not offer. The
// agent's progress token would ask for notifications Warden does not relay,
// and two agents' tokens (SDKs count from 0) would collide in Warden's one
// session with the upstream, where tokens must be unique. So every key under a
// prefix MCP reserves, and `progressToken`, stays on the agent's hop, as do
// Warden's own `warden/…` keys; what is left is end to end and crosses: W3C
// trace context (`traceparent`, `tracestate`, `baggage`) and vendor keys.
pub fn forwarded_meta(params: &Value) -> Option<Value> {
    let meta = params.get("_meta").and_then(Value::as_object)?;
    let kept: Map<String, Value> =
        meta.iter().filter(|(k, _)| end_to_end(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

/// True for a `_meta` key that may cross Warden: not one of the protocol's
/// own (reserved prefixes, `progressToken`) nor one of Warden's.
fn end_to_end(key: &str) -> bool {
    !(key.starts_with(WARDEN_PREFIX) || key == PROGRESS_TOKEN || reserved_by_mcp(key))
}

/// Removes, in place, what of an upstream's result `_meta` describes the
/// upstream hop; trace context and vendor keys stay for the agent.
//
// Why: the same rule as [`forwarded_meta`], the other way. On the agent's hop
// the server is Warden: a 2026-07-28 result's `io.modelcontextprotocol/
// serverInfo` must name Warden (the endpoint sets it), and an upstream's own
// (an SDK sets it in every result, whatever version it serves) would reach
// the agent as Warden's; so would any other key under a prefix MCP reserves,
// whose meaning belongs to the hop it was written for. Nor may an upstream
// speak for Warden with a `warden/…` key. A `_meta` that is not an object is
// malformed and carries nothing that could cross. Nothing is copied: the
// usual result keeps every key and costs one scan of its `_meta`.
pub fn strip_returned_meta(result: &mut Value) {
    let Some(result) = result.as_object_mut() else { return };
    let keep = match result.get_mut("_meta") {
        None => return,
        Some(Value::Object(meta)) => {
            meta.retain(|k, _| end_to_end(k));
            !meta.is_empty()
        }
        Some(_) => false,
    };
    if !keep {
        result.remove("_meta");
    }
}

/// The agent's `params` as the upstream gets them: an object (`{}` for none)
/// whose `_meta` is [`forwarded_meta`].
pub fn forwarded_params(params: &Value) -> Value {
    let mut out = match params {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    out.remove("_meta");
    if let Some(meta) = forwarded_meta(params) {
        out.insert("_meta".into(), meta);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_end_to_end_meta_crosses() {
        let params = json!({"name": "t", "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "agent", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
            "io.modelcontextprotocol/logLevel": "debug",
            "dev.mcp/anything": 1,
            "progressToken": 0,
            "warden/confirm": "dec_1",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
            "com.example.mcp/kept": true,
            "plain": "kept",
        }});
        let forwarded = forwarded_params(&params);
        assert_eq!(forwarded["name"], "t");
        let mut keys: Vec<&String> = forwarded["_meta"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["com.example.mcp/kept", "plain", "traceparent"]);
    }

    #[test]
    fn only_end_to_end_meta_comes_back() {
        let mut result = json!({"content": [], "_meta": {
            "io.modelcontextprotocol/serverInfo": {"name": "upstream", "version": "1"},
            "io.modelcontextprotocol/subscriptionId": 1,
            "progressToken": 0,
            "warden/confirm": "dec_1",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
            "com.example/kept": true,
        }});
        strip_returned_meta(&mut result);
        assert_eq!(
            result,
            json!({"content": [], "_meta": {
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
                "com.example/kept": true,
            }})
        );
        let mut only_hop = json!({"tools": [], "_meta": {"io.modelcontextprotocol/serverInfo": {}}});
        strip_returned_meta(&mut only_hop);
        assert_eq!(only_hop, json!({"tools": []}));
        let mut malformed = json!({"tools": [], "_meta": "x"});
        strip_returned_meta(&mut malformed);
        assert_eq!(malformed, json!({"tools": []}));
    }

    #[test]
    fn nothing_to_forward_means_no_meta() {
        let only_hop = json!({"uri": "x", "_meta": {"progressToken": 3, "io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        assert_eq!(forwarded_params(&only_hop), json!({"uri": "x"}));
        assert_eq!(forwarded_params(&Value::Null), json!({}));
    }
}
