//! The Warden server: configuration, the data directory, the HTTP API and the
//! background tasks (checkpoint publishing, context expiry), wired together.
//!
//! Owns: [`config`] (TOML + `WARDEN_…` variables), [`datadir`] (the store file and
//! the log signing key), [`routes`] (every HTTP endpoint), [`error`] (the one place
//! errors become HTTP responses) and [`run`] (start-up and graceful shutdown).
//!
//! Depends on every domain crate; nothing depends on it but the CLI.

pub mod activity;
pub mod approvals;
pub mod authorize;
pub mod behavior;
pub mod config;
pub mod control;
pub mod credentials;
pub mod datadir;
pub mod error;
pub mod gateway;
pub mod hot;
pub mod incident;
pub mod inflight;
pub mod metrics;
pub mod openapi;
pub mod policy_api;
pub mod routes;
mod tasks;
pub mod trust;

use std::sync::Arc;

use tokio::net::TcpListener;
use warden_core::{Clock, SystemClock};
use warden_ledger::note::NoteSigner;
use warden_store::directory::Directory;
use warden_store::event_index::SqliteEventIndex;
use warden_store::forensics::SqliteForensicStore;
use warden_store::log::Log;
use warden_store::sqlite::SqliteStore;

pub use config::Config;

/// Everything a request handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The verifiable log.
    pub log: Arc<Log>,
    /// Signs checkpoints; its name is the log origin.
    pub signer: Arc<NoteSigner>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// The effective configuration.
    pub config: Arc<Config>,
    /// Agents, sessions, operators, policy versions, revocations (through `hot`).
    pub directory: Arc<dyn Directory>,
    /// The same directory with agents, sessions and budget usage in memory.
    pub hot: Arc<hot::HotDirectory>,
    /// OAuth keys, token verification and revocations.
    pub credentials: Arc<credentials::Credentials>,
    /// The active policy set.
    pub policy: Arc<policy_api::ActivePolicy>,
    /// Calls in flight per session.
    pub in_flight: Arc<inflight::InFlight>,
    /// Upstreams, routes and pins of the HTTP and MCP proxies.
    pub gateway: Arc<gateway::Gateway>,
    /// Approvals and the requests they hold.
    pub approvals: Arc<approvals::Approvals>,
    /// Recent actions per session, for evidence packets.
    pub activity: Arc<activity::Activity>,
    /// The behavior engine: baselines, findings, risk, circuit breakers.
    pub behavior: Arc<behavior::Behavior>,
    /// Active quarantines of agents and resource prefixes, checked on every decision.
    pub quarantines: Arc<incident::Quarantines>,
    /// The event index (agent, session, time, kind per log entry), tailing the log.
    pub events: Arc<incident::EventIndexer>,
    /// Sessions in forensics mode and the bodies kept for their actions.
    pub forensics: Arc<incident::Forensics>,
    /// Counters served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration or data directory is unusable.
    #[error("{0}")]
    Setup(String),
    /// The store failed to open.
    #[error("cannot open the log store: {0}")]
    Store(#[from] warden_store::StoreError),
    /// A network error.
    #[error("cannot listen on `{addr}`: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// What `serve` opens in the data directory.
#[derive(Debug)]
pub struct Opened {
    /// The data directory.
    pub dir: datadir::DataDir,
    /// The log.
    pub log: Arc<Log>,
    /// The log signer.
    pub signer: Arc<NoteSigner>,
    /// The directory store.
    pub directory: Arc<dyn Directory>,
    /// The approval store.
    pub approvals: Arc<dyn warden_store::approvals::ApprovalStore>,
    /// The quarantine, event index and forensics stores.
    pub incident: incident::Stores,
}

/// Opens the data directory, the store and the log.
pub fn open(config: &Config) -> Result<Opened, ServeError> {
    let dir =
        datadir::DataDir::open_or_create(&config.data_dir).map_err(|e| ServeError::Setup(e.to_string()))?;
    let signer =
        dir.log_signer(config.log.origin.as_deref()).map_err(|e| ServeError::Setup(e.to_string()))?;
    let store = Arc::new(SqliteStore::open(&dir.database_path())?);
    let log = Log::open(store.clone())?;
    let events = Arc::new(SqliteEventIndex::open(&dir.event_index_path())?);
    let forensics = Arc::new(SqliteForensicStore::open(&dir.forensics_path())?);
    Ok(Opened {
        dir,
        log: Arc::new(log),
        signer: Arc::new(signer),
        directory: store.clone(),
        incident: incident::Stores { quarantines: store.clone(), events, forensics },
        approvals: store,
    })
}

fn credentials_for(
    config: &Config,
    dir: &datadir::DataDir,
    directory: &dyn Directory,
    addr: std::net::SocketAddr,
) -> Result<credentials::Credentials, ServeError> {
    let setup = |e: String| ServeError::Setup(e);
    let seed = dir.token_seed().map_err(|e| setup(e.to_string()))?;
    let issuer_url = config.oauth.issuer.clone().unwrap_or_else(|| format!("http://{addr}"));
    let issuer = warden_identity::TokenIssuer::from_seed(issuer_url.trim_end_matches('/'), seed);
    let mut lifetimes = warden_identity::Lifetimes::default();
    for (tier, value) in [
        (warden_identity::EnvironmentTier::Dev, config.oauth.lifetime_s_dev),
        (warden_identity::EnvironmentTier::Staging, config.oauth.lifetime_s_staging),
        (warden_identity::EnvironmentTier::Prod, config.oauth.lifetime_s_prod),
    ] {
        if let Some(s) = value {
            lifetimes = lifetimes.with_lifetime_s(tier, s).map_err(|e| setup(e.to_string()))?;
        }
    }
    let revocations = directory.revocations().map_err(|e| setup(e.to_string()))?;
    Ok(credentials::Credentials::new(
        issuer,
        lifetimes,
        config.oauth.control_plane_audiences.clone(),
        &revocations,
    ))
}

/// Runs the server until SIGINT or SIGTERM, then shuts down without losing
/// anything it acknowledged. Prints `warden listening on http://ADDR` once bound.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let Opened { dir, log, signer, directory, approvals, incident } = open(&config)?;
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen.clone(), source })?;
    let addr =
        listener.local_addr().map_err(|source| ServeError::Listen { addr: config.listen.clone(), source })?;
    let state = build_state(config, &dir, &log, &signer, directory, approvals, incident, addr)?;
    // A fresh log publishes its first checkpoint before it serves anything.
    log.publish(&signer)
        .map_err(|e| ServeError::Setup(format!("cannot publish the first checkpoint: {e}")))?;
    expire_orphaned_approvals(&state).await?;
    if let Some(path) = control::bootstrap_admin(&state, &dir).await? {
        println!(
            "first admin credential written to {} (mode 0600); send it as `Authorization: Bearer <token>` \
             or point WARDEN_TOKEN_FILE at it for the CLI",
            path.display()
        );
    }
    let background = tasks::spawn(state.clone());
    let indexer = incident::index::spawn(state.clone());
    tracing::info!(%addr, origin = signer.name(), size = log.head().size, "warden started");
    println!("log verifier key: {}", signer.verifier_key());
    println!("oauth issuer: {}", state.credentials.issuer_url());
    println!("warden listening on http://{addr}");
    let app = routes::router(state.clone());
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await;
    background.abort();
    indexer.abort();
    // No request is in flight any more; captures of the last answers wait for
    // their action events, which the drain below makes durable.
    let forensics = Arc::clone(&state.forensics);
    let captures_stored = tokio::spawn(async move { forensics.drain().await });
    // Every acknowledged append is already durable; this integrates what was
    // sequenced and signs a final checkpoint so a restart serves the same head.
    let log_for_drain = Arc::clone(&log);
    let _ = tokio::task::spawn_blocking(move || log_for_drain.shutdown()).await;
    let _ = captures_stored.await;
    if let Err(e) = state.behavior.snapshot(&log).await {
        tracing::warn!(error = %e, "behavior snapshot not written at shutdown");
    }
    if let Err(e) = log.publish(&signer) {
        tracing::warn!(error = %e, "final checkpoint not published");
    }
    tracing::info!("warden stopped");
    served.map_err(|source| ServeError::Listen { addr: addr.to_string(), source })
}

