//! The HTTP proxy end to end: the real `warden` binary in front of a real HTTP
//! upstream (`warden-testkit echo`), over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "common/gateway.rs"]
mod gateway;

use std::process::Command;
use std::time::{Duration, Instant};

use gateway::{Gateway, http_agent, start_testkit};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn config(upstream_url: &str, limits: &str) -> String {
    format!(
        r#"
[[gateway.upstreams]]
name = "github"
kind = "http"
url = "{upstream_url}"
classification = {{ plane = "data", environment = "prod", data_class = "internal" }}
credential = {{ header = "authorization", format = "Bearer {{secret}}", secret_env = "GH_TOKEN" }}
{limits}

[[gateway.upstreams]]
name = "down"
kind = "http"
url = "http://127.0.0.1:9"
classification = {{ plane = "data", environment = "prod", data_class = "internal" }}

[[gateway.routes]]
upstream = "github"
method = "POST"
path = "/repos/{{owner}}/{{repo}}/issues"
intent = "ticket.create"
resource = "github:{{owner}}/{{repo}}"

[[gateway.routes]]
upstream = "github"
method = "PATCH"
path = "/repos/{{owner}}/{{repo}}/issues/{{n}}"
intent = "ticket.update"
resource = "github:{{owner}}/{{repo}}"

[[gateway.routes]]
upstream = "github"
method = "DELETE"
path = "/repos/{{owner}}/{{repo}}/issues/{{n}}"
intent = "ticket.delete"
resource = "github:{{owner}}/{{repo}}"

[[gateway.routes]]
upstream = "github"
method = "GET"
path = "/slow/{{ms}}"
intent = "ticket.read"
resource = "github:slow"

[[gateway.routes]]
upstream = "down"
method = "GET"
path = "/x"
intent = "ticket.read"
resource = "down"
"#
    )
}

fn start(limits: &str) -> (Gateway, gateway::Proc, String) {
    let echo = start_testkit(&["echo", "127.0.0.1:0"]);
    let g = Gateway::start(&config(&echo.url, limits), &[("GH_TOKEN", "upstream-secret")]);
    let (_, _, token) = g.agent_token();
    (g, echo, token)
}

