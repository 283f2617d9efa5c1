//! The gateway's overhead: a trivial upstream on loopback called directly and
//! through the real `warden serve` (authentication, route, full decision with
//! the decision event fsynced, forwarding, action event), in the same run.
//!
//! (a) closed-loop throughput with N keep-alive connections, direct vs Warden;
//! (b) open-loop latency at a fixed request rate, direct vs Warden, measured
//!     from each request's scheduled send time (no coordinated omission).
//!
//! A third path is measured as the ceiling: a bare proxy (hyper server and
//! client, its own process, nothing checked and nothing logged). Every request
//! through any proxy is received and sent once more, so what a proxy can reach
//! on these two shared cores is measured, not assumed.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Concurrent connections for the throughput runs.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Fixed request rate of the latency runs, requests per second.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Seconds of latency measurement per path, taken in one-second slices that
    /// alternate between the paths (so that a noisy second of the machine falls on
    /// all of them alike, not on whichever path ran then).
    #[arg(long, default_value_t = 10)]
    latency_duration_s: u64,
    /// Throughput rounds; each measures every path once, in turn. The table shows
    /// every round and the median share.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Measure only the throughput through Warden and its CPU per request (for
    /// comparing two builds of Warden quickly); skips everything else.
    #[arg(long)]
    warden_only: bool,
    /// The `warden` binary; default: next to this one.
    #[arg(long)]
    warden: Option<PathBuf>,
    /// Warden's `[log] decision_durability`: `written` (the default: a crash of
    /// Warden cannot lose a decision) or `synced` (nor can a power loss: every
    /// action waits for an fdatasync).
    #[arg(long, default_value = "written")]
    decision_durability: String,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The bare proxy's arguments (run as a child process by `gateway`).
#[derive(clap::Args)]
pub struct BareProxyArgs {
    /// The upstream's address.
    #[arg(long)]
    upstream: SocketAddr,
}

/// A proxy that forwards every request to the upstream and does nothing else:
/// the ceiling any gateway on this machine is measured against.
pub fn bare_proxy(args: BareProxyArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("bare proxy listening on http://{}", listener.local_addr()?);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, hyper::body::Incoming> =
            Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector);
        let origin = Arc::<str>::from(format!("http://{}", args.upstream));
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (client, origin) = (client.clone(), Arc::clone(&origin));
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let (client, origin) = (client.clone(), Arc::clone(&origin));
                        async move {
                            let (mut parts, body) = request.into_parts();
                            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                            parts.uri = format!("{origin}{path}").parse()?;
                            parts.headers.remove(hyper::header::HOST);
                            let response = client.request(hyper::Request::from_parts(parts, body)).await?;
                            anyhow::Ok(response)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// The upstream: answers every request with a 16-byte JSON body.
async fn upstream() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"{\"ok\":true,\"n\":1}",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn start_warden(
    binary: &PathBuf,
    dir: &std::path::Path,
    upstream: SocketAddr,
    decision_durability: &str,
) -> anyhow::Result<Server> {
    let config = dir.join("warden.toml");
    let mut f = std::fs::File::create(&config)?;
    write!(
        f,
        r#"
[gateway.limits]
connections_max = 1024
queue_max = 4096

[[gateway.upstreams]]
name = "bench"
kind = "http"
url = "http://{upstream}"
classification = {{ plane = "data", environment = "prod", data_class = "internal" }}

[[gateway.routes]]
upstream = "bench"
method = "GET"
path = "/ping"
intent = "ticket.read"
resource = "bench:ping"
"#
    )?;
    let child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("WARDEN_LOG", "warn")
        .env("WARDEN_LOG__DECISION_DURABILITY", decision_durability)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    listening(child)
}

/// Waits for the child's `listening on URL` line.
fn listening(mut child: Child) -> anyhow::Result<Server> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let Some(line) = lines.next() else { bail!("the server exited before listening") };
        if let Some(rest) = line?.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Server { child, url })
}

