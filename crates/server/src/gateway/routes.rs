//! Mapping a request to an intent and a resource: path templates for HTTP, tool
//! names for MCP, resource id templates, and destinations derived from tool-call
//! arguments.

use std::collections::HashMap;

use serde_json::Value;
use warden_policy::ResourceFacts;

use super::config::{Classification, Destination, Extract, GatewayConfig, Route};

/// Most segments in a path template.
const TEMPLATE_SEGMENTS_MAX: usize = 64;
/// Most destinations derived from one call.
pub const DESTINATIONS_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter(String),
    Rest(String),
}

/// A parsed path template: `/repos/{owner}/{repo}/issues`, `/files/{*path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    // INVARIANT: a `Rest` segment, if any, is the last one.
    segments: Vec<Segment>,
}

impl PathTemplate {
    /// Parses a template; the error says why it is not one.
    pub fn parse(template: &str) -> Result<Self, String> {
        let Some(rest) = template.strip_prefix('/') else {
            return Err(format!("`{template}` must start with `/`"));
        };
        let parts: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
        if parts.len() > TEMPLATE_SEGMENTS_MAX {
            return Err(format!("more than {TEMPLATE_SEGMENTS_MAX} segments"));
        }
        let mut segments = Vec::with_capacity(parts.len());
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (rest, name) = match inner.strip_prefix('*') {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("`{{{inner}}}` is not a parameter name of letters, digits and `_`"));
                }
                if rest && i + 1 != count {
                    return Err(format!("`{{*{name}}}` must be the last segment"));
                }
                if segments.iter().any(|s| matches!(s, Segment::Parameter(n) | Segment::Rest(n) if n == name))
                {
                    return Err(format!("parameter `{name}` appears twice"));
                }
                segments.push(if rest {
                    Segment::Rest(name.into())
                } else {
                    Segment::Parameter(name.into())
                });
            } else if part.contains(['{', '}']) {
                return Err(format!(
                    "segment `{part}` mixes text and a parameter; a parameter is a whole segment"
                ));
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(Self { segments })
    }

    /// Names of its parameters.
    pub fn parameters(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Parameter(n) | Segment::Rest(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The parameters if `path` (starting with `/`, no query) matches.
    pub fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let rest = path.strip_prefix('/')?;
        let mut parts = if rest.is_empty() { Vec::new() } else { rest.split('/').collect::<Vec<_>>() };
        let mut params = HashMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Parameter(name) => {
                    let value = parts.get(i).filter(|v| !v.is_empty())?;
                    params.insert(name.clone(), (*value).to_owned());
                }
                Segment::Rest(name) => {
                    let tail = parts.split_off(i.min(parts.len()));
                    if tail.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), tail.join("/"));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

/// Checks a resource template; `known` lists the parameters it may use (HTTP),
/// or `None` when any argument name is allowed (MCP).
pub fn check_resource_template(template: &str, known: Option<&[String]>) -> Result<(), String> {
    if template.is_empty() {
        return Err("must not be empty".into());
    }
    for name in placeholders(template)? {
        if name != "upstream" && known.is_some_and(|k| !k.iter().any(|p| p == name)) {
            return Err(format!("`{{{name}}}` is not a parameter of the route's path"));
        }
    }
    Ok(())
}

fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = rest.get(start + 1..).unwrap_or("");
        let end = after.find('}').ok_or_else(|| format!("`{template}` has an unclosed `{{`"))?;
        out.push(after.get(..end).unwrap_or(""));
        rest = after.get(end + 1..).unwrap_or("");
    }
    Ok(out)
}

/// Fills `{name}` in `template` from `values`; a missing value leaves an empty
/// string, so the resource id still names the route.
pub fn render(template: &str, values: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(rest.get(..start).unwrap_or(""));
        let after = rest.get(start + 1..).unwrap_or("");
        let Some(end) = after.find('}') else {
            out.push_str(rest.get(start..).unwrap_or(""));
            return out;
        };
        out.push_str(&values(after.get(..end).unwrap_or("")).unwrap_or_default());
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// The resource facts of a route, given its rendered id.
pub fn resource_facts(id: String, c: &Classification) -> ResourceFacts {
    ResourceFacts {
        id,
        plane: c.plane.clone(),
        environment: c.environment.clone(),
        data_class: c.data_class.clone(),
    }
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// The route as configured.
    pub route: Route,
    /// Its path template (HTTP routes).
    pub template: Option<PathTemplate>,
    /// Its classification (the route's, or the upstream's).
    pub classification: Classification,
}

/// The routes of one upstream.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    // INVARIANT: in configuration order; the first match wins.
    routes: Vec<CompiledRoute>,
}

/// What a request or tool call maps to.
#[derive(Debug, Clone)]
pub struct Mapped<'a> {
    /// The route.
    pub route: &'a CompiledRoute,
    /// The resource facts for policy.
    pub resource: ResourceFacts,
}