fn send(
    g: &Gateway,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let agent = http_agent();
    let url = format!("{}{path}", g.url());
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = agent.run(req.body(body.as_bytes().to_vec()).unwrap()).unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

#[test]
fn allowed_requests_are_forwarded_with_the_upstream_credential_and_recorded() {
    let (g, _echo, token) = start("");
    let body = r#"{"title":"printer on fire"}"#;
    let (status, v) = send(
        &g,
        "POST",
        "/proxy/github/repos/acme/web/issues?q=1",
        &token,
        &[("cookie", "session=agent"), ("x-trace", "t1")],
        body,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["path"], "/repos/acme/web/issues");
    assert_eq!(v["query"], "q=1");
    assert_eq!(v["body"], body);
    assert_eq!(
        v["headers"]["authorization"], "Bearer upstream-secret",
        "the upstream credential is injected: {v}"
    );
    assert!(v["headers"].get("cookie").is_none(), "the agent's cookie is stripped: {v}");
    assert_eq!(v["headers"]["x-trace"], "t1");
    assert!(!v.to_string().contains(&token), "the agent's token never reaches the upstream");

    let action = g.wait_event("action event", |e| e["kind"] == "action");
    let decision = g
        .events()
        .into_iter()
        .find(|e| e["kind"] == "decision" && e["subject"] == action["decision_id"])
        .expect("the decision event");
    assert_eq!(decision["decision"], "allow");
    assert_eq!(decision["resource"], "github:acme/web");
    let digest = Sha256::digest(format!("POST\n/repos/acme/web/issues\nq=1\n{body}\n").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(action["request_sha256"], format!("sha256:{hex}"));
    assert_eq!(action["status"], 200);
    assert_eq!(action["bytes_in"], body.len());
    assert!(action["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(action["outcome"], "success");
    assert_eq!(action["upstream"], "github");
    assert_eq!(action["intent"], "ticket.create");
    let log = g.events().iter().map(Value::to_string).collect::<String>();
    assert!(!log.contains("upstream-secret"), "the upstream credential is never logged");
}

#[test]
fn unmapped_paths_are_404_and_never_forwarded_and_bad_tokens_are_401() {
    let (g, _echo, token) = start("");
    let (status, v) = send(&g, "GET", "/proxy/github/repos/acme/web/secrets", &token, &[], "");
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"], "not_routed");
    assert!(v["message"].as_str().unwrap().contains("GET /repos/acme/web/secrets"), "{v}");
    assert!(g.events().iter().all(|e| e["kind"] != "action"), "nothing was forwarded");
    let (status, v) = send(&g, "GET", "/proxy/nope/x", &token, &[], "");
    assert_eq!((status, v["error"].as_str()), (404, Some("unknown_upstream")));
    let r = http_agent()
        .post(&format!("{}/proxy/github/repos/a/b/issues", g.url()))
        .header("authorization", "Bearer nonsense")
        .send("{}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").unwrap().to_str().unwrap().contains("resource_metadata="));
}

#[test]
fn deny_is_403_and_confirm_is_428_until_confirmed() {
    let (g, _echo, token) = start("");
    let (status, v) = send(&g, "DELETE", "/proxy/github/repos/acme/web/issues/7", &token, &[], "");
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"], "denied");
    assert!(v["decision_id"].as_str().unwrap().starts_with("dec_"), "{v}");
    assert!(v["reasons"].is_array(), "{v}");

    g.push_policy(&[("confirm-updates", "@decision(\"confirm\")\n@reason(\"updates need a confirmation\")\npermit(principal, action == Warden::Action::\"ticket.update\", resource);")]);
    let (status, v) = send(&g, "PATCH", "/proxy/github/repos/acme/web/issues/7", &token, &[], "{}");
    assert_eq!(status, 428, "{v}");
    assert_eq!(v["error"], "confirmation_required");
    assert_eq!(v["confirm"]["header"], "Warden-Confirm");
    let decision = v["decision_id"].as_str().unwrap().to_owned();
    assert!(v["message"].as_str().unwrap().contains(&decision), "the message says exactly what to send: {v}");
    let (status, v) = send(
        &g,
        "PATCH",
        "/proxy/github/repos/acme/web/issues/7",
        &token,
        &[("warden-confirm", &decision)],
        "{}",
    );
    assert_eq!(status, 200, "{v}");
    assert!(v["headers"].get("warden-confirm").is_none(), "Warden's own headers are not forwarded: {v}");
}

#[test]
fn upstream_down_is_502_slow_is_504_and_both_are_recorded() {
    let (g, _echo, token) = start("limits = { first_byte_timeout_ms = 300 }");
    let (status, v) = send(&g, "GET", "/proxy/down/x", &token, &[], "");
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"], "upstream_unavailable");
    let (status, v) = send(&g, "GET", "/proxy/github/slow/2000", &token, &[], "");
    assert_eq!(status, 504, "{v}");
    assert!(v["message"].as_str().unwrap().contains("first_byte_timeout_ms"), "{v}");
    g.wait_event("unavailable action", |e| e["kind"] == "action" && e["outcome"] == "upstream_unavailable");
    g.wait_event("timed-out action", |e| e["kind"] == "action" && e["outcome"] == "upstream_timeout");
}

#[test]
fn oversize_bodies_are_413_and_a_full_queue_is_503() {
    let (g, _echo, token) =
        start("limits = { request_body_bytes_max = 1024, connections_max = 1, queue_max = 0 }");
    let (status, v) = send(&g, "POST", "/proxy/github/repos/acme/web/issues", &token, &[], &"x".repeat(2000));
    assert_eq!(status, 413, "{v}");
    assert!(v["message"].as_str().unwrap().contains("request_body_bytes_max"), "{v}");

    let url = g.url().to_owned();
    let slow_token = token.clone();
    let slow = std::thread::spawn(move || {
        http_agent()
            .get(&format!("{url}/proxy/github/slow/1500"))
            .header("authorization", &format!("Bearer {slow_token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (status, v) = send(&g, "GET", "/proxy/github/slow/1", &token, &[], "");
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"], "upstream_busy");
    assert_eq!(slow.join().unwrap(), 200);
}

#[test]
fn gateway_limits_come_from_the_environment_too() {
    let echo = start_testkit(&["echo", "127.0.0.1:0"]);
    let g = Gateway::start(
        &config(&echo.url, ""),
        &[("GH_TOKEN", "upstream-secret"), ("WARDEN_GATEWAY__LIMITS__REQUEST_BODY_BYTES_MAX", "1024")],
    );
    let (_, _, token) = g.agent_token();
    let (status, v) = send(&g, "POST", "/proxy/github/repos/acme/web/issues", &token, &[], &"x".repeat(2000));
    assert_eq!(status, 413, "{v}");
    let (status, v) = send(&g, "POST", "/proxy/github/repos/acme/web/issues", &token, &[], &"x".repeat(1000));
    assert_eq!(status, 200, "{v}");
}

/// A session token of a new agent whose session has `budgets`.
fn token_with_budgets(g: &Gateway, budgets: &Value) -> String {
    let a =
        g.admin_post("/v1/agents", &json!({"owner": "team-x", "environment": "prod", "scopes": ["tickets"]}));
    let s =
        g.admin_post("/v1/sessions", &json!({"agent_id": a["id"], "purpose": "triage", "budgets": budgets}));
    assert_eq!(s["budgets"]["in_flight_max"], budgets["in_flight_max"], "{s}");
    let form = |fields: &[(&str, &str)]| -> String {
        let mut r =
            http_agent().post(&format!("{}/oauth/token", g.url())).send_form(fields.iter().copied()).unwrap();
        let v: Value = r.body_mut().read_json().unwrap();
        v["access_token"].as_str().unwrap_or_else(|| panic!("no token: {v}")).to_owned()
    };
    let subject = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", a["id"].as_str().unwrap()),
        ("client_secret", a["client_secret"].as_str().unwrap()),
        ("scope", "tickets"),
    ]);
    form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", &subject),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("resource", g.url()),
        ("session_id", s["id"].as_str().unwrap()),
    ])
}

#[test]
fn in_flight_max_admits_one_call_at_a_time_and_frees_the_slot_when_it_ends() {
    let (g, _echo, _) = start("");
    let token = token_with_budgets(&g, &json!({"in_flight_max": 1}));

    // The first call holds its slot while the upstream takes 1.5 s to answer.
    let url = g.url().to_owned();
    let slow_token = token.clone();
    let first = std::thread::spawn(move || {
        let started = Instant::now();
        let mut r = http_agent()
            .get(&format!("{url}/proxy/github/slow/1500"))
            .header("authorization", &format!("Bearer {slow_token}"))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_json::<Value>().unwrap_or(Value::Null), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));

    // The second, while the first is in flight, is refused at once, naming the budget.
    let started = Instant::now();
    let (status, v) = send(&g, "GET", "/proxy/github/slow/1", &token, &[], "");
    let took = started.elapsed();
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"], "denied", "{v}");
    assert_eq!(v["refusal"], "budget", "{v}");
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("in_flight_max"), "the refusal names the budget: {v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(message.contains("budget") && message.contains("in_flight_max"), "not a policy denial: {v}");
    assert!(took < Duration::from_millis(1_000), "refused promptly, not queued behind the first: {took:?}");
    assert!(!first.is_finished(), "the first call was still in flight when the second was refused");

    // The first proceeds to the upstream and completes.
    let (status, v, elapsed) = first.join().unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["path"], "/slow/1500", "{v}");
    assert!(elapsed >= Duration::from_millis(1_500), "{elapsed:?}");

    // Its slot is free again: the next call proceeds.
    let (status, v) = send(&g, "GET", "/proxy/github/slow/1", &token, &[], "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["path"], "/slow/1", "{v}");
}

#[test]
fn config_check_names_every_problem_and_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, config("http://127.0.0.1:1", "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["config", "check"])
        .arg(&good)
        .env("GH_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 upstreams"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[[gateway.upstreams]]
name = "api"
kind = "http"
url = "ftp://x"
credential = { header = "authorization", secret_env = "NOT_SET_ANYWHERE_42" }

[[gateway.routes]]
upstream = "api"
method = "GET"
path = "/a/{id}"
intent = "ticket.read"
resource = "api:{id}"
classification = { plane = "data", environment = "prod", data_class = "internal" }

[[gateway.routes]]
upstream = "api"
method = "GET"
path = "no-slash"
intent = "ticket.explode"
resource = "api:{missing}"
classification = { plane = "air", environment = "prod", data_class = "internal" }

[[gateway.routes]]
upstream = "ghost"
tool = "x"
intent = "ticket.read"
resource = "r"
"#,
    )
    .unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_warden")).args(["config", "check"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "`gateway.upstreams[0].url`",
        "`gateway.upstreams[0].credential`: environment variable `NOT_SET_ANYWHERE_42`",
        "`gateway.routes[1].path`",
        "`gateway.routes[1].intent`: intent `ticket.explode`",
        "`gateway.routes[1].classification.plane`",
        "`gateway.routes[2].upstream`: no upstream is named `ghost`",
    ] {
        assert!(stderr.contains(expected), "missing {expected} in:\n{stderr}");
    }
    assert!(stderr.contains("bad.toml"), "each problem names the file: {stderr}");
    // `warden serve` refuses the same file at start, naming the same problems.
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("d"))
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gateway.routes[1].intent"));
    let _ = json!({});
}

fn scrape(g: &Gateway, bearer: Option<&str>) -> (u16, String, String) {
    let mut req = http_agent().get(format!("{}/metrics", g.url()));
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let mut r = req.call().unwrap();
    let content_type =
        r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (r.status().as_u16(), content_type, r.body_mut().read_to_string().unwrap())
}

fn sample<'a>(
    scrape: &'a prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Value> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| &s.value)
}

