//! `GET /openapi.json`: an OpenAPI 3.0 description of every HTTP endpoint.
//!
//! One table, [`OPERATIONS`], lists each route and method with who may call it,
//! its query parameters and the fields of its JSON body; the document is built
//! from it. A test reads every `.route(…)` in this crate's sources and fails when
//! a route or a method is missing here, or listed here but not served.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::AppState;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone (public log, discovery, health).
    Public,
    /// An operator credential (`wop_…`).
    Operator,
    /// An agent's session token.
    Agent,
    /// An agent's token when given (telemetry: anonymous reports are accepted too).
    AgentOptional,
    /// The OAuth client itself (client credentials in the form or HTTP Basic).
    Client,
}

/// A field of a JSON body: name, JSON type, required.
pub type Field = (&'static str, &'static str, bool);

/// One operation.
#[derive(Debug)]
pub struct Operation {
    /// HTTP method, lower case; `any` for the proxies.
    pub method: &'static str,
    /// Path as axum declares it (`{id}`, `{*rest}`).
    pub path: &'static str,
    /// Grouping.
    pub tag: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Who may call it.
    pub caller: Caller,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// Fields of a JSON body, if it takes one.
    pub body: Option<&'static [Field]>,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    caller: Caller,
) -> Operation {
    Operation { method, path, tag, summary, caller, query: &[], body: None }
}

const LIST: &[(&str, &str)] =
    &[("after", "cursor: the last id of the previous page"), ("limit", "page size")];

