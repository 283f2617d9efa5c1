//! Warden's domain vocabulary, shared by every other crate.
//!
//! Owns: validated identifiers ([`AgentId`], [`SessionId`]), the telemetry event
//! schema and its validation ([`event`]), RFC 8785 canonical JSON ([`canonical`]),
//! context commitments ([`commitment`]), the named limits ([`limits`]), counters and
//! histograms in the Prometheus text format ([`metrics`]) and the [`Clock`]
//! abstraction.
//!
//! Must not depend on: any other Warden crate, tokio, hyper or a database. Everything
//! here is pure and deterministic: time and randomness come in as arguments.

pub mod action;
pub mod admin;
pub mod canonical;
pub mod clock;
pub mod commitment;
pub mod event;
pub mod ids;
pub mod limits;
pub mod metrics;

pub use clock::{Clock, FixedClock, SystemClock};
pub use event::{FieldError, LoggedEvent, TelemetryEvent};
pub use ids::{AgentId, SessionId};