fn number(value: Option<&prometheus_parse::Value>) -> f64 {
    match value {
        Some(prometheus_parse::Value::Counter(n) | prometheus_parse::Value::Gauge(n)) => *n,
        other => panic!("not a counter or gauge: {other:?}"),
    }
}

#[test]
fn metrics_count_decisions_actions_and_commits_for_operators_only() {
    let (g, _echo, token) = start("");
    let (status, _) = send(&g, "POST", "/proxy/github/repos/acme/web/issues", &token, &[], "{}");
    assert_eq!(status, 200);
    let (status, _) = send(&g, "GET", "/proxy/down/x", &token, &[], "");
    assert_eq!(status, 502);
    g.wait_event("the second action event", |e| e["kind"] == "action" && e["upstream"] == "down");

    let (status, _, body) = scrape(&g, None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("operator credential"), "{body}");
    let (status, _, body) = scrape(&g, Some(&token));
    assert_eq!(status, 403, "an agent token may not read metrics: {body}");

    let (status, content_type, text) = scrape(&g, Some(&g.admin));
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert!(number(sample(&parsed, "warden_decisions_total", &[("tier", "allow")])) >= 2.0, "{text}");
    assert_eq!(
        number(sample(
            &parsed,
            "warden_gateway_actions_total",
            &[("upstream", "github"), ("outcome", "success")]
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        number(sample(
            &parsed,
            "warden_gateway_actions_total",
            &[("upstream", "down"), ("outcome", "upstream_unavailable")]
        )),
        1.0,
        "{text}"
    );
    assert_eq!(number(sample(&parsed, "warden_log_writer_up", &[])), 1.0);
    assert_eq!(number(sample(&parsed, "warden_decisions_unrecorded_total", &[])), 0.0);
    let commits = number(sample(&parsed, "warden_log_commits_total", &[]));
    let committed = number(sample(&parsed, "warden_log_committed_entries_total", &[]));
    let sequenced = number(sample(&parsed, "warden_log_sequenced_entries", &[]));
    assert!(commits >= 1.0 && committed >= 4.0, "two decisions and two actions at least: {text}");
    assert!(sequenced >= committed, "{text}");
    match sample(&parsed, "warden_log_commit_seconds", &[]) {
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            let total = buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count);
            assert_eq!(total, Some(commits), "every commit is timed: {text}");
            assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count), "cumulative: {buckets:?}");
        }
        other => panic!("no commit histogram: {other:?}\n{text}"),
    }
    match sample(&parsed, "warden_decision_seconds", &[]) {
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            let total = buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count);
            assert!(total >= 2.0, "{text}");
        }
        other => panic!("no decision histogram: {other:?}\n{text}"),
    }
    for detector in ["novelty", "rate", "fleet_surge", "sequence", "self_governance", "data_flow"] {
        assert!(sample(&parsed, "warden_anomalies_total", &[("detector", detector)]).is_some(), "{detector}");
    }
}

