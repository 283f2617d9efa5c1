//! What the engine reports: findings, each explained in words, and the outcome of
//! one observation.

use std::fmt;

use crate::taxonomy::Tactic;

/// The detector that produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Detector {
    /// Something this agent has never used.
    Novelty,
    /// A change in the agent's own rate or time of day.
    Rate,
    /// Many sessions reaching one resource class at once.
    FleetSurge,
    /// A rare transition or a known multi-step chain.
    Sequence,
    /// The agent acting on its own governance.
    SelfGovernance,
    /// Sensitive data read in a session going somewhere it never went.
    DataFlow,
}

impl Detector {
    /// Every detector.
    pub const ALL: [Detector; 6] = [
        Detector::Novelty,
        Detector::Rate,
        Detector::FleetSurge,
        Detector::Sequence,
        Detector::SelfGovernance,
        Detector::DataFlow,
    ];

    /// The detector's name, as logged.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Novelty => "novelty",
            Detector::Rate => "rate",
            Detector::FleetSurge => "fleet_surge",
            Detector::Sequence => "sequence",
            Detector::SelfGovernance => "self_governance",
            Detector::DataFlow => "data_flow",
        }
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What exactly was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// An intent the agent never used.
    NewIntent,
    /// A resource the agent never touched.
    NewResource,
    /// A destination the agent never sent to.
    NewDestination,
    /// Events per minute far above the agent's own norm.
    Burst,
    /// Activity in an hour of the day the agent is never active in.
    OffHours,
    /// A transition between two known intents the agent never made.
    RareTransition,
    /// A known multi-step attack chain completed in one session.
    Chain,
    /// This arrival tripped the resource class's circuit breaker.
    SurgeTripped,
    /// A new session held because its resource class's breaker is open.
    HeldByBreaker,
    /// The action would change the agent's own policy, budget, baseline or credentials.
    SelfGovernance,
    /// A send carrying a kind of sensitive data (read earlier in the session) the
    /// agent never sent to such a destination.
    DataFlow,
    /// A send to one more distinct new destination after one sensitive read than the
    /// agent ever made.
    FanOut,
}

impl FindingKind {
    /// The detector this kind of finding comes from.
    pub fn detector(self) -> Detector {
        match self {
            FindingKind::NewIntent | FindingKind::NewResource | FindingKind::NewDestination => {
                Detector::Novelty
            }
            FindingKind::Burst | FindingKind::OffHours => Detector::Rate,
            FindingKind::RareTransition | FindingKind::Chain => Detector::Sequence,
            FindingKind::SurgeTripped | FindingKind::HeldByBreaker => Detector::FleetSurge,
            FindingKind::SelfGovernance => Detector::SelfGovernance,
            FindingKind::DataFlow | FindingKind::FanOut => Detector::DataFlow,
        }
    }

    /// The slot of risk this kind adds to, `0..8`. A new intent and a new resource
    /// share one (both say "doing something it has not done"; a new tool usually
    /// brings a new resource), so they do not compound; so do a chain and a data flow
    /// (a sensitive read then a send is what `collect-exfiltrate` is); every other
    /// kind is its own evidence.
    pub fn risk_slot(self) -> usize {
        match self {
            FindingKind::NewIntent | FindingKind::NewResource => 0,
            FindingKind::NewDestination => 1,
            FindingKind::Burst => 2,
            FindingKind::OffHours => 3,
            FindingKind::RareTransition => 4,
            FindingKind::Chain | FindingKind::DataFlow | FindingKind::FanOut => 5,
            FindingKind::SurgeTripped | FindingKind::HeldByBreaker => 6,
            FindingKind::SelfGovernance => 7,
        }
    }

    /// The kind's name, as logged.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::NewIntent => "new_intent",
            FindingKind::NewResource => "new_resource",
            FindingKind::NewDestination => "new_destination",
            FindingKind::Burst => "burst",
            FindingKind::OffHours => "off_hours",
            FindingKind::RareTransition => "rare_transition",
            FindingKind::Chain => "chain",
            FindingKind::SurgeTripped => "surge_tripped",
            FindingKind::HeldByBreaker => "held_by_breaker",
            FindingKind::SelfGovernance => "self_governance",
            FindingKind::DataFlow => "data_flow",
            FindingKind::FanOut => "fan_out",
        }
    }
}

/// One anomaly: the server logs each as an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// Its contribution to risk, in `[0, 1]`; 0 while the agent is learning.
    pub score: f32,
    /// Found while the agent's baseline was still being learned: recorded, not scored.
    pub learning: bool,
    /// The thing the finding is about: an intent, resource, destination, class or chain id.
    pub subject: String,
    /// ATT&CK tactics, in order, for chain findings; empty otherwise.
    pub tactics: Vec<Tactic>,
    /// A sentence naming the agent, the thing, and the baseline it departs from.
    pub explanation: String,
}

impl Finding {
    /// The detector that produced it.
    pub fn detector(&self) -> Detector {
        self.kind.detector()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} {:.2}{}] {}",
            self.kind.name(),
            self.score,
            if self.learning { " learning" } else { "" },
            self.explanation
        )
    }
}

/// The state of one resource class's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// New sessions reach the class.
    Closed,
    /// New sessions in the class are held until an operator resets the breaker.
    Tripped {
        /// When it tripped, Unix milliseconds.
        since_unix_ms: i64,
        /// New sessions that reached the class in the minute that tripped it.
        arrivals: u32,
    },
}

/// What the breaker did to this observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerAction {
    /// This observation tripped its class's breaker (and is held).
    Tripped,
    /// This observation is a new session in a class whose breaker is open: hold it.
    Held,
}

/// The result of observing one event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// Every finding, in the order found; empty (and unallocated) for normal traffic.
    pub findings: Vec<Finding>,
    /// The session's risk after this event, in `[0, 1]`.
    pub session_risk: f32,
    /// The agent's risk after this event, in `[0, 1]`.
    pub agent_risk: f32,
    /// The agent's baseline is still being learned.
    pub learning: bool,
    /// Set when a circuit breaker tripped on or holds this observation.
    pub breaker: Option<BreakerAction>,
}
