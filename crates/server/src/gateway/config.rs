//! `[gateway]` in `warden.toml`: upstreams, routes, resource classification,
//! injected credentials and limits — and the validation that names every
//! problem (key path and why), not just the first.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use warden_policy::{DATA_CLASSES, ENVIRONMENTS, PLANES};

use super::routes::PathTemplate;

/// Longest hold for a human, default: five minutes.
pub const HOLD_TIMEOUT_MS_DEFAULT: u64 = 300_000;
/// Longest hold for a human that may be configured: one day.
pub const HOLD_TIMEOUT_MS_MAX: u64 = 86_400_000;
/// Most upstreams.
pub const UPSTREAMS_MAX: usize = 256;
/// Most routes.
pub const ROUTES_MAX: usize = 10_000;
/// Default size kept of each body in forensics mode: 1 MiB.
pub const FORENSIC_BODY_BYTES_DEFAULT: u64 = 1024 * 1024;
/// Largest size that may be configured: 64 MiB (a capture holds two bodies in
/// memory until it is stored).
pub const FORENSIC_BODY_BYTES_LIMIT: u64 = 64 * 1024 * 1024;
/// Default retention of forensic captures, days.
pub const FORENSIC_RETENTION_DAYS_DEFAULT: u32 = 30;
/// Longest retention of forensic captures that may be configured, days.
pub const FORENSIC_RETENTION_DAYS_LIMIT: u32 = 36_500;

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// How long an `approve` decision holds a call for a human.
    pub hold_timeout_ms: u64,
    /// In forensics mode, the most bytes kept of each request and response
    /// body; a longer body is kept truncated (and marked so).
    pub forensic_body_bytes_max: u64,
    /// How long kept bodies are retained before they are deleted, days.
    pub forensic_retention_days: u32,
    /// Limits every upstream gets unless it sets its own.
    pub limits: Limits,
    /// Where the gateway forwards.
    pub upstreams: Vec<Upstream>,
    /// How requests and tools map to intents and resources.
    pub routes: Vec<Route>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            hold_timeout_ms: HOLD_TIMEOUT_MS_DEFAULT,
            forensic_body_bytes_max: FORENSIC_BODY_BYTES_DEFAULT,
            forensic_retention_days: FORENSIC_RETENTION_DAYS_DEFAULT,
            limits: Limits::default(),
            upstreams: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// Named limits of one upstream. Each is optional in the file; unset ones come
/// from `[gateway.limits]`, then from the defaults below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Requests forwarded to the upstream at once.
    pub connections_max: u32,
    /// Requests waiting for a connection; beyond it the gateway answers 503.
    pub queue_max: u32,
    /// Largest request body (HTTP) or JSON-RPC message (MCP) an agent may send.
    pub request_body_bytes_max: u64,
    /// Largest answer the gateway passes back.
    pub response_body_bytes_max: u64,
    /// Time to open a connection to the upstream.
    pub connect_timeout_ms: u64,
    /// Time from sending the request to the first byte of the answer's head.
    pub first_byte_timeout_ms: u64,
    /// Time for the whole exchange, answer body included.
    pub total_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_max: 256,
            queue_max: 1024,
            request_body_bytes_max: 1024 * 1024,
            response_body_bytes_max: 64 * 1024 * 1024,
            connect_timeout_ms: 2_000,
            first_byte_timeout_ms: 15_000,
            total_timeout_ms: 60_000,
        }
    }
}

/// Per-upstream overrides of [`Limits`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitOverrides {
    /// See [`Limits::connections_max`].
    pub connections_max: Option<u32>,
    /// See [`Limits::queue_max`].
    pub queue_max: Option<u32>,
    /// See [`Limits::request_body_bytes_max`].
    pub request_body_bytes_max: Option<u64>,
    /// See [`Limits::response_body_bytes_max`].
    pub response_body_bytes_max: Option<u64>,
    /// See [`Limits::connect_timeout_ms`].
    pub connect_timeout_ms: Option<u64>,
    /// See [`Limits::first_byte_timeout_ms`].
    pub first_byte_timeout_ms: Option<u64>,
    /// See [`Limits::total_timeout_ms`].
    pub total_timeout_ms: Option<u64>,
}

