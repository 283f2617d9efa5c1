//! The engine: shared names, agents in mutex shards, the fleet, and the order in
//! which one observation is judged and learned.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hashbrown::HashTable;
use warden_core::Clock;

use crate::baseline::{AgentState, NO_INTENT};
use crate::config::Config;
use crate::detect::{self, Event, Resolved};
use crate::error::ConfigError;
use crate::finding::{BreakerAction, BreakerState, Finding, FindingKind, Outcome};
use crate::fleet::{Arrival, Fleet};
use crate::interner::Shared;
use crate::limits::{DESTINATIONS_PER_OBSERVATION_MAX, SHARDS};
use crate::taxonomy::{Families, Family, Target};

/// One event as the engine sees it. The server builds it from the decision or the
/// telemetry event; every string is borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The agent (`agt_…`).
    pub agent: &'a str,
    /// The session (`sess_…`).
    pub session: &'a str,
    /// When it happened, Unix milliseconds.
    pub at_unix_ms: i64,
    /// The intent (`db.read:raw`).
    pub intent: &'a str,
    /// The resource (`db:orders`, `file:~/.ssh/id_rsa`).
    pub resource: &'a str,
    /// The resource's class, the unit of fleet surge and breakers, written
    /// `environment/plane/data_class` by the server (`prod/data/restricted`).
    pub resource_class: &'a str,
    /// Argument-level destinations (`email:example.com`, `host:api.stripe.com`,
    /// `account:DE89…`); at most [`DESTINATIONS_PER_OBSERVATION_MAX`] are looked at.
    pub destinations: &'a [String],
    /// The action would change the policy, budget, baseline or credentials that
    /// govern this agent itself.
    pub self_governance: bool,
}

/// A summary of one agent's baseline, for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineSummary {
    /// Events learned from.
    pub events: u32,
    /// The baseline is enforced (learning is over).
    pub enforced: bool,
    /// Distinct intents.
    pub intents: usize,
    /// Distinct resources.
    pub resources: usize,
    /// Distinct destinations.
    pub destinations: usize,
    /// Distinct intent-to-intent transitions.
    pub transitions: usize,
}

/// One shard of the agent table.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    // INVARIANT: each agent id at most once, hashed with `mix(id)`.
    pub(crate) agents: HashTable<Box<AgentState>>,
}

impl Shard {
    pub(crate) fn get(&self, id: u32) -> Option<&AgentState> {
        self.agents.find(mix(id), |a| a.id == id).map(|a| &**a)
    }

    pub(crate) fn get_or_insert(&mut self, id: u32) -> &mut AgentState {
        let entry = self.agents.entry(mix(id), |a| a.id == id, |a| mix(a.id));
        entry.or_insert_with(|| Box::new(AgentState { id, ..AgentState::default() })).into_mut()
    }

    pub(crate) fn insert(&mut self, state: Box<AgentState>) -> Option<Box<AgentState>> {
        let id = state.id;
        let previous = self.remove(id);
        self.agents.insert_unique(mix(id), state, |a| mix(a.id));
        previous
    }

    pub(crate) fn remove(&mut self, id: u32) -> Option<Box<AgentState>> {
        self.agents.find_entry(mix(id), |a| a.id == id).ok().map(|e| e.remove().0)
    }
}

/// SplitMix64's finalizer: agent ids are sequential, the table and shard choice need
/// all bits mixed.
pub(crate) fn mix(id: u32) -> u64 {
    let mut z = u64::from(id).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a session id: stable across processes and releases, so snapshots keep
/// sessions (a per-agent table of four, so its weak collision resistance is harmless).
pub(crate) fn session_key(session: &str) -> u64 {
    session
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The interned names, one interner per kind.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) intents: Shared,
    pub(crate) resources: Shared,
    pub(crate) classes: Shared,
    /// `aux`: how many agents hold the destination in their baseline.
    pub(crate) destinations: Shared,
    pub(crate) agents: Shared,
}

