//! The Warden server: configuration, the data directory, the HTTP API and the
//! background tasks (checkpoint publishing, context expiry), wired together.
//!
//! Owns: [`config`] (TOML + `WARDEN_…` variables), [`datadir`] (the store file and
//! the log signing key), [`routes`] (every HTTP endpoint), [`error`] (the one place
//! errors become HTTP responses) and [`run`] (start-up and graceful shutdown).
//!
//! Depends on every domain crate; nothing depends on it but the CLI.

pub mod config;
pub mod datadir;
pub mod error;
pub mod routes;
mod tasks;

use std::sync::Arc;

use tokio::net::TcpListener;
use warden_core::{Clock, SystemClock};
use warden_ledger::note::NoteSigner;
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

/// Opens the data directory and the log: what both `serve` and offline commands need.
pub fn open_log(config: &Config) -> Result<(Arc<Log>, Arc<NoteSigner>), ServeError> {
    let dir =
        datadir::DataDir::open_or_create(&config.data_dir).map_err(|e| ServeError::Setup(e.to_string()))?;
    let signer =
        dir.log_signer(config.log.origin.as_deref()).map_err(|e| ServeError::Setup(e.to_string()))?;
    let store = SqliteStore::open(&dir.database_path())?;
    let log = Log::open(Arc::new(store))?;
    Ok((Arc::new(log), Arc::new(signer)))
}

/// Runs the server until SIGINT or SIGTERM, then shuts down without losing
/// anything it acknowledged. Prints `warden listening on http://ADDR` once bound.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let (log, signer) = open_log(&config)?;
    let state =
        AppState { log: Arc::clone(&log), signer: Arc::clone(&signer), clock: Arc::new(SystemClock), config };
    // A fresh log publishes its first checkpoint before it serves anything.
    log.publish(&signer)
        .map_err(|e| ServeError::Setup(format!("cannot publish the first checkpoint: {e}")))?;
    let listener = TcpListener::bind(&state.config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: state.config.listen.clone(), source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { addr: state.config.listen.clone(), source })?;
    let background = tasks::spawn(state.clone());
    tracing::info!(%addr, origin = signer.name(), size = log.head().size, "warden started");
    println!("warden listening on http://{addr}");
    println!("log verifier key: {}", signer.verifier_key());
    let app = routes::router(state.clone());
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await;
    background.abort();
    // Every acknowledged append is already durable; this integrates what was
    // sequenced and signs a final checkpoint so a restart serves the same head.
    let log_for_drain = Arc::clone(&log);
    let _ = tokio::task::spawn_blocking(move || log_for_drain.shutdown()).await;
    if let Err(e) = log.publish(&signer) {
        tracing::warn!(error = %e, "final checkpoint not published");
    }
    tracing::info!("warden stopped");
    served.map_err(|source| ServeError::Listen { addr: addr.to_string(), source })
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