fn start_bare_proxy(upstream: SocketAddr) -> anyhow::Result<Server> {
    let child = Command::new(std::env::current_exe()?)
        .args(["bare-proxy", "--upstream", &upstream.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the bare proxy")?;
    listening(child)
}

async fn call(client: &HttpClient, request: hyper::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

async fn post(
    client: &HttpClient,
    url: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: String,
) -> anyhow::Result<Value> {
    let mut request = hyper::Request::post(url).header("content-type", content_type);
    if let Some(b) = bearer {
        request = request.header("authorization", format!("Bearer {b}"));
    }
    let (status, bytes) = call(client, request.body(Full::new(Bytes::from(body)))?).await?;
    if !(200..300).contains(&status) {
        bail!("{url}: {status} {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// Registers an agent, starts a session and returns a session token.
async fn agent_token(client: &HttpClient, url: &str, admin: &str) -> anyhow::Result<String> {
    let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap_or_default();
    let agent = post(
        client,
        &format!("{url}/v1/agents"),
        Some(admin),
        "application/json",
        json!({"owner": "bench", "environment": "prod", "scopes": ["tickets"]}).to_string(),
    )
    .await?;
    let session = post(
        client,
        &format!("{url}/v1/sessions"),
        Some(admin),
        "application/json",
        json!({"agent_id": agent.get("id"), "purpose": "bench"}).to_string(),
    )
    .await?;
    let (id, secret, sid) = (
        agent.get("id").and_then(|v| v.as_str()).unwrap_or(""),
        agent.get("client_secret").and_then(|v| v.as_str()).unwrap_or(""),
        session.get("id").and_then(|v| v.as_str()).unwrap_or(""),
    );
    let cc = post(
        client,
        &format!("{url}/oauth/token"),
        None,
        "application/x-www-form-urlencoded",
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "tickets"),
        ]),
    )
    .await?;
    let subject = cc.get("access_token").and_then(|v| v.as_str()).unwrap_or("");
    let exchanged = post(
        client,
        &format!("{url}/oauth/token"),
        None,
        "application/x-www-form-urlencoded",
        form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("resource", url),
            ("session_id", sid),
        ]),
    )
    .await?;
    exchanged.get("access_token").and_then(|v| v.as_str()).map(str::to_owned).context("no session token")
}

#[derive(Clone)]
struct Target {
    uri: hyper::Uri,
    bearer: Option<Arc<str>>,
}

impl Target {
    fn request(&self) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let mut r = hyper::Request::get(self.uri.clone());
        if let Some(b) = &self.bearer {
            r = r.header("authorization", format!("Bearer {b}"));
        }
        Ok(r.body(Full::new(Bytes::new()))?)
    }
}

fn client(connections: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(connections).build(connector)
}

/// Closed loop: `connections` workers send back to back for `duration`.
/// CPU time the process `pid` has used (all threads, user + system), from
/// `/proc/PID/stat` in clock ticks of USER_HZ (100 on Linux).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Closed-loop throughput and, when `server` is given, that process's CPU time per
/// request over the measured interval (µs).
async fn throughput(
    target: &Target,
    connections: usize,
    duration: Duration,
    server: Option<u32>,
) -> anyhow::Result<(f64, Option<f64>)> {
    let client = client(connections);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, target, done, stop) = (client.clone(), target.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = call(&client, target.request()?).await?;
                if status != 200 {
                    bail!("answered {status}: {}", String::from_utf8_lossy(&body));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    // Warm the pool, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start_count = done.load(Ordering::Relaxed);
    let cpu_before = server.and_then(cpu_time);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let count = done.load(Ordering::Relaxed) - start_count;
    let cpu_after = server.and_then(cpu_time);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let cpu_per_request = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if count > 0 => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / count as f64),
        _ => None,
    };
    Ok((count as f64 / elapsed, cpu_per_request))
}