impl LimitOverrides {
    /// These overrides on top of `base`.
    pub fn over(&self, base: Limits) -> Limits {
        Limits {
            connections_max: self.connections_max.unwrap_or(base.connections_max),
            queue_max: self.queue_max.unwrap_or(base.queue_max),
            request_body_bytes_max: self.request_body_bytes_max.unwrap_or(base.request_body_bytes_max),
            response_body_bytes_max: self.response_body_bytes_max.unwrap_or(base.response_body_bytes_max),
            connect_timeout_ms: self.connect_timeout_ms.unwrap_or(base.connect_timeout_ms),
            first_byte_timeout_ms: self.first_byte_timeout_ms.unwrap_or(base.first_byte_timeout_ms),
            total_timeout_ms: self.total_timeout_ms.unwrap_or(base.total_timeout_ms),
        }
    }
}

/// How the gateway talks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// A plain HTTP API, proxied under `/proxy/{name}/…`.
    Http,
    /// An MCP server over Streamable HTTP, served to agents at `/mcp/{name}`.
    McpHttp,
    /// An MCP server started as a child process speaking newline-delimited
    /// JSON-RPC on stdio, served to agents at `/mcp/{name}`.
    McpStdio,
}

impl UpstreamKind {
    /// Whether agents reach it as an MCP server.
    pub fn is_mcp(self) -> bool {
        matches!(self, Self::McpHttp | Self::McpStdio)
    }
}

/// A classification: plane, environment tier and data class (the values of
/// `warden_policy::{PLANES, ENVIRONMENTS, DATA_CLASSES}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    /// `data`, `control` or `maintenance`.
    pub plane: String,
    /// `dev`, `staging` or `prod`.
    pub environment: String,
    /// `public`, `internal`, `confidential` or `restricted`.
    pub data_class: String,
}

/// One upstream.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Its name in URLs and events: `[a-z0-9_-]`, 1–64 characters.
    pub name: String,
    /// `http`, `mcp_http` or `mcp_stdio`.
    pub kind: UpstreamKind,
    /// Base URL (`http` and `mcp_http`): `http://host:port[/base]`.
    #[serde(default)]
    pub url: Option<String>,
    /// Program to start (`mcp_stdio`).
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment, added to a cleared one (only `PATH` is kept).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The credential injected into every forwarded request.
    #[serde(default)]
    pub credential: Option<Credential>,
    /// Classification of this upstream's resources when a route sets none.
    #[serde(default)]
    pub classification: Option<Classification>,
    /// Intent of `prompts/get` (MCP); unset, prompts cannot be fetched.
    #[serde(default)]
    pub prompt_intent: Option<String>,
    /// Intent of `resources/read` (MCP); unset, resources cannot be read.
    #[serde(default)]
    pub resource_intent: Option<String>,
    /// How long an upstream tool list is reused before it is fetched (and its
    /// pins checked) again (MCP).
    #[serde(default = "tool_list_ttl_ms_default")]
    pub tool_list_ttl_ms: u64,
    /// Overrides of `[gateway.limits]`.
    #[serde(default)]
    pub limits: LimitOverrides,
}

fn tool_list_ttl_ms_default() -> u64 {
    1_000
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `env` may hold secrets for the child: show only its keys.
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("credential", &self.credential)
            .field("classification", &self.classification)
            .finish_non_exhaustive()
    }
}

/// A credential the gateway adds on the way out; agents never see it and it is
/// never logged (its `Debug` shows where it comes from, not what it is).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Header to set, e.g. `authorization`.
    pub header: String,
    /// Its value, with `{secret}` where the secret goes, e.g. `Bearer {secret}`.
    #[serde(default = "credential_format_default")]
    pub format: String,
    /// The secret itself (prefer `secret_env` or `secret_file`).
    #[serde(default)]
    pub secret: Option<String>,
    /// An environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the secret (trailing newline ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

