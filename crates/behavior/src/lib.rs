//! Warden's behavioral engine: what each agent normally does, when it departs from
//! that, and how much that should count as risk.
//!
//! Owns: per-agent baselines learned from events (intents, resources, argument-level
//! destinations, rates, hours of the day, intent-to-intent transitions) with a
//! learning period; the detectors (novelty, rate, fleet surge with a circuit breaker
//! per resource class, sequences and ATT&CK-mapped chains, self-governance), each
//! explaining its finding in a sentence; risk per session and per agent in `[0, 1]`;
//! snapshots so baselines survive restarts.
//!
//! Must not depend on: tokio, hyper, a database, or any Warden crate but `core`. It is
//! pure and deterministic: event time comes in with each [`Observation`], "now" for
//! risk reads from a [`warden_core::Clock`]. The server persists snapshots and feeds
//! events; nothing here does IO.
//!
//! ```
//! use std::sync::Arc;
//! use warden_behavior::{Config, Engine, Observation};
//! use warden_core::SystemClock;
//!
//! let config = Config { learning_events_min: 3, learning_ms_min: 0, ..Config::default() };
//! let engine = Engine::new(config, Arc::new(SystemClock)).expect("valid configuration");
//! let destinations = vec!["email:example.com".to_owned()];
//! for i in 0..3 {
//!     engine.observe(&Observation {
//!         agent: "agt_support",
//!         session: "sess_1",
//!         at_unix_ms: 1_776_000_000_000 + i * 1_000,
//!         intent: "email.send",
//!         resource: "mail:outbound",
//!         resource_class: "prod/data/internal",
//!         destinations: &destinations,
//!         self_governance: false,
//!     });
//! }
//! let elsewhere = vec!["email:collect.example".to_owned()];
//! let outcome = engine.observe(&Observation {
//!     agent: "agt_support",
//!     session: "sess_1",
//!     at_unix_ms: 1_776_000_004_000,
//!     intent: "email.send",
//!     resource: "mail:outbound",
//!     resource_class: "prod/data/internal",
//!     destinations: &elsewhere,
//!     self_governance: false,
//! });
//! assert!(outcome.findings.iter().any(|f| f.subject == "email:collect.example"));
//! assert!(outcome.session_risk > 0.0 && outcome.session_risk <= 1.0);
//! ```

mod baseline;
mod codec;
mod config;
mod detect;
mod engine;
mod error;
mod finding;
mod fleet;
mod interner;
pub mod limits;
mod snapshot;
pub mod taxonomy;

pub use config::Config;
pub use engine::{BaselineSummary, Engine, Observation};
pub use error::{ConfigError, SnapshotError};
pub use finding::{BreakerAction, BreakerState, Detector, Finding, FindingKind, Outcome};
pub use snapshot::SNAPSHOT_VERSION;
pub use taxonomy::{Chain, Families, Family, Rule, Step, Tactic, Target, Taxonomy};