/// Open loop: one request every `1/rate` s for `duration`, latency from each
/// request's scheduled time.
async fn latency(
    client: &HttpClient,
    target: &Target,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let total = duration.as_nanos() / interval.as_nanos().max(1);
    // Paced by a thread of its own with `std::thread::sleep` (a high-resolution
    // timer): tokio's timer wheel has 1 ms granularity, which added up to a
    // millisecond to every measured latency, on every path alike.
    let runtime = tokio::runtime::Handle::current();
    let (client, target) = (client.clone(), target.clone());
    let tasks = tokio::task::spawn_blocking(move || {
        let started = Instant::now() + Duration::from_millis(100);
        let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for i in 0..total {
            let scheduled = started + interval * u32::try_from(i).unwrap_or(u32::MAX);
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let (client, target) = (client.clone(), target.clone());
            tasks.push(runtime.spawn(async move {
                let ok = matches!(call(&client, target.request()?).await, Ok((200, _)));
                anyhow::Ok((u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX), ok))
            }));
        }
        tasks
    })
    .await?;
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for t in tasks {
        let (us, ok) = t.await??;
        if ok {
            histogram.record(us.max(1))?;
        } else {
            errors += 1;
        }
    }
    Ok((histogram, errors))
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let binary = match &args.warden {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("warden"),
    };
    let tmp = tempfile::tempdir()?;
    // The upstream and the load generator share one runtime with two workers:
    // the machine has two cores, shared with Warden.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let upstream = upstream().await?;
        let server = start_warden(&binary, tmp.path(), upstream, &args.decision_durability)?;
        let admin = std::fs::read_to_string(tmp.path().join("data").join("admin.token"))?.trim().to_owned();
        let token = agent_token(&client(4), &server.url, &admin).await?;
        let direct = Target { uri: format!("http://{upstream}/ping").parse()?, bearer: None };
        let warden =
            Target { uri: format!("{}/proxy/bench/ping", server.url).parse()?, bearer: Some(token.into()) };
        let duration = Duration::from_secs(args.duration_s);
        println!(
            "upstream http://{upstream}, warden {} (pid {}); {} connections, {} s per run",
            server.url,
            server.child.id(),
            args.connections,
            args.duration_s
        );
        let bare_server = start_bare_proxy(upstream)?;
        let bare = Target { uri: format!("{}/ping", bare_server.url).parse()?, bearer: None };
        let us = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.1}"));
        if args.warden_only {
            let metrics_client = client(1);
            for round in 1..=args.rounds.max(1) {
                let before = server_metrics(&metrics_client, &server.url, &admin).await?;
                let (rps, cpu) = throughput(&warden, args.connections, duration, Some(server.child.id())).await?;
                let after = server_metrics(&metrics_client, &server.url, &admin).await?;
                let commits = Window::new(
                    before.histograms.get("warden_log_commit_seconds").map_or(&[][..], Vec::as_slice),
                    after.histograms.get("warden_log_commit_seconds").map_or(&[][..], Vec::as_slice),
                );
                println!(
                    "round {round}: through Warden {rps:.0} req/s, server CPU {} µs per request, {:.0} log commits of {:.1} entries",
                    us(cpu),
                    commits.total,
                    (after.entries - before.entries) / commits.total.max(1.0),
                );
            }
            drop(bare_server);
            drop(server);
            return anyhow::Ok(());
        }
        println!();
        println!("| round | direct req/s | bare proxy req/s (share) | Warden req/s (share of direct, of bare) | CPU/request bare, Warden (µs) |");
        println!("|---:|---:|---:|---:|---:|");
        let mut shares = Vec::new();
        let (mut direct_rps, mut bare_rps, mut warden_rps) = (0.0, 0.0, 0.0);
        for round in 1..=args.rounds.max(1) {
            let (d, _) = throughput(&direct, args.connections, duration, None).await?;
            let (b, bare_cpu) = throughput(&bare, args.connections, duration, Some(bare_server.child.id())).await?;
            let (w, warden_cpu) = throughput(&warden, args.connections, duration, Some(server.child.id())).await?;
            println!(
                "| {round} | {d:.0} | {b:.0} ({:.1}%) | {w:.0} ({:.1}%, {:.1}%) | {}, {} |",
                100.0 * b / d.max(1.0),
                100.0 * w / d.max(1.0),
                100.0 * w / b.max(1.0),
                us(bare_cpu),
                us(warden_cpu)
            );
            shares.push((w / d.max(1.0), d, b, w));
        }
        shares.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(&(_, d, b, w)) = shares.get(shares.len() / 2) {
            (direct_rps, bare_rps, warden_rps) = (d, b, w);
        }
        let slices = args.latency_duration_s.max(1);
        // One pool per path, warmed before the first slice, so no slice pays for
        // opening connections.
        let mut paths = Vec::new();
        for target in [&direct, &bare, &warden] {
            let c = client(256);
            latency(&c, target, args.rate, Duration::from_millis(300)).await?;
            paths.push((target, c, Histogram::<u64>::new(3)?, 0u64));
        }
        let metrics_client = client(2);
        let before = server_metrics(&metrics_client, &server.url, &admin).await?;
        for _ in 0..slices {
            for (target, c, hist, errors) in &mut paths {
                let (h, e) = latency(c, target, args.rate, Duration::from_secs(1)).await?;
                hist.add(&h)?;
                *errors += e;
            }
        }
        let after = server_metrics(&metrics_client, &server.url, &admin).await?;
        let mut measured = paths.into_iter().map(|(_, _, h, e)| (h, e));
        let (Some((direct_lat, direct_err)), Some((bare_lat, bare_err)), Some((warden_lat, warden_err))) =
            (measured.next(), measured.next(), measured.next())
        else {
            bail!("three paths were measured");
        };
        let (direct_lat, bare_lat, warden_lat) = (&direct_lat, &bare_lat, &warden_lat);
        println!();
        println!(
            "| path | max throughput (req/s, median round) | share of direct | p50 ms @ {} req/s | p99 ms | p99.9 ms | errors |",
            args.rate
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, rps, h, err) in [
            ("direct", direct_rps, direct_lat, direct_err),
            ("bare proxy (no checks, no log)", bare_rps, bare_lat, bare_err),
            ("through Warden", warden_rps, warden_lat, warden_err),
        ] {
            println!(
                "| {name} | {rps:.0} | {:.1}% | {} | {} | {} | {err} |",
                100.0 * rps / direct_rps.max(1.0),
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.99)),
                ms(h.value_at_quantile(0.999))
            );
        }
        println!();
        println!(
            "Warden throughput: {:.1}% of direct (target >= 50%); the bare proxy reaches {:.1}%, Warden {:.1}% of the bare proxy",
            100.0 * warden_rps / direct_rps.max(1.0),
            100.0 * bare_rps / direct_rps.max(1.0),
            100.0 * warden_rps / bare_rps.max(1.0)
        );
        let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99);
        println!(
            "added p99 at {} req/s: {} ms (target <= 1 ms); the bare proxy adds {} ms",
            args.rate,
            ms(p99(warden_lat).saturating_sub(p99(direct_lat))),
            ms(p99(bare_lat).saturating_sub(p99(direct_lat)))
        );
        report_server(&before, &after, args.rate);
        drop(bare_server);
        drop(server);
        anyhow::Ok(())
    })
}