/// Every operation the server serves.
pub const OPERATIONS: &[Operation] = &[
    op("get", "/healthz", "health", "Liveness", Caller::Public),
    op(
        "get",
        "/readyz",
        "health",
        "Readiness: the log writer runs and a checkpoint is served",
        Caller::Public,
    ),
    op("get", "/metrics", "health", "Prometheus text format", Caller::Operator),
    op("get", "/openapi.json", "health", "This document", Caller::Public),
    Operation {
        body: Some(&[("events", "array", true)]),
        ..op(
            "post",
            "/v1/telemetry/submit",
            "log",
            "Append self-reported events; 200 only once durable",
            Caller::AgentOptional,
        )
    },
    op("get", "/v1/log/checkpoint", "log", "Latest signed checkpoint (C2SP signed note)", Caller::Public),
    op("get", "/log/checkpoint", "log", "Latest signed checkpoint (tlog-tiles path)", Caller::Public),
    op("get", "/v1/log/key", "log", "The log's verifier key", Caller::Public),
    op("get", "/v1/log/entries/{index}", "log", "One entry: leaf, leaf hash, decoded event", Caller::Public),
    Operation {
        query: &[("index", "leaf index"), ("tree_size", "tree size")],
        ..op("get", "/v1/log/proof/inclusion", "log", "RFC 6962 audit path", Caller::Public)
    },
    Operation {
        query: &[("from", "older tree size"), ("to", "newer tree size")],
        ..op("get", "/v1/log/proof/consistency", "log", "RFC 6962 consistency proof", Caller::Public)
    },
    op(
        "get",
        "/v1/log/receipt/{index}",
        "log",
        "Leaf, inclusion proof and signed checkpoint",
        Caller::Public,
    ),
    op("get", "/log/tile/{*path}", "log", "C2SP tlog-tiles hash tiles and entry bundles", Caller::Public),
    Operation {
        body: Some(&[
            ("id", "string", false),
            ("owner", "string", true),
            ("scopes", "array", false),
            ("environment", "string", true),
            ("retention_class", "string", false),
            ("public_jwk", "object", false),
        ]),
        ..op(
            "post",
            "/v1/agents",
            "control",
            "Register an agent; the client secret is shown once",
            Caller::Operator,
        )
    },
    Operation { query: LIST, ..op("get", "/v1/agents", "control", "List agents", Caller::Operator) },
    op("get", "/v1/agents/{id}", "control", "One agent", Caller::Operator),
    op("post", "/v1/agents/{id}/suspend", "control", "Suspend an agent", Caller::Operator),
    op("post", "/v1/agents/{id}/activate", "control", "Reactivate an agent", Caller::Operator),
    op(
        "post",
        "/v1/agents/{id}/revoke",
        "control",
        "Revoke an agent, its credentials and sessions",
        Caller::Operator,
    ),
    op("get", "/v1/agents/{id}/behavior", "behavior", "The agent's baseline and risk", Caller::Operator),
    op(
        "get",
        "/v1/agents/{id}/history",
        "trust",
        "Signed behavioral summary with inclusion proofs",
        Caller::Operator,
    ),
    Operation {
        body: Some(&[
            ("agent_id", "string", true),
            ("purpose", "string", true),
            ("budgets", "object", false),
        ]),
        ..op("post", "/v1/sessions", "control", "Start a session", Caller::Operator)
    },
    op("get", "/v1/sessions/{id}", "control", "One session and its usage", Caller::Operator),
    Operation {
        body: Some(&[
            ("tool_calls_max", "integer", false),
            ("writes_max", "integer", false),
            ("bytes_max", "integer", false),
            ("in_flight_max", "integer", false),
            ("lifetime_s_max", "integer", false),
        ]),
        ..op("post", "/v1/sessions/{id}/budgets", "control", "Set a session's budgets", Caller::Operator)
    },
    op("post", "/v1/sessions/{id}/pause", "control", "Pause a session", Caller::Operator),
    op("post", "/v1/sessions/{id}/resume", "control", "Resume a paused session", Caller::Operator),
    op("post", "/v1/sessions/{id}/end", "control", "End a session; its tokens are revoked", Caller::Operator),
    Operation {
        body: Some(&[("enabled", "boolean", true), ("reason", "string", true)]),
        ..op(
            "post",
            "/v1/sessions/{id}/forensics",
            "incident",
            "Turn forensics mode on or off for a session (logged first)",
            Caller::Operator,
        )
    },
    op("get", "/v1/sessions/{id}/forensics", "incident", "A session's forensics mode", Caller::Operator),
    Operation {
        body: Some(&[
            ("jti", "string", false),
            ("session_id", "string", false),
            ("agent_id", "string", false),
        ]),
        ..op(
            "post",
            "/v1/credentials/revoke",
            "oauth",
            "Revoke tokens by jti, session or agent",
            Caller::Operator,
        )
    },
    op(
        "post",
        "/oauth/token",
        "oauth",
        "client_credentials and RFC 8693 token exchange (form-encoded)",
        Caller::Client,
    ),
    op("get", "/.well-known/jwks.json", "oauth", "The token signing keys", Caller::Public),
    op("get", "/.well-known/oauth-authorization-server", "oauth", "RFC 8414 metadata", Caller::Public),
    op("get", "/.well-known/oauth-protected-resource", "oauth", "RFC 9728 metadata", Caller::Public),
    Operation {
        body: Some(&[("policies", "array", true), ("message", "string", false)]),
        ..op(
            "post",
            "/v1/policies",
            "policy",
            "Push a new policy version (Cedar, strictly validated)",
            Caller::Operator,
        )
    },
    op("get", "/v1/policies", "policy", "The active policy version", Caller::Operator),
    op("get", "/v1/policies/history", "policy", "Every policy version", Caller::Operator),
    Operation {
        query: &[("from", "version"), ("to", "version (default: the active one)")],
        ..op("get", "/v1/policies/diff", "policy", "Difference between two versions", Caller::Operator)
    },
    Operation {
        body: Some(&[("version", "integer", true)]),
        ..op(
            "post",
            "/v1/policies/rollback",
            "policy",
            "Make an earlier version active again",
            Caller::Operator,
        )
    },
    op("get", "/v1/policies/schema", "policy", "The generated Cedar schema", Caller::Operator),
    Operation {
        body: Some(&[
            ("intent", "string", true),
            ("resource", "object", true),
            ("arguments", "object", false),
            ("argument_destinations", "array", false),
            ("bytes", "integer", false),
            ("confirmed", "boolean", false),
        ]),
        ..op(
            "post",
            "/v1/authorize",
            "decisions",
            "Decide an action (allow, confirm, approve, deny); logged before it answers",
            Caller::Agent,
        )
    },
    Operation {
        query: &[("status", "pending, approved, denied or expired"), ("limit", "page size")],
        ..op("get", "/v1/approvals", "approvals", "List approvals", Caller::Operator)
    },
    op("get", "/v1/approvals/{id}", "approvals", "One approval and its evidence packet", Caller::Operator),
    Operation {
        body: Some(&[("reason", "string", false)]),
        ..op(
            "post",
            "/v1/approvals/{id}/approve",
            "approvals",
            "Approve: the held request proceeds",
            Caller::Operator,
        )
    },
    Operation {
        body: Some(&[("reason", "string", false)]),
        ..op("post", "/v1/approvals/{id}/deny", "approvals", "Deny: the held request fails", Caller::Operator)
    },
    op(
        "get",
        "/v1/behavior/breakers/{class}",
        "behavior",
        "A resource class's circuit breaker",
        Caller::Operator,
    ),
    op(
        "post",
        "/v1/behavior/breakers/{class}/reset",
        "behavior",
        "Reset a tripped circuit breaker",
        Caller::Operator,
    ),
    Operation {
        body: Some(&[
            ("target", "object", true),
            ("expires_in_s", "integer", false),
            ("expires_at", "string", false),
            ("reason", "string", true),
        ]),
        ..op(
            "post",
            "/v1/quarantines",
            "incident",
            "Quarantine an agent or a resource prefix until it expires",
            Caller::Operator,
        )
    },
    Operation {
        query: &[("all", "include lifted and expired ones"), ("limit", "page size")],
        ..op("get", "/v1/quarantines", "incident", "List quarantines", Caller::Operator)
    },
    op("delete", "/v1/quarantines/{id}", "incident", "Lift a quarantine", Caller::Operator),
    Operation {
        query: &[
            ("agent", "agent id"),
            ("session", "session id"),
            ("since", "RFC 3339 time"),
            ("until", "RFC 3339 time"),
            ("limit", "page size"),
            ("cursor", "from the previous page"),
        ],
        ..op(
            "get",
            "/v1/replay",
            "incident",
            "Decisions and actions over a window, with proofs",
            Caller::Operator,
        )
    },
    Operation {
        query: &[
            ("session", "session id"),
            ("after", "log index of the last capture of the previous page"),
            ("limit", "page size"),
        ],
        ..op(
            "get",
            "/v1/forensics",
            "incident",
            "A session's forensic captures, without bodies",
            Caller::Operator,
        )
    },
    op(
        "get",
        "/v1/forensics/{id}",
        "incident",
        "One capture by decision id or log index: bodies, salt, leaf and inclusion proof",
        Caller::Operator,
    ),
    op(
        "post",
        "/v1/gateway/pins/{upstream}/{tool}/accept",
        "gateway",
        "Accept a changed MCP tool definition",
        Caller::Operator,
    ),
    op("any", "/proxy/{upstream}", "gateway", "HTTP proxy to an upstream's base URL", Caller::Agent),
    op("any", "/proxy/{upstream}/{*rest}", "gateway", "HTTP proxy to a path of an upstream", Caller::Agent),
    op("any", "/mcp/{upstream}", "gateway", "MCP proxy (Streamable HTTP, JSON-RPC)", Caller::Agent),
];