#[test]
fn openapi_json_is_a_valid_document_of_every_endpoint_with_its_callers() {
    let (g, _echo, _token) = start("");
    let mut r = http_agent().get(format!("{}/openapi.json", g.url())).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: openapiv3::OpenAPI = r.body_mut().read_json().unwrap();
    assert!(doc.openapi.starts_with("3.0"), "{}", doc.openapi);
    let op = |path: &str, method: &str| -> openapiv3::Operation {
        match doc.paths.paths.get(path) {
            Some(openapiv3::ReferenceOr::Item(item)) => item
                .iter()
                .find(|(m, _)| *m == method)
                .map(|(_, o)| o.clone())
                .unwrap_or_else(|| panic!("{method} {path} not described")),
            _ => panic!("{path} not described"),
        }
    };
    let authorize = op("/v1/authorize", "post");
    let security = authorize.security.clone().unwrap_or_default();
    assert!(security.iter().any(|s| s.contains_key("agent")), "{security:?}");
    assert!(authorize.request_body.is_some());
    let metrics = op("/metrics", "get");
    assert!(metrics.security.unwrap_or_default().iter().any(|s| s.contains_key("operator")));
    assert_eq!(op("/v1/log/checkpoint", "get").security, Some(Vec::new()), "the log is public");
    let proxy = op("/proxy/{upstream}/{rest}", "post");
    let names: Vec<String> = proxy
        .parameters
        .iter()
        .filter_map(|p| match p {
            openapiv3::ReferenceOr::Item(p) => Some(p.parameter_data_ref().name.clone()),
            openapiv3::ReferenceOr::Reference { .. } => None,
        })
        .collect();
    assert_eq!(names, ["upstream", "rest"]);
    let components = doc.components.expect("components");
    assert!(components.security_schemes.contains_key("operator"));
    assert!(components.schemas.contains_key("Error"));
    assert!(doc.paths.paths.len() >= 45, "{} paths", doc.paths.paths.len());
}