impl RouteTable {
    /// The routes of `upstream` in `config`; routes whose upstream has no
    /// classification and sets none are skipped (validation refuses them first).
    pub fn build(config: &GatewayConfig, upstream: &str) -> Self {
        let default =
            config.upstreams.iter().find(|u| u.name == upstream).and_then(|u| u.classification.clone());
        let routes = config
            .routes
            .iter()
            .filter(|r| r.upstream == upstream)
            .filter_map(|r| {
                let classification = r.classification.clone().or_else(|| default.clone())?;
                let template = r.path.as_deref().and_then(|p| PathTemplate::parse(p).ok());
                Some(CompiledRoute { route: r.clone(), template, classification })
            })
            .collect();
        Self { routes }
    }

    /// The route of an HTTP request.
    pub fn http(&self, upstream: &str, method: &str, path: &str) -> Option<Mapped<'_>> {
        self.routes.iter().find_map(|r| {
            if r.route.method.as_deref() != Some(method) {
                return None;
            }
            let params = r.template.as_ref()?.matches(path)?;
            let id = render(&r.route.resource, &|name| {
                if name == "upstream" { Some(upstream.to_owned()) } else { params.get(name).cloned() }
            });
            Some(Mapped { route: r, resource: resource_facts(id, &r.classification) })
        })
    }

    /// The route of an MCP tool, with its resource rendered from `arguments`.
    pub fn tool(&self, upstream: &str, tool: &str, arguments: &Value) -> Option<Mapped<'_>> {
        let r = self.routes.iter().find(|r| r.route.tool.as_deref() == Some(tool))?;
        let id = render(&r.route.resource, &|name| {
            if name == "upstream" {
                return Some(upstream.to_owned());
            }
            arguments.get(name).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
        });
        Some(Mapped { route: r, resource: resource_facts(id, &r.classification) })
    }

    /// Whether a tool has a route (unrouted tools are hidden and refused).
    pub fn has_tool(&self, tool: &str) -> bool {
        self.routes.iter().any(|r| r.route.tool.as_deref() == Some(tool))
    }
}

/// The destinations a tool call's arguments send data to, per the route.
pub fn destinations(rules: &[Destination], arguments: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in rules {
        let values: Vec<&str> = match arguments.get(&rule.argument) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for value in values {
            let extracted = match rule.extract {
                Extract::EmailDomain => value.rsplit_once('@').map(|(_, d)| d.trim().to_lowercase()),
                Extract::UrlHost => url_host(value),
                Extract::Value => Some(value.to_owned()),
            };
            // An address the rule cannot read still counts as a destination, so a
            // policy on destinations never sees fewer than there are.
            let extracted = extracted.filter(|d| !d.is_empty()).unwrap_or_else(|| value.to_owned());
            let destination = format!("{}{extracted}", rule.prefix);
            if out.len() < DESTINATIONS_MAX && !out.contains(&destination) {
                out.push(destination);
            }
        }
    }
    out
}

fn url_host(value: &str) -> Option<String> {
    let after_scheme = value.split_once("://").map_or(value, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_once(']').map(|(h, _)| format!("{h}]"))?
    } else {
        host_port.split(':').next()?.to_owned()
    };
    Some(host.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_match_whole_segments_and_rest() {
        let t = PathTemplate::parse("/repos/{owner}/{repo}/issues").unwrap();
        let p = t.matches("/repos/acme/web/issues").unwrap();
        assert_eq!(p.get("owner").map(String::as_str), Some("acme"));
        assert!(t.matches("/repos/acme/web/issues/1").is_none());
        assert!(t.matches("/repos/acme//issues").is_none());
        let rest = PathTemplate::parse("/files/{*path}").unwrap();
        assert_eq!(rest.matches("/files/a/b.txt").unwrap().get("path").map(String::as_str), Some("a/b.txt"));
        assert!(rest.matches("/files").is_none());
        assert!(PathTemplate::parse("repos").is_err());
        assert!(PathTemplate::parse("/a/{*x}/b").is_err());
        assert!(PathTemplate::parse("/a/x{y}").is_err());
        assert!(PathTemplate::parse("/a/{x}/{x}").is_err());
    }

    #[test]
    fn destinations_take_domains_and_hosts() {
        let rules = vec![
            Destination { argument: "to".into(), extract: Extract::EmailDomain, prefix: "email:".into() },
            Destination { argument: "url".into(), extract: Extract::UrlHost, prefix: "host:".into() },
        ];
        let args = json!({"to": ["a@Example.com", "b@corp.internal", "nobody"], "url": "https://u:p@api.x.io:8443/a"});
        assert_eq!(
            destinations(&rules, &args),
            ["email:example.com", "email:corp.internal", "email:nobody", "host:api.x.io"]
        );
        assert_eq!(render("github:{owner}/{repo}", &|n| Some(n.to_uppercase())), "github:OWNER/REPO");
    }
}