/// The OpenAPI path of an axum path: `{*rest}` becomes `{rest}`.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let name = name.trim_start_matches('*');
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

fn operation(o: &Operation, method: &str) -> Map<String, Value> {
    let mut parameters = path_parameters(o.path);
    parameters.extend(o.query.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description,
               "schema": {"type": "string"}})
    }));
    let error = json!({"description": "Refused; the body names what was wrong",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = Map::new();
    responses.insert("200".into(), json!({"description": "OK"}));
    responses.insert("400".into(), error.clone());
    let security = match o.caller {
        Caller::Public | Caller::Client => json!([]),
        Caller::Operator => json!([{"operator": []}]),
        Caller::Agent => json!([{"agent": []}]),
        Caller::AgentOptional => json!([{}, {"agent": []}]),
    };
    if matches!(o.caller, Caller::Operator | Caller::Agent | Caller::Client) {
        responses.insert("401".into(), error.clone());
        responses.insert("403".into(), error.clone());
    }
    responses.insert("503".into(), error);
    let mut v = Map::new();
    v.insert("operationId".into(), json!(operation_id(method, o.path)));
    v.insert("tags".into(), json!([o.tag]));
    v.insert("summary".into(), json!(o.summary));
    v.insert("security".into(), security);
    v.insert("responses".into(), Value::Object(responses));
    if !parameters.is_empty() {
        v.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(fields) = o.body {
        let properties: Map<String, Value> =
            fields.iter().map(|(name, kind, _)| ((*name).to_owned(), json!({"type": kind}))).collect();
        let required: Vec<&str> = fields.iter().filter(|f| f.2).map(|f| f.0).collect();
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".into(), json!(required));
        }
        v.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema}}}),
        );
    }
    v
}