fn credential_format_default() -> String {
    "{secret}".into()
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("header", &self.header)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The header value with the secret in place, read now from its source.
    pub fn resolve(&self) -> Result<String, String> {
        let secret = match (&self.secret, &self.secret_env, &self.secret_file) {
            (Some(s), None, None) => s.clone(),
            (None, Some(var), None) => std::env::var(var)
                .map_err(|_| format!("environment variable `{var}` is not set (or not UTF-8)"))?,
            (None, None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            _ => return Err("set exactly one of `secret`, `secret_env`, `secret_file`".into()),
        };
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(self.format.replace("{secret}", &secret))
    }
}

/// Where an argument sends data, for `argument_destinations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// The argument (top-level key of the tool-call arguments); a string or an
    /// array of strings.
    pub argument: String,
    /// What to take from it: `email_domain` (after the last `@`), `url_host`, or
    /// `value` (the whole string).
    pub extract: Extract,
    /// Put before each value, e.g. `email:`.
    #[serde(default)]
    pub prefix: String,
}

/// See [`Destination::extract`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extract {
    /// The domain of an email address, lowercased.
    EmailDomain,
    /// The host of a URL, lowercased.
    UrlHost,
    /// The whole value.
    Value,
}

/// One route: an HTTP method and path template, or an MCP tool, mapped to an
/// intent and a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The upstream's name.
    pub upstream: String,
    /// HTTP method (HTTP upstreams).
    #[serde(default)]
    pub method: Option<String>,
    /// Path template below the upstream (HTTP): `/repos/{owner}/{repo}/issues`;
    /// `{name}` matches one segment, a final `{*name}` the rest.
    #[serde(default)]
    pub path: Option<String>,
    /// Tool name (MCP upstreams).
    #[serde(default)]
    pub tool: Option<String>,
    /// The intent, from the policy intent catalogue.
    pub intent: String,
    /// Resource id template: `github:{owner}/{repo}`; path parameters (HTTP) or
    /// string arguments (MCP) fill the braces.
    pub resource: String,
    /// Classification of the resource; default: the upstream's.
    #[serde(default)]
    pub classification: Option<Classification>,
    /// Destinations derived from the arguments (MCP).
    #[serde(default)]
    pub destinations: Vec<Destination>,
}

/// Builds one problem line: `file: `key`: why`.
struct Problems<'a> {
    at: &'a str,
    lines: Vec<String>,
}

impl Problems<'_> {
    fn add(&mut self, key: &str, why: impl fmt::Display) {
        self.lines.push(format!("{}: `{key}`: {why}", self.at));
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl GatewayConfig {
    /// Every problem of the gateway section, one line each, naming `at` (the
    /// file), the key path and why. `intents` is the policy intent catalogue.
    pub fn problems(&self, at: &str, intents: &[&str]) -> Vec<String> {
        let mut p = Problems { at, lines: Vec::new() };
        if self.hold_timeout_ms == 0 || self.hold_timeout_ms > HOLD_TIMEOUT_MS_MAX {
            p.add(
                "gateway.hold_timeout_ms",
                format!("{} is outside 1..={HOLD_TIMEOUT_MS_MAX}", self.hold_timeout_ms),
            );
        }
        if !(1..=FORENSIC_BODY_BYTES_LIMIT).contains(&self.forensic_body_bytes_max) {
            p.add(
                "gateway.forensic_body_bytes_max",
                format!("{} is outside 1..={FORENSIC_BODY_BYTES_LIMIT}", self.forensic_body_bytes_max),
            );
        }
        if !(1..=FORENSIC_RETENTION_DAYS_LIMIT).contains(&self.forensic_retention_days) {
            p.add(
                "gateway.forensic_retention_days",
                format!("{} is outside 1..={FORENSIC_RETENTION_DAYS_LIMIT}", self.forensic_retention_days),
            );
        }
        check_limits(&mut p, "gateway.limits", &self.limits);
        if self.upstreams.len() > UPSTREAMS_MAX {
            p.add("gateway.upstreams", format!("more than {UPSTREAMS_MAX} upstreams"));
        }
        if self.routes.len() > ROUTES_MAX {
            p.add("gateway.routes", format!("more than {ROUTES_MAX} routes"));
        }
        let mut names = HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let key = format!("gateway.upstreams[{i}]");
            if !valid_name(&u.name) {
                p.add(
                    &format!("{key}.name"),
                    format!("`{}` must be 1–64 characters of a-z, 0-9, `-`, `_`", u.name),
                );
            } else if !names.insert(u.name.as_str()) {
                p.add(
                    &format!("{key}.name"),
                    format!("`{}` is already the name of another upstream", u.name),
                );
            }
            check_upstream(&mut p, &key, u, intents);
            check_limits(&mut p, &format!("{key}.limits"), &u.limits.over(self.limits));
        }
        let mut seen_routes = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("gateway.routes[{i}]");
            let upstream = self.upstreams.iter().find(|u| u.name == r.upstream);
            if upstream.is_none() {
                p.add(&format!("{key}.upstream"), format!("no upstream is named `{}`", r.upstream));
            }
            check_route(&mut p, &key, r, upstream, intents);
            let identity = (r.upstream.as_str(), r.method.clone(), r.path.clone(), r.tool.clone());
            if !seen_routes.insert(identity) {
                p.add(&key, "the same upstream, method and path (or tool) is routed twice");
            }
        }
        p.lines
    }
}

