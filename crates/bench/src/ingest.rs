//! Durable ingestion through the HTTP API, against the real server process.

use std::io::{BufRead, BufReader};
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
use hyper_util::rt::TokioExecutor;
use rand::{Rng, SeedableRng};

#[derive(clap::Args)]
pub struct Args {
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Reporting interval, in seconds.
    #[arg(long, default_value_t = 10)]
    interval_s: u64,
    /// The `warden` binary; default: next to this one.
    #[arg(long)]
    warden: Option<PathBuf>,
    /// Data directory; default: a fresh temporary one.
    #[arg(long)]
    data_dir: Option<PathBuf>,
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

fn start_server(binary: &PathBuf, data_dir: &std::path::Path) -> anyhow::Result<Server> {
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("WARDEN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let Some(line) = lines.next() else { bail!("server exited before listening") };
        if let Some(rest) = line?.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok(Server { child, url })
}

fn bodies(batch: usize, count: usize) -> Vec<Bytes> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let actions = ["read", "write", "delete", "execute", "send"];
    (0..count)
        .map(|b| {
            let events: Vec<serde_json::Value> = (0..batch)
                .map(|i| {
                    serde_json::json!({
                        "agent_id": format!("agt_bench{}", rng.gen_range(0..1000)),
                        "session_id": format!("sess_b{b}x{}", i % 16),
                        "timestamp": "2026-04-15T01:23:45Z",
                        "action_type": actions.get(i % actions.len()).copied().unwrap_or("read"),
                        "outcome": "success",
                        "axiom_hash": format!("sha256:{:064x}", rng.r#gen::<u128>()),
                        "context_ref": format!("pr_{}", rng.gen_range(0..100_000)),
                    })
                })
                .collect();
            Bytes::from(serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap_or_default())
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let binary = match &args.warden {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("warden"),
    };
    let tmp = tempfile::tempdir()?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().join("data"));
    let server = start_server(&binary, &data_dir)?;
    let pid = server.child.id();
    println!("server {} (pid {pid}), data dir {}", server.url, data_dir.display());
    let bodies = Arc::new(bodies(args.batch, 64));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(drive(&args, &server.url, bodies, pid))
}

async fn drive(args: &Args, url: &str, bodies: Arc<Vec<Bytes>>, pid: u32) -> anyhow::Result<()> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("{url}/v1/telemetry/submit").parse()?;
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (client, uri, bodies, acked, stop) =
            (client.clone(), uri.clone(), bodies.clone(), acked.clone(), stop.clone());
        let (batch, stride) = (args.batch as u64, args.connections);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new(3)?;
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let body = bodies.get(i % bodies.len()).cloned().unwrap_or_default();
                i += stride;
                let request = hyper::Request::post(uri.clone())
                    .header("content-type", "application/json")
                    .body(Full::new(body))?;
                let started = Instant::now();
                let response = client.request(request).await?;
                let status = response.status();
                let bytes = response.into_body().collect().await?.to_bytes();
                if !status.is_success() {
                    bail!("server answered {status}: {}", String::from_utf8_lossy(&bytes));
                }
                latencies.record(started.elapsed().as_micros() as u64)?;
                acked.fetch_add(batch, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    report(args, &acked, pid).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await??)?;
    }
    println!(
        "request latency (batch of {}): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.batch,
        all.value_at_quantile(0.50) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
        all.max() as f64 / 1000.0
    );
    Ok(())
}

async fn report(args: &Args, acked: &AtomicU64, pid: u32) {
    let started = Instant::now();
    let mut last = (started, 0u64);
    println!("| interval | events/s | log size | server RSS (MiB) |");
    println!("|---|---|---|---|");
    while started.elapsed() < Duration::from_secs(args.duration_s) {
        tokio::time::sleep(Duration::from_secs(args.interval_s)).await;
        let now = Instant::now();
        let total = acked.load(Ordering::Relaxed);
        let rate = (total - last.1) as f64 / (now - last.0).as_secs_f64();
        let rss = crate::rss_kib(pid).map_or(0.0, |k| k as f64 / 1024.0);
        println!(
            "| {:.0}–{:.0} s | {:.0} | {} | {:.1} |",
            (last.0 - started).as_secs_f64(),
            (now - started).as_secs_f64(),
            rate,
            total,
            rss
        );
        last = (now, total);
    }
    let total = acked.load(Ordering::Relaxed);
    println!(
        "sustained: {:.0} events/s over {:.0} s ({} events acknowledged after fsync)",
        total as f64 / started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        total
    );
}