fn operation_id(method: &str, path: &str) -> String {
    format!("{method}{}", path.replace(['/', '{', '}', '*', '.', '-'], "_"))
}

/// The document.
pub fn document() -> Value {
    const ANY: [&str; 5] = ["get", "post", "put", "patch", "delete"];
    let mut paths: std::collections::BTreeMap<String, Map<String, Value>> = std::collections::BTreeMap::new();
    for o in OPERATIONS {
        let entry = paths.entry(openapi_path(o.path)).or_default();
        let methods: &[&str] = if o.method == "any" { &ANY } else { std::slice::from_ref(&o.method) };
        for m in methods {
            entry.insert((*m).to_owned(), Value::Object(operation(o, m)));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Warden",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The behavioral trust layer for AI agents: authenticate, decide, record."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "operator": {"type": "http", "scheme": "bearer", "description": "An operator credential, `wop_…`"},
                "agent": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                          "description": "A session-bound RFC 9068 access token from /oauth/token"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {"type": "array", "items": {"type": "object", "properties": {
                            "field": {"type": "string"}, "message": {"type": "string"}}}}
                    }
                }
            }
        }
    })
}

async fn serve() -> Json<Value> {
    Json(document())
}

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(serve))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn sources(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }

    /// Every (method, path) the sources declare in a route call, with the
    /// method routers chained in it.
    fn declared() -> BTreeSet<(String, String)> {
        let mut texts = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut texts);
        let mut found = BTreeSet::new();
        for text in texts {
            let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for chunk in flat.split(".route(\"").skip(1) {
                let Some((path, rest)) = chunk.split_once('"') else { continue };
                // The method router runs to the call's closing parenthesis.
                let mut depth = 1;
                let mut end = rest.len();
                for (i, c) in rest.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let methods = rest.get(..end).unwrap_or_default();
                for m in ["get", "post", "put", "patch", "delete", "any"] {
                    let call = format!("{m}(");
                    if methods.match_indices(&call).any(|(i, _)| {
                        i == 0 || methods.get(..i).is_some_and(|s| s.ends_with([' ', ',', '.']))
                    }) {
                        found.insert((m.to_owned(), path.to_owned()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let declared = declared();
        assert!(declared.len() > 40, "the route scan found too little: {declared:?}");
        let described: BTreeSet<(String, String)> =
            OPERATIONS.iter().map(|o| (o.method.to_owned(), o.path.to_owned())).collect();
        let missing: Vec<_> = declared.difference(&described).collect();
        let extra: Vec<_> = described.difference(&declared).collect();
        assert!(missing.is_empty(), "served but not in OPERATIONS: {missing:?}");
        assert!(extra.is_empty(), "in OPERATIONS but not served: {extra:?}");
    }

    #[test]
    fn path_parameters_are_named() {
        let doc = document();
        let p = &doc["paths"]["/proxy/{upstream}/{rest}"]["get"]["parameters"];
        assert_eq!(p[0]["name"], "upstream");
        assert_eq!(p[1]["name"], "rest");
        let body =
            &doc["paths"]["/v1/authorize"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["required"], json!(["intent", "resource"]));
    }
}