fn check_limits(p: &mut Problems<'_>, key: &str, l: &Limits) {
    let fields: [(&str, u64); 7] = [
        ("connections_max", u64::from(l.connections_max)),
        ("queue_max", u64::from(l.queue_max)),
        ("request_body_bytes_max", l.request_body_bytes_max),
        ("response_body_bytes_max", l.response_body_bytes_max),
        ("connect_timeout_ms", l.connect_timeout_ms),
        ("first_byte_timeout_ms", l.first_byte_timeout_ms),
        ("total_timeout_ms", l.total_timeout_ms),
    ];
    for (name, value) in fields {
        if value == 0 && name != "queue_max" {
            p.add(&format!("{key}.{name}"), "must be at least 1");
        }
    }
    if l.connections_max > 100_000 {
        p.add(&format!("{key}.connections_max"), "at most 100000");
    }
    if l.queue_max > 1_000_000 {
        p.add(&format!("{key}.queue_max"), "at most 1000000");
    }
}

fn check_classification(p: &mut Problems<'_>, key: &str, c: &Classification) {
    for (field, value, allowed) in [
        ("plane", &c.plane, &PLANES[..]),
        ("environment", &c.environment, &ENVIRONMENTS[..]),
        ("data_class", &c.data_class, &DATA_CLASSES[..]),
    ] {
        if !allowed.contains(&value.as_str()) {
            p.add(&format!("{key}.{field}"), format!("`{value}` is not one of {}", allowed.join(", ")));
        }
    }
}

fn check_intent(p: &mut Problems<'_>, key: &str, intent: &str, intents: &[&str]) {
    if !intents.contains(&intent) {
        p.add(
            key,
            format!("intent `{intent}` is not in the policy intent catalogue ({})", intents.join(", ")),
        );
    }
}

