//! Tunables of the engine: learning period, detector thresholds and weights, risk decay.

use crate::error::ConfigError;
use crate::limits::{CHAIN_STEPS_MAX, CHAINS_MAX};
use crate::taxonomy::Taxonomy;

/// Configuration of an [`crate::Engine`]. `Default` gives production values.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Events an agent must have before its baseline is enforced.
    pub learning_events_min: u32,
    /// Wall time from an agent's first event before its baseline is enforced, ms.
    /// Both this and `learning_events_min` must be met.
    pub learning_ms_min: i64,
    /// Weight of a never-seen intent, before the agent's own novelty habit and the
    /// family's danger are applied.
    pub novel_intent_weight: f32,
    /// Weight of a never-seen resource.
    pub novel_resource_weight: f32,
    /// Weight of a never-seen resource in a place (directory, scheme) neither it nor
    /// its parent was ever in: new territory, between a new file and a new tool.
    pub novel_location_weight: f32,
    /// Weight of a never-seen destination.
    pub novel_destination_weight: f32,
    /// Weight of a send to an organization (a destination's registrable domain, see
    /// `known_domain_discount`) the agent's sends never reached, before its surprise
    /// (from how concentrated its sends are) is applied.
    pub novel_organization_weight: f32,
    /// Multiplier of a new destination's novelty when the send goes to a domain the
    /// agent's sends already reach (a new address at an organization it works with).
    pub known_domain_discount: f32,
    /// Multiplier of the novelty of a never-seen intent or resource when the event
    /// only looks: a read-only intent, nothing of a sensitive-data family (credentials,
    /// bulk or restricted data), no dangerous family the agent does not already act
    /// in. A new way to look, or a first look at a configuration file, is less than a
    /// first change; what a read then takes away is the data-flow detector's.
    pub read_only_discount: f32,
    /// Added to a novelty's multiplier when the thing is in a dangerous family
    /// (credential access, execution, impact, governance…).
    pub danger_boost: f32,
    /// Added to a destination novelty's multiplier when no agent of the fleet has
    /// ever used the destination.
    pub fleet_new_boost: f32,
    /// A thing new to the agent but in the baselines of at least this many agents of
    /// the fleet is something its peers do: its novelty is discounted.
    pub peer_users_min: u32,
    /// The multiplier for such a thing (instead of 1, or `1 + fleet_new_boost` for a
    /// thing no agent has used).
    pub peer_discount: f32,
    /// Smoothing of the per-agent novelty habit (how often it introduces something
    /// new), per event.
    pub novelty_habit_alpha: f32,
    /// Score of a transition between two known intents the agent never made.
    pub rare_transition_weight: f32,
    /// Score of activity in an hour of the day the agent has never been active in
    /// (nor in the hours either side).
    pub off_hours_weight: f32,
    /// Events in one minute below which a burst is never reported.
    pub burst_events_min: u32,
    /// Standard deviations above the agent's own per-minute norm that make a burst.
    pub burst_sigmas: f32,
    /// Active minutes of history the rate detector needs before judging.
    pub rate_minutes_min: u32,
    /// Smoothing of the per-minute rate mean and variance, per active minute.
    pub rate_alpha: f32,
    /// Score of a self-governance attempt.
    pub self_governance_score: f32,
    /// New sessions reaching one resource class within a minute that can trip its
    /// breaker.
    pub surge_arrivals_min: u32,
    /// The window's arrivals must also be this many times the class's usual
    /// arrivals per minute.
    pub surge_factor: f32,
    /// Smoothing of a class's usual arrivals per minute, per 10-second bucket.
    pub surge_alpha: f32,
    /// Score of the arrival that trips a breaker and of every session it holds.
    pub surge_score: f32,
    /// Score of a send to a destination new to the agent carrying a kind of
    /// sensitive data (read earlier in the session) it never sent to a new one.
    pub data_flow_score: f32,
    /// The same through a destination the agent knows.
    pub data_flow_known_score: f32,
    /// Score of a send to a new destination that makes more distinct destinations
    /// after one sensitive read than the agent ever sent one read to.
    pub fan_out_score: f32,
    /// Sends after a sensitive read the agent must have made for its fan-out limit
    /// to count fully (fewer scale `fan_out_score` down).
    pub fan_out_sends_min: u16,
    /// A session's chain progress is forgotten after this much idle time, ms.
    pub chain_idle_ms_max: i64,
    /// Half-life of session risk, ms.
    pub session_risk_half_life_ms: i64,
    /// Half-life of agent risk, ms.
    pub agent_risk_half_life_ms: i64,
    /// Intent families, resource classes and the chain table.
    pub taxonomy: Taxonomy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            learning_events_min: 500,
            learning_ms_min: 24 * 3_600_000,
            novel_intent_weight: 0.3,
            novel_resource_weight: 0.15,
            novel_location_weight: 0.2,
            novel_destination_weight: 0.3,
            novel_organization_weight: 0.4,
            known_domain_discount: 0.5,
            read_only_discount: 0.5,
            danger_boost: 1.0,
            fleet_new_boost: 0.5,
            peer_users_min: 5,
            peer_discount: 0.5,
            novelty_habit_alpha: 0.02,
            rare_transition_weight: 0.1,
            off_hours_weight: 0.15,
            burst_events_min: 20,
            burst_sigmas: 6.0,
            rate_minutes_min: 10,
            rate_alpha: 0.05,
            self_governance_score: 0.95,
            surge_arrivals_min: 100,
            surge_factor: 5.0,
            surge_alpha: 0.02,
            surge_score: 0.6,
            data_flow_score: 0.6,
            data_flow_known_score: 0.3,
            fan_out_score: 0.5,
            fan_out_sends_min: 10,
            chain_idle_ms_max: 3_600_000,
            session_risk_half_life_ms: 15 * 60_000,
            agent_risk_half_life_ms: 6 * 3_600_000,
            taxonomy: Taxonomy::default(),
        }
    }
}