/// The behavior engine. Share it across tasks behind an `Arc`: every method takes
/// `&self`; agents live in [`SHARDS`] mutex shards keyed by agent, names in shared
/// interners, and the fleet in one mutex touched only when a session first reaches a
/// resource class.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: Config,
    clock: Arc<dyn Clock>,
    pub(crate) names: Names,
    pub(crate) shards: Box<[Mutex<Shard>]>,
    pub(crate) fleet: Mutex<Fleet>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave an agent's state half-written in a way that
    // matters more than losing the whole engine would.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_ms(clock: &dyn Clock) -> i64 {
    i64::try_from(clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Engine {
    /// An empty engine.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Engine, ConfigError> {
        config.validate()?;
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        Ok(Engine { config, clock, names: Names::default(), shards, fleet: Mutex::new(Fleet::default()) })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn shard(&self, agent: u32) -> MutexGuard<'_, Shard> {
        let index = (mix(agent) >> 32) as usize % SHARDS;
        #[allow(clippy::indexing_slicing)] // INVARIANT: `shards` has SHARDS entries.
        lock(&self.shards[index])
    }

    fn resolve(&self, o: &Observation<'_>) -> Resolved {
        let (intent, mut intent_families) = self.classified(&self.names.intents, o.intent, Target::Intent);
        // Listing crontabs is not persistence: a read-only intent cannot be in a
        // family that needs a change, whatever else its name matches. An intent whose
        // name also says it changes something is not read-only.
        if intent_families.has(Family::Mutating) {
            intent_families = intent_families.without(Families::of(&[Family::ReadOnly]));
        }
        if intent_families.has(Family::ReadOnly) {
            intent_families = intent_families.without(detect::writes_only());
        }
        let (resource, resource_families) =
            self.classified(&self.names.resources, o.resource, Target::Resource);
        let (class, class_families) = self.classified(&self.names.classes, o.resource_class, Target::Class);
        let class_slot =
            class.and_then(|id| self.names.classes.read().aux(id).checked_sub(1)).map(|s| s as usize);
        let users = |names: &Shared, id: Option<u32>| id.map_or(0, |id| names.read().aux(id));
        let (location, parent) = detect::location_hash(o.resource);
        let mut resolved = Resolved {
            intent,
            intent_families,
            intent_users: users(&self.names.intents, intent),
            resource,
            resource_families,
            resource_users: users(&self.names.resources, resource),
            class,
            class_families,
            class_slot,
            destinations: [(None, 0); DESTINATIONS_PER_OBSERVATION_MAX],
            destination_count: o.destinations.len().min(DESTINATIONS_PER_OBSERVATION_MAX),
            location,
            parent,
            destination_hash: o.destinations.first().map_or(0, |d| detect::fnv32(&[d.as_bytes()])),
            domains: [0; DESTINATIONS_PER_OBSERVATION_MAX],
        };
        for (slot, name) in resolved.domains.iter_mut().zip(o.destinations) {
            *slot = detect::domain_hash(name);
        }
        for (slot, name) in resolved.destinations.iter_mut().zip(o.destinations) {
            let id = self.names.destinations.id(name, |_| Families::NONE);
            *slot = (id, users(&self.names.destinations, id));
        }
        resolved
    }

    fn classified(&self, names: &Shared, name: &str, target: Target) -> (Option<u32>, Families) {
        let id = names.id(name, |n| self.config.taxonomy.classify(target, n));
        let families =
            id.map_or_else(|| self.config.taxonomy.classify(target, name), |id| names.read().families(id));
        (id, families)
    }

    /// Judges one event against the agent's baseline and the fleet, then learns it.
    ///
    /// Every finding is returned (the server logs each as an event). Allocates only
    /// when there are findings or a name is seen for the first time.
    pub fn observe(&self, o: &Observation<'_>) -> Outcome {
        let resolved = self.resolve(o);
        let mut outcome = Outcome::default();
        let Some(agent_id) = self.names.agents.id(o.agent, |_| Families::NONE) else {
            // The agent table is full: judge what needs no history.
            let mut event = Event {
                config: &self.config,
                observation: o,
                resolved: &resolved,
                enforced: true,
                findings: &mut outcome.findings,
            };
            detect::self_governance(&mut event);
            outcome.session_risk = outcome.findings.iter().map(|f| f.score).fold(0.0, f32::max);
            outcome.agent_risk = outcome.session_risk;
            return outcome;
        };
        let now = o.at_unix_ms;
        let mut shard = self.shard(agent_id);
        let agent = shard.get_or_insert(agent_id);
        let slot = agent.session_slot(session_key(o.session));
        let enforced = agent.baseline.enforced;
        outcome.learning = !enforced;
        let mut event = Event {
            config: &self.config,
            observation: o,
            resolved: &resolved,
            enforced,
            findings: &mut outcome.findings,
        };
        // Order: rule-based first (it does not depend on the baseline), then each
        // baseline detector against the baseline as it was before this event, then learning.
        detect::self_governance(&mut event);
        let new_destination = detect::novelty(&mut event, &agent.baseline);
        detect::rate(&mut event, &mut agent.baseline);
        detect::off_hours(&mut event, agent, slot);
        let (prev, prev_new) =
            agent.sessions.get(slot).map_or((NO_INTENT, false), |s| (s.last_intent, s.last_intent_new));
        if prev != NO_INTENT && enforced {
            let prev_name = agent
                .baseline
                .intents
                .get(prev as usize)
                .map(|id| self.names.intents.read().name(*id).to_owned());
            detect::transition(
                &mut event,
                &agent.baseline,
                prev,
                prev_new,
                prev_name.as_deref().unwrap_or(""),
            );
        }
        if let Some(session) = agent.sessions.get_mut(slot)
            && now.saturating_sub(session.last_ms) > self.config.chain_idle_ms_max
        {
            session.progress = 0;
            session.taint = Families::NONE;
            session.fan_out = 0;
            session.last_destination = 0;
            session.taint_novelty = 0;
        }
        detect::chains(&mut event, agent, slot, new_destination);
        detect::data_flow(&mut event, agent, slot);
        let learned = detect::learn(&self.config, agent, slot, &resolved, now);
        if let Some(id) = learned.intent {
            self.names.intents.read().add_aux(id, 1);
        }
        if let Some(id) = learned.resource {
            self.names.resources.read().add_aux(id, 1);
        }
        if learned.destination_count > 0 {
            let destinations = self.names.destinations.read();
            for id in learned.destinations.iter().take(learned.destination_count) {
                destinations.add_aux(*id, 1);
            }
        }
        self.arrive(o, &resolved, agent, slot, &mut outcome);
        self.score(agent, slot, now, &mut outcome);
        outcome
    }

    /// Fleet surge: counts this session's first touch of its class and applies the breaker.
    fn arrive(
        &self,
        o: &Observation<'_>,
        r: &Resolved,
        agent: &mut AgentState,
        slot: usize,
        outcome: &mut Outcome,
    ) {
        let Some(class) = r.class else { return };
        let Some(session) = agent.sessions.get_mut(slot) else { return };
        if r.class_slot.is_some_and(|s| session.classes & (1u64 << s) != 0) {
            return;
        }
        let c = &self.config;
        let mut fleet = lock(&self.fleet);
        let Some(fleet_slot) = fleet.slot(class) else { return };
        if r.class_slot.is_none() {
            self.names.classes.read().set_aux(class, fleet_slot as u32 + 1);
        }
        let (kind, action, explanation) = match fleet.arrive(
            fleet_slot,
            o.at_unix_ms,
            c.surge_arrivals_min,
            c.surge_factor,
            c.surge_alpha,
        ) {
            Arrival::Admitted => {
                session.classes |= 1u64 << fleet_slot;
                return;
            }
            Arrival::Tripped { arrivals, usual_per_minute } => (
                FindingKind::SurgeTripped,
                BreakerAction::Tripped,
                format!(
                    "{arrivals} new sessions reached resource class `{}` within one minute against a usual {usual_per_minute} per minute (the last: agent `{}`, session `{}`); the circuit breaker for `{}` is now open and holds new sessions until an operator resets it",
                    o.resource_class, o.agent, o.session, o.resource_class
                ),
            ),
            Arrival::Held { since_unix_ms } => (
                FindingKind::HeldByBreaker,
                BreakerAction::Held,
                format!(
                    "session `{}` of agent `{}` is new to resource class `{}`, whose circuit breaker has been open since {since_unix_ms} (Unix ms); it is held until an operator resets the breaker",
                    o.session, o.agent, o.resource_class
                ),
            ),
        };
        outcome.breaker = Some(action);
        outcome.findings.push(Finding {
            kind,
            score: c.surge_score,
            learning: false,
            subject: o.resource_class.to_owned(),
            tactics: Vec::new(),
            explanation,
        });
    }

    fn score(&self, agent: &mut AgentState, slot: usize, now: i64, outcome: &mut Outcome) {
        let (session_half_life, agent_half_life) =
            (self.config.session_risk_half_life_ms, self.config.agent_risk_half_life_ms);
        let Some(session) = agent.sessions.get_mut(slot) else { return };
        for finding in outcome.findings.iter().filter(|f| f.score > 0.0) {
            session.risk.add(finding.kind.risk_slot(), finding.score, now, session_half_life);
            agent.risk.add(finding.kind.risk_slot(), finding.score, now, agent_half_life);
        }
        outcome.session_risk = session.risk.at(now, session_half_life);
        outcome.agent_risk = agent.risk.at(now, agent_half_life);
    }

    /// Risk of a session and of its agent now, each in `[0, 1]`: O(1), no allocation.
    /// Unknown agents and sessions have risk 0.
    pub fn risk(&self, agent: &str, session: &str) -> (f32, f32) {
        self.risk_at(agent, session, unix_ms(&*self.clock))
    }

    /// [`Engine::risk`] at a given time (Unix ms), for replays and tests.
    pub fn risk_at(&self, agent: &str, session: &str, now_unix_ms: i64) -> (f32, f32) {
        let Some(id) = self.names.agents.read().get(agent) else { return (0.0, 0.0) };
        let shard = self.shard(id);
        let Some(state) = shard.get(id) else { return (0.0, 0.0) };
        let session_risk = state
            .find_session(session_key(session))
            .map_or(0.0, |s| s.risk.at(now_unix_ms, self.config.session_risk_half_life_ms));
        (session_risk, state.risk.at(now_unix_ms, self.config.agent_risk_half_life_ms))
    }

    /// The circuit breaker of a resource class.
    pub fn breaker_state(&self, class: &str) -> BreakerState {
        let Some(id) = self.names.classes.read().get(class) else { return BreakerState::Closed };
        lock(&self.fleet).state(id)
    }

    /// Closes a resource class's circuit breaker (an operator's decision); true if it was open.
    pub fn reset_breaker(&self, class: &str) -> bool {
        let Some(id) = self.names.classes.read().get(class) else { return false };
        lock(&self.fleet).reset(id)
    }

    /// A summary of an agent's baseline, if the engine knows the agent.
    pub fn baseline(&self, agent: &str) -> Option<BaselineSummary> {
        let id = self.names.agents.read().get(agent)?;
        let shard = self.shard(id);
        let b = &shard.get(id)?.baseline;
        Some(BaselineSummary {
            events: b.events,
            enforced: b.enforced,
            intents: b.intents.len(),
            resources: b.resources.len(),
            destinations: b.destinations.len(),
            transitions: b.transitions.len(),
        })
    }

    /// Forgets an agent (revoked, or its retention expired); true if it was known.
    pub fn forget_agent(&self, agent: &str) -> bool {
        let Some(id) = self.names.agents.read().get(agent) else { return false };
        let removed = self.shard(id).remove(id);
        if let Some(state) = &removed {
            self.count_users(&state.baseline, -1);
        }
        removed.is_some()
    }

    /// Adds `delta` to the fleet's user count of everything in a baseline.
    pub(crate) fn count_users(&self, baseline: &crate::baseline::Baseline, delta: i32) {
        for (names, ids) in [
            (&self.names.intents, &baseline.intents),
            (&self.names.resources, &baseline.resources),
            (&self.names.destinations, &baseline.destinations),
        ] {
            let names = names.read();
            for id in ids {
                names.add_aux(*id, delta);
            }
        }
    }

    /// Agents the engine holds state for.
    pub fn agents(&self) -> usize {
        self.shards.iter().map(|s| lock(s).agents.len()).sum()
    }

    /// The engine's own accounting of its heap: agent states and their sets, the
    /// shard tables, the interners and the fleet. Allocator overhead is not counted.
    pub fn heap_bytes(&self) -> usize {
        let agents: usize = self
            .shards
            .iter()
            .map(|s| {
                let shard = lock(s);
                shard.agents.capacity() * (size_of::<Box<AgentState>>() + 1)
                    + shard.agents.iter().map(|a| a.heap_bytes()).sum::<usize>()
            })
            .sum();
        let names = [
            &self.names.intents,
            &self.names.resources,
            &self.names.classes,
            &self.names.destinations,
            &self.names.agents,
        ]
        .iter()
        .map(|n| n.read().heap_bytes())
        .sum::<usize>();
        agents + names + lock(&self.fleet).heap_bytes()
    }
}