fn check_upstream(p: &mut Problems<'_>, key: &str, u: &Upstream, intents: &[&str]) {
    match u.kind {
        UpstreamKind::Http | UpstreamKind::McpHttp => {
            match &u.url {
                None => p.add(&format!("{key}.url"), "is required for this kind"),
                Some(url) => {
                    if let Err(why) = super::http::parse_base_url(url) {
                        p.add(&format!("{key}.url"), why);
                    }
                }
            }
            if u.command.is_some() {
                p.add(&format!("{key}.command"), "only `mcp_stdio` upstreams start a command");
            }
        }
        UpstreamKind::McpStdio => {
            if u.command.as_deref().is_none_or(str::is_empty) {
                p.add(&format!("{key}.command"), "is required for `mcp_stdio`");
            }
            if u.url.is_some() {
                p.add(&format!("{key}.url"), "an `mcp_stdio` upstream has no URL");
            }
        }
    }
    if let Some(c) = &u.credential {
        let ck = format!("{key}.credential");
        if axum::http::HeaderName::from_bytes(c.header.as_bytes()).is_err() {
            p.add(&format!("{ck}.header"), format!("`{}` is not a header name", c.header));
        }
        if !c.format.contains("{secret}") {
            p.add(&format!("{ck}.format"), "must contain `{secret}`");
        }
        if u.kind == UpstreamKind::McpStdio {
            p.add(&ck, "a stdio upstream takes its secrets through `env`, not a header");
        }
        match c.resolve() {
            Err(why) => p.add(&ck, why),
            Ok(value) => {
                if axum::http::HeaderValue::from_str(&value).is_err() {
                    p.add(&ck, "the secret makes an invalid header value (control characters?)");
                }
            }
        }
    }
    if let Some(c) = &u.classification {
        check_classification(p, &format!("{key}.classification"), c);
    }
    for (field, intent) in [("prompt_intent", &u.prompt_intent), ("resource_intent", &u.resource_intent)] {
        if let Some(intent) = intent {
            if !u.kind.is_mcp() {
                p.add(&format!("{key}.{field}"), "only MCP upstreams have prompts and resources");
            }
            check_intent(p, &format!("{key}.{field}"), intent, intents);
            if u.classification.is_none() {
                p.add(&format!("{key}.classification"), format!("is required when `{field}` is set"));
            }
        }
    }
}

fn check_route(p: &mut Problems<'_>, key: &str, r: &Route, upstream: Option<&Upstream>, intents: &[&str]) {
    check_intent(p, &format!("{key}.intent"), &r.intent, intents);
    let kind = upstream.map(|u| u.kind);
    let mut parameters: Vec<String> = Vec::new();
    match kind {
        Some(UpstreamKind::Http) | None if r.tool.is_none() => {
            match r.method.as_deref() {
                None => p.add(&format!("{key}.method"), "is required for an HTTP route"),
                Some(m) if axum::http::Method::from_bytes(m.as_bytes()).is_err() || m != m.to_uppercase() => {
                    p.add(&format!("{key}.method"), format!("`{m}` is not an uppercase HTTP method"));
                }
                Some(_) => {}
            }
            match r.path.as_deref() {
                None => p.add(&format!("{key}.path"), "is required for an HTTP route"),
                Some(path) => match PathTemplate::parse(path) {
                    Ok(t) => parameters = t.parameters().map(str::to_owned).collect(),
                    Err(why) => p.add(&format!("{key}.path"), why),
                },
            }
            if !r.destinations.is_empty() {
                p.add(&format!("{key}.destinations"), "only MCP tool routes derive destinations");
            }
        }
        Some(UpstreamKind::Http) => {
            p.add(&format!("{key}.tool"), "an HTTP upstream has no tools; use `method` and `path`")
        }
        Some(_) | None => {
            match r.tool.as_deref() {
                None | Some("") => p.add(&format!("{key}.tool"), "is required for an MCP route"),
                Some(_) => {}
            }
            for field in [("method", &r.method), ("path", &r.path)] {
                if field.1.is_some() {
                    p.add(&format!("{key}.{}", field.0), "an MCP route names a `tool`, not a method or path");
                }
            }
        }
    }
    let known = if kind.is_some_and(UpstreamKind::is_mcp) { None } else { Some(&parameters[..]) };
    if let Err(why) = super::routes::check_resource_template(&r.resource, known) {
        p.add(&format!("{key}.resource"), why);
    }
    match (&r.classification, upstream.and_then(|u| u.classification.as_ref())) {
        (Some(c), _) => check_classification(p, &format!("{key}.classification"), c),
        (None, Some(_)) => {}
        (None, None) => p.add(
            &format!("{key}.classification"),
            "is required (the upstream has no default classification)",
        ),
    }
    for (j, d) in r.destinations.iter().enumerate() {
        if d.argument.is_empty() {
            p.add(&format!("{key}.destinations[{j}].argument"), "must not be empty");
        }
    }
}