impl Config {
    /// Checks every value; the engine refuses a configuration that would make risk
    /// leave `[0, 1]` or state exceed its bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let unit = [
            ("novel_intent_weight", self.novel_intent_weight),
            ("novel_resource_weight", self.novel_resource_weight),
            ("novel_location_weight", self.novel_location_weight),
            ("novel_destination_weight", self.novel_destination_weight),
            ("novel_organization_weight", self.novel_organization_weight),
            ("known_domain_discount", self.known_domain_discount),
            ("read_only_discount", self.read_only_discount),
            ("novelty_habit_alpha", self.novelty_habit_alpha),
            ("peer_discount", self.peer_discount),
            ("rare_transition_weight", self.rare_transition_weight),
            ("off_hours_weight", self.off_hours_weight),
            ("rate_alpha", self.rate_alpha),
            ("self_governance_score", self.self_governance_score),
            ("surge_alpha", self.surge_alpha),
            ("surge_score", self.surge_score),
            ("data_flow_score", self.data_flow_score),
            ("data_flow_known_score", self.data_flow_known_score),
            ("fan_out_score", self.fan_out_score),
        ];
        for (name, value) in unit {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::OutOfRange { name, range: "0 to 1" });
            }
        }
        let positive = [
            ("danger_boost", self.danger_boost),
            ("fleet_new_boost", self.fleet_new_boost),
            ("burst_sigmas", self.burst_sigmas),
            ("surge_factor", self.surge_factor),
        ];
        for (name, value) in positive {
            if !value.is_finite() || value < 0.0 {
                return Err(ConfigError::OutOfRange { name, range: "a finite number ≥ 0" });
            }
        }
        if self.session_risk_half_life_ms <= 0 || self.agent_risk_half_life_ms <= 0 {
            return Err(ConfigError::OutOfRange { name: "risk half-life", range: "more than 0 ms" });
        }
        if self.taxonomy.chains.len() > CHAINS_MAX {
            return Err(ConfigError::TooManyChains { max: CHAINS_MAX });
        }
        for chain in &self.taxonomy.chains {
            if chain.steps.is_empty() || chain.steps.len() > CHAIN_STEPS_MAX {
                return Err(ConfigError::ChainSteps { chain: chain.id.clone(), max: CHAIN_STEPS_MAX });
            }
            if !(0.0..=1.0).contains(&chain.score) {
                return Err(ConfigError::OutOfRange { name: "chain score", range: "0 to 1" });
            }
        }
        Ok(())
    }
}