/// The latency histograms of Warden's own `/metrics` the bench reports, with
/// what each one is called in the report.
const SERVER_HISTOGRAMS: [(&str, &str); 7] = [
    ("warden_log_commit_seconds", "log commit (writing)"),
    ("warden_log_sync_seconds", "log sync (fdatasync, beside the writer)"),
    ("warden_log_integrate_seconds", "integration (the writer waits for it)"),
    ("warden_log_queue_seconds", "appends waiting for the writer"),
    ("warden_decision_seconds", "decision (with its log wait)"),
    ("warden_decision_log_seconds", "of which the wait for the log"),
    ("warden_gateway_action_seconds", "forwarded action (upstream round trip)"),
];

/// Warden's own `/metrics` at one moment: the cumulative buckets (upper bound in
/// seconds, `inf` last) of each of [`SERVER_HISTOGRAMS`], and the entries the log
/// committed.
struct ServerMetrics {
    histograms: std::collections::HashMap<&'static str, Vec<(f64, f64)>>,
    entries: f64,
}

async fn server_metrics(client: &HttpClient, url: &str, admin: &str) -> anyhow::Result<ServerMetrics> {
    let request = hyper::Request::get(format!("{url}/metrics"))
        .header("authorization", format!("Bearer {admin}"))
        .body(Full::new(Bytes::new()))?;
    let (status, body) = call(client, request).await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    let text = String::from_utf8(body.to_vec())?;
    let mut metrics = ServerMetrics { histograms: Default::default(), entries: 0.0 };
    for line in text.lines() {
        let family = SERVER_HISTOGRAMS.iter().find_map(|(name, _)| {
            line.strip_prefix(name).and_then(|l| l.strip_prefix("_bucket{le=\"")).map(|rest| (*name, rest))
        });
        if let Some((name, rest)) = family {
            let (le, count) = rest.split_once("\"} ").context("a bucket line")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse()? };
            metrics.histograms.entry(name).or_default().push((le, count.trim().parse()?));
        } else if let Some(n) = line.strip_prefix("warden_log_committed_entries_total ") {
            metrics.entries = n.trim().parse()?;
        }
    }
    Ok(metrics)
}