/// The state `run` serves (and `test_state` tests): every component wired once.
#[allow(clippy::too_many_arguments)] // each is one part of what `open` opened
fn build_state(
    config: Arc<Config>,
    dir: &datadir::DataDir,
    log: &Arc<Log>,
    signer: &Arc<NoteSigner>,
    directory: Arc<dyn Directory>,
    approvals: Arc<dyn warden_store::approvals::ApprovalStore>,
    incident: incident::Stores,
    addr: std::net::SocketAddr,
) -> Result<AppState, ServeError> {
    let hot = Arc::new(hot::HotDirectory::new(directory));
    let directory: Arc<dyn Directory> = hot.clone();
    let credentials = credentials_for(&config, dir, directory.as_ref(), addr)?;
    let intents = policy_api::DEFAULT_INTENTS.iter().map(|s| (*s).to_owned()).collect();
    let policy =
        policy_api::ActivePolicy::load(directory.as_ref(), intents, SystemClock.now().unix_timestamp())
            .map_err(ServeError::Setup)?;
    let gateway =
        gateway::Gateway::build(&config.gateway, &dir.database_path()).map_err(ServeError::Setup)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let behavior = Arc::new(
        behavior::Behavior::open(&config.behavior, Arc::clone(&clock), &config.data_dir, log)
            .map_err(ServeError::Setup)?,
    );
    let approvals = approvals::Approvals::new(approvals);
    let risk_of = Arc::clone(&behavior);
    approvals.set_risk_source(Arc::new(move |agent: &str, session: &str| {
        f64::from(risk_of.risk(agent, session).0)
    }));
    let now = clock.now().unix_timestamp();
    let quarantines = Arc::new(
        incident::Quarantines::load(incident.quarantines, now)
            .map_err(|e| ServeError::Setup(format!("cannot load quarantines: {e}")))?,
    );
    let events = Arc::new(
        incident::EventIndexer::open(incident.events, Arc::clone(log), Arc::clone(&directory))
            .map_err(|e| ServeError::Setup(format!("cannot open the event index: {e}")))?,
    );
    let forensics = Arc::new(
        incident::Forensics::load(
            incident.forensics,
            config.gateway.forensic_body_bytes_max,
            config.gateway.forensic_retention_days,
        )
        .map_err(|e| ServeError::Setup(format!("cannot load the sessions in forensics mode: {e}")))?,
    );
    Ok(AppState {
        log: Arc::clone(log),
        signer: Arc::clone(signer),
        clock,
        config,
        directory,
        hot,
        credentials: Arc::new(credentials),
        policy: Arc::new(policy),
        in_flight: Arc::default(),
        gateway: Arc::new(gateway),
        approvals: Arc::new(approvals),
        activity: Arc::default(),
        behavior,
        quarantines,
        events,
        forensics,
        metrics: Arc::default(),
    })
}

/// Requests held when the process stopped died with it: their approvals can never
/// release them, so they expire (each logged) before anything is served.
async fn expire_orphaned_approvals(state: &AppState) -> Result<(), ServeError> {
    let expired = state
        .approvals
        .expire_orphaned(state)
        .await
        .map_err(|e| ServeError::Setup(format!("cannot expire approvals left pending: {e}")))?;
    if expired > 0 {
        tracing::warn!(expired, "approvals left pending by the previous run expired");
    }
    Ok(())
}

/// Test support: the state `run` serves, over the data directory of `config`,
/// without listening (the OAuth issuer is `http://127.0.0.1:0` unless configured).
/// Publishes the first checkpoint and expires orphaned approvals like `run`.
#[doc(hidden)]
pub async fn test_state(config: Config) -> Result<AppState, ServeError> {
    let config = Arc::new(config);
    let Opened { dir, log, signer, directory, approvals, incident } = open(&config)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let state = build_state(config, &dir, &log, &signer, directory, approvals, incident, addr)?;
    log.publish(&signer)
        .map_err(|e| ServeError::Setup(format!("cannot publish the first checkpoint: {e}")))?;
    expire_orphaned_approvals(&state).await?;
    Ok(state)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