/// The difference of two cumulative histograms: how many, the bucket bounds
/// (ms) holding p50 and p99, and how many took longer than `over_ms`.
struct Window {
    total: f64,
    delta: Vec<(f64, f64)>,
}

impl Window {
    fn new(before: &[(f64, f64)], after: &[(f64, f64)]) -> Self {
        let delta: Vec<(f64, f64)> = after.iter().zip(before).map(|((le, a), (_, b))| (*le, a - b)).collect();
        Self { total: delta.last().map_or(0.0, |d| d.1), delta }
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        self.delta.iter().find(|(_, n)| *n >= q * self.total).map_or(f64::INFINITY, |(le, _)| *le) * 1000.0
    }

    fn over(&self, ms: f64) -> f64 {
        let within = self.delta.iter().filter(|(le, _)| *le * 1000.0 <= ms).map(|d| d.1).fold(0.0, f64::max);
        self.total - within
    }
}

/// What the log's commits, syncs and integrations, and Warden's decisions and
/// forwarded actions as the server timed them, did while the latency slices ran
/// (only Warden's slices reach the server).
fn report_server(before: &ServerMetrics, after: &ServerMetrics, rate: u64) {
    let window = |name: &str| {
        let empty = Vec::new();
        Window::new(
            before.histograms.get(name).unwrap_or(&empty),
            after.histograms.get(name).unwrap_or(&empty),
        )
    };
    let commits = window("warden_log_commit_seconds");
    if commits.total > 0.0 {
        println!(
            "during Warden's latency slices at {rate} req/s the log made {:.0} commits of {:.1} entries each",
            commits.total,
            (after.entries - before.entries) / commits.total,
        );
    }
    println!("| server-timed | count | p50 <= ms | p99 <= ms | over 1 ms | over 5 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, what) in SERVER_HISTOGRAMS {
        let w = window(name);
        if w.total > 0.0 {
            println!(
                "| {what} | {:.0} | {} | {} | {:.0} | {:.0} |",
                w.total,
                w.quantile_ms(0.5),
                w.quantile_ms(0.99),
                w.over(1.0),
                w.over(5.0)
            );
        }
    }
}
