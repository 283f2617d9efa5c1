//! The per-agent detectors: novelty, rate and time of day, sequence (rare
//! transitions and known chains) and self-governance. Each compares one event with
//! the baseline *before* the event, then the engine learns the event.
//!
//! Fleet surge lives in `fleet.rs`: it needs the whole fleet, not one agent.

use crate::Observation;
use crate::baseline::{
    AgentState, Baseline, HABIT_DESTINATION, HABIT_INTENT, HABIT_LOCATION, HABIT_RESOURCE, HABIT_TRANSITION,
    NO_INTENT, Session,
};
use crate::config::Config;
use crate::finding::{Finding, FindingKind};
use crate::limits::DESTINATIONS_PER_OBSERVATION_MAX;
use crate::taxonomy::{Families, Family};

/// An observation's names as ids, with what the taxonomy and the fleet say about them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved {
    pub(crate) intent: Option<u32>,
    pub(crate) intent_families: Families,
    /// Agents holding the intent in their baseline.
    pub(crate) intent_users: u32,
    pub(crate) resource: Option<u32>,
    pub(crate) resource_families: Families,
    /// Agents holding the resource in their baseline.
    pub(crate) resource_users: u32,
    pub(crate) class: Option<u32>,
    pub(crate) class_families: Families,
    /// The class's fleet slot, if it has one already.
    pub(crate) class_slot: Option<usize>,
    /// Destination ids (`None`: the interner is full) and how many agents hold each in
    /// their baseline.
    pub(crate) destinations: [(Option<u32>, u32); DESTINATIONS_PER_OBSERVATION_MAX],
    pub(crate) destination_count: usize,
    /// The resource's location and that location's parent ([`location_hash`]).
    pub(crate) location: u32,
    pub(crate) parent: Option<u32>,
    /// FNV-1a of the first destination (0: none).
    pub(crate) destination_hash: u32,
    /// Each destination's [`domain_hash`], in the order of `destinations`.
    pub(crate) domains: [u32; DESTINATIONS_PER_OBSERVATION_MAX],
}

impl Resolved {
    /// The event's families: its intent's, and its resource's and class's — except
    /// that a read-only intent takes no persistence, evasion or impact from what it reads.
    pub(crate) fn families(&self) -> Families {
        self.intent_families.union(self.object_families(self.class_families))
    }

    /// The resource's families (with `class_families`), masked for read-only intents.
    pub(crate) fn object_families(&self, class_families: Families) -> Families {
        let object = self.resource_families.union(class_families);
        if self.intent_families.has(Family::ReadOnly) { object.without(writes_only()) } else { object }
    }

    /// Whether the event sends: it has destinations and its intent is not read-only
    /// (a fetch names a host but brings data in).
    pub(crate) fn is_send(&self) -> bool {
        self.destination_count > 0 && !self.intent_families.has(Family::ReadOnly)
    }

    pub(crate) fn destinations(&self) -> &[(Option<u32>, u32)] {
        self.destinations.get(..self.destination_count).unwrap_or_default()
    }
}

/// 32-bit FNV-1a over byte slices, never 0 (0 means "none" where it is stored).
pub(crate) fn fnv32(parts: &[&[u8]]) -> u32 {
    let hash = parts
        .iter()
        .flat_map(|p| p.iter())
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
    hash.max(1)
}

/// Where a resource lives, and that place's parent, as hashes stable across
/// processes: its scheme and its path up to the last `/` (a leading `./` dropped).
/// `file:./services/api/.env` is in `file:services/api`, whose parent is
/// `file:services`; `file:README.md` and `db:orders` are at their scheme's root,
/// which has no parent.
pub(crate) fn location_hash(resource: &str) -> (u32, Option<u32>) {
    let (scheme, mut path) = resource.split_once(':').unwrap_or(("", resource));
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let hash = |place: &str| fnv32(&[scheme.as_bytes(), b":", place.as_bytes()]);
    match path.rsplit_once('/') {
        None => (hash(""), None),
        Some((location, _)) => {
            let parent = location.rsplit_once('/').map_or("", |(parent, _)| parent);
            (hash(location), Some(hash(parent)))
        }
    }
}

/// The organization a destination belongs to, as a hash stable across processes:
/// for a name with dots (`email:team3.acme.example`, `host:api.github.com`) its
/// registrable domain by the public suffix list, lower-cased, whatever the scheme
/// (`acme.example`: mail and web to one organization are one organization;
/// `mail.example.co.uk` is `example.co.uk`, and a name the list does not know ends
/// in a one-label suffix, so `team3.acme.example` is `acme.example`); a public suffix
/// itself is its own domain; the whole address for an IP; a name without dots
/// (`user:USR002`, `account:DE89…`) is its own domain, scheme included.
pub(crate) fn domain_hash(destination: &str) -> u32 {
    let (scheme, name) = destination.split_once(':').unwrap_or(("", destination));
    let name = name.rsplit_once('@').map_or(name, |(_, domain)| domain);
    let name = name.trim_end_matches('.');
    let numeric = name.split('.').all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()));
    if numeric || !name.contains('.') {
        return fnv32(&[scheme.as_bytes(), b":", name.as_bytes()]);
    }
    // The list is lower-case; a host name is at most 253 bytes, so a longer name is
    // not one and is hashed as given.
    let mut lower = [0u8; 253];
    let Some(buffer) = lower.get_mut(..name.len()) else {
        return fnv32(&[b"domain:", name.as_bytes()]);
    };
    buffer.copy_from_slice(name.as_bytes());
    buffer.make_ascii_lowercase();
    let buffer: &[u8] = buffer;
    let registrable = psl::domain(buffer).map_or(buffer, |domain| domain.as_bytes());
    fnv32(&[b"domain:", registrable])
}

/// Families only an action that changes something can be in.
pub(crate) fn writes_only() -> Families {
    Families::of(&[
        Family::Persistence,
        Family::DefenseEvasion,
        Family::Impact,
        Family::PrivilegeEscalation,
        Family::Governance,
        Family::Control,
    ])
}

/// What the detectors share for one event.
pub(crate) struct Event<'a, 'o> {
    pub(crate) config: &'a Config,
    pub(crate) observation: &'a Observation<'o>,
    pub(crate) resolved: &'a Resolved,
    /// The agent's baseline was enforced before this event.
    pub(crate) enforced: bool,
    pub(crate) findings: &'a mut Vec<Finding>,
}

impl Event<'_, '_> {
    fn report(
        &mut self,
        kind: FindingKind,
        score: f32,
        baseline_relative: bool,
        subject: &str,
        explanation: String,
    ) {
        let learning = baseline_relative && !self.enforced;
        self.findings.push(Finding {
            kind,
            score: if learning { 0.0 } else { score.clamp(0.0, 1.0) },
            learning,
            subject: subject.to_owned(),
            tactics: Vec::new(),
            explanation,
        });
    }

    fn agent(&self) -> &str {
        self.observation.agent
    }
}

/// How surprising a new thing is: the kind's weight, scaled by the surprise of one
/// more new thing for this agent (its information, `-log2` of how often the agent
/// meets something new of that kind, over 8 bits: an agent that meets a new one every
/// other call is barely surprised, one that has not in hundreds of calls fully);
/// raised when no agent of the fleet has used the thing and lowered when its peers
/// commonly do; raised by each dangerous family (at most two) the agent has never
/// acted in.
fn novelty_score(config: &Config, weight: f32, habit: f32, new_danger: Families, users: u32) -> f32 {
    let fleet = if users == 0 {
        1.0 + config.fleet_new_boost
    } else if users >= config.peer_users_min {
        config.peer_discount
    } else {
        1.0
    };
    let multiplier = fleet + config.danger_boost * new_danger.count().min(2) as f32;
    (weight * surprise(habit) * multiplier).clamp(0.0, 1.0)
}

/// The information of one more new thing for an agent that meets new things of its
/// kind at rate `habit`: `-log2(habit)` over 8 bits, in `[0, 1]`.
fn surprise(habit: f32) -> f32 {
    (-habit.max(1.0 / 256.0).log2() / 8.0).clamp(0.0, 1.0)
}

/// How the fleet knows a thing, in words.
fn fleet_words(users: u32) -> String {
    match users {
        0 => "no agent of the fleet has used it before".to_owned(),
        1 => "one other agent of the fleet uses it".to_owned(),
        n => format!("{n} agents of the fleet use it"),
    }
}

/// Self-governance: the caller marks the action; it scores even while learning,
/// because it departs from a rule, not from a baseline.
pub(crate) fn self_governance(event: &mut Event<'_, '_>) {
    if !event.observation.self_governance {
        return;
    }
    let o = event.observation;
    let explanation = format!(
        "agent `{}` attempted `{}` on `{}`, which governs the agent itself; no agent may change its own policy, budget, baseline or credentials",
        o.agent, o.intent, o.resource
    );
    let score = event.config.self_governance_score;
    event.report(FindingKind::SelfGovernance, score, false, o.intent, explanation);
}

/// Novelty of intent, resource and destinations, reported only once the baseline is
/// enforced (while learning, everything is new: that is what learning records).
/// Returns whether the event sent to a destination new to the agent.
pub(crate) fn novelty(event: &mut Event<'_, '_>, baseline: &Baseline) -> bool {
    let (config, o, r) = (event.config, event.observation, *event.resolved);
    let learned = baseline.events;
    let new_danger =
        |families: Families| families.intersection(Families::dangerous()).without(baseline.families_seen);
    let intent_new = r.intent.is_none_or(|id| baseline.intent_index(id).is_none());
    if intent_new && event.enforced {
        let danger = new_danger(r.intent_families);
        let discount = look_discount(config, &r, r.intent_families, danger);
        let score = discount
            * novelty_score(
                config,
                config.novel_intent_weight,
                baseline.habits[HABIT_INTENT],
                danger,
                r.intent_users,
            );
        let explanation = format!(
            "agent `{}` used intent `{}` for the first time; its baseline holds {} intents learned from {} events, and {} (families of `{}`: {})",
            event.agent(),
            o.intent,
            baseline.intents.len(),
            learned,
            fleet_words(r.intent_users),
            o.intent,
            r.intent_families
        );
        event.report(FindingKind::NewIntent, score, true, o.intent, explanation);
    }
    let resource_new = r.resource.is_none_or(|id| !baseline.knows_resource(id));
    if resource_new && event.enforced {
        // A class's families (restricted, prod control) weigh only when the agent has
        // never worked in the class: a new record where it works all day is routine.
        let class_new = r.class.is_none_or(|id| !baseline.knows_class(id));
        let class_families = if class_new { r.class_families } else { Families::NONE };
        let families = r.object_families(class_families);
        // A new file next to the ones it works on is routine; one in a place neither
        // it nor its parent ever held is measured against how often the agent
        // wanders, and a change made there (delete, grant, install) weighs as a
        // dangerous family new to it, whatever it did elsewhere.
        let far = is_far(baseline, &r);
        let (weight, habit, danger) = if far {
            let changes = r.intent_families.intersection(writes_only());
            (
                config.novel_location_weight,
                baseline.habits[HABIT_LOCATION],
                new_danger(families).union(changes),
            )
        } else {
            (config.novel_resource_weight, baseline.habits[HABIT_RESOURCE], new_danger(families))
        };
        let score = look_discount(config, &r, families, danger)
            * novelty_score(config, weight, habit, danger, r.resource_users);
        let explanation = format!(
            "agent `{}` touched resource `{}` (class `{}`{}) for the first time{}; its baseline holds {} resources learned from {} events, and {}",
            event.agent(),
            o.resource,
            o.resource_class,
            if class_new { ", also new to it" } else { "" },
            if far { ", in a place it never worked in" } else { "" },
            baseline.resources.len(),
            learned,
            fleet_words(r.resource_users)
        );
        event.report(FindingKind::NewResource, score, true, o.resource, explanation);
    }
    let mut any_new = false;
    let send = r.is_send();
    for (index, (id, users)) in r.destinations().iter().enumerate() {
        if id.is_some_and(|id| baseline.knows_destination(id)) {
            continue;
        }
        any_new = true;
        if !event.enforced {
            continue;
        }
        let name = o.destinations.get(index).map_or("", String::as_str);
        // A send is measured against how often the agent's sends go somewhere new,
        // and a new address at an organization its sends already reach weighs less
        // than a first send to an organization. A fetch names a host but brings data
        // in: its new host is a new thing read, measured as resources are.
        let known_domain = r.domains.get(index).is_some_and(|d| baseline.knows_domain(*d));
        let (weight, habit) = match (send, known_domain) {
            (true, true) => (
                config.novel_destination_weight * config.known_domain_discount,
                baseline.habits[HABIT_DESTINATION],
            ),
            (true, false) => (
                config.novel_organization_weight,
                baseline.new_org_rate().unwrap_or(baseline.habits[HABIT_DESTINATION]),
            ),
            (false, _) => (config.novel_destination_weight, baseline.habits[HABIT_RESOURCE]),
        };
        let score = novelty_score(config, weight, habit, Families::NONE, *users);
        let fleet = fleet_words(*users);
        let explanation = format!(
            "agent `{}` {} destination `{}` for the first time with `{}`{}; its baseline holds {} destinations learned from {} events, and {}",
            event.agent(),
            if send { "sent to" } else { "reached" },
            name,
            o.intent,
            match (send, known_domain) {
                (true, true) => ", in a domain its sends already reach".to_owned(),
                (true, false) => format!(
                    ", in a domain it never sent to (its {} sends reached {} organizations, {} of them once)",
                    baseline.sends,
                    baseline.domains.len(),
                    baseline.orgs_reached_once()
                ),
                (false, _) => String::new(),
            },
            baseline.destinations.len(),
            learned,
            fleet
        );
        event.report(FindingKind::NewDestination, score, true, name, explanation);
    }
    any_new
}

/// The multiplier of a novelty (`config.read_only_discount`, else 1) when the event
/// only looks: its intent is read-only, what it touches (`families`) holds no
/// sensitive data, and it is in no dangerous family new to the agent (`danger`). A
/// first look at a configuration file or a new read-only tool is less than a first
/// change; a first read of credentials or restricted data is not discounted.
fn look_discount(config: &Config, r: &Resolved, families: Families, danger: Families) -> f32 {
    let looks_only = r.intent_families.has(Family::ReadOnly)
        && danger == Families::NONE
        && !families.union(r.intent_families).intersects(Families::sensitive_data());
    if looks_only { config.read_only_discount } else { 1.0 }
}

/// Whether the event's resource is in a location neither the agent nor the
/// location's parent ever held.
pub(crate) fn is_far(baseline: &Baseline, r: &Resolved) -> bool {
    !baseline.knows_location(r.location) && r.parent.is_none_or(|p| !baseline.knows_location(p))
}

/// A burst: this minute's events far above the agent's own per-minute norm.
pub(crate) fn rate(event: &mut Event<'_, '_>, baseline: &mut Baseline) {
    let config = event.config;
    let minute = u32::try_from(event.observation.at_unix_ms.div_euclid(60_000)).unwrap_or(0);
    baseline.rate.count(minute, config.rate_alpha);
    let rate = baseline.rate;
    let second = (event.observation.at_unix_ms.rem_euclid(60_000) / 1_000) as u32;
    let window = rate.window(second);
    // One report per burst: not again in this minute, nor in the next while the
    // window still holds the burst's first minute.
    let reported = rate.flagged_minute == minute || rate.flagged_minute.saturating_add(1) == minute;
    if rate.minutes < config.rate_minutes_min || window < config.burst_events_min as f32 || reported {
        return;
    }
    let sigma = rate.variance.max(rate.mean).max(1.0).sqrt();
    let sigmas = (window - rate.mean) / sigma;
    if sigmas < config.burst_sigmas {
        return;
    }
    baseline.rate.flagged_minute = minute;
    // A burst this far above the agent's own norm is strong evidence on its own: it
    // starts at 0.6, the risk at which `warden-bench eval` flags a session.
    let score = (0.6 + 0.1 * (sigmas / config.burst_sigmas.max(1.0)).log2()).clamp(0.6, 0.9);
    let explanation = format!(
        "agent `{}` made {:.0} calls in the last minute, {:.0} standard deviations above its own norm of {:.1} ± {:.1} calls per active minute over {} active minutes",
        event.agent(),
        window,
        sigmas,
        rate.mean,
        sigma,
        rate.minutes
    );
    event.report(FindingKind::Burst, score, true, event.observation.intent, explanation);
}

/// Activity in an hour of the day the agent never works in, once per session.
pub(crate) fn off_hours(event: &mut Event<'_, '_>, agent: &mut AgentState, slot: usize) {
    let hour = event.observation.at_unix_ms.div_euclid(3_600_000).rem_euclid(24) as usize;
    let Some(session) = agent.sessions.get_mut(slot) else { return };
    if !event.enforced || session.off_hours_reported || !agent.baseline.is_off_hours(hour) {
        return;
    }
    session.off_hours_reported = true;
    let explanation = format!(
        "agent `{}` is active at {hour:02}:00 UTC, an hour in which (nor in the hours either side) it was active in none of its {} events",
        event.agent(),
        agent.baseline.events
    );
    let score = event.config.off_hours_weight;
    event.report(FindingKind::OffHours, score, true, event.observation.intent, explanation);
}

/// A transition between two known intents the agent never made, within a session.
/// Transitions out of an intent that was itself new say nothing the novelty finding
/// did not (`prev_new`).
pub(crate) fn transition(
    event: &mut Event<'_, '_>,
    baseline: &Baseline,
    prev: u8,
    prev_new: bool,
    prev_name: &str,
) {
    let Some(next) = event.resolved.intent.and_then(|id| baseline.intent_index(id)) else { return };
    if prev == NO_INTENT || prev_new || !event.enforced || baseline.transition_count(prev, next) > 0 {
        return;
    }
    // A new path into an action that sends data out or can hurt (a payment without
    // its usual approval) weighs more than one between two reads.
    let families = event.resolved.intent_families;
    let weighty = families.has(Family::Egress)
        || families.intersection(Families::dangerous()).without(baseline.families_seen) != Families::NONE;
    let boost = if weighty { 1.0 + event.config.danger_boost } else { 1.0 };
    let score = event.config.rare_transition_weight * surprise(baseline.habits[HABIT_TRANSITION]) * boost;
    let o = event.observation;
    let explanation = format!(
        "agent `{}` went from `{prev_name}` to `{}`, a transition it never made in {} events ({} transitions known)",
        event.agent(),
        o.intent,
        baseline.events,
        baseline.transitions.len()
    );
    event.report(FindingKind::RareTransition, score, true, o.intent, explanation);
}

/// Advances every chain of the table for this session; reports completed chains the
/// agent did not run while learning, and records those it ran while learning.
pub(crate) fn chains(event: &mut Event<'_, '_>, agent: &mut AgentState, slot: usize, new_destination: bool) {
    let config = event.config;
    let families = event.resolved.families();
    let Some(session) = agent.sessions.get_mut(slot) else { return };
    for (index, chain) in config.taxonomy.chains.iter().enumerate() {
        let at = session.step(index) as usize;
        let Some(step) = chain.steps.get(at) else {
            session.set_step(index, 0);
            continue;
        };
        let matches = |s: &crate::taxonomy::Step| {
            s.families.intersects(families) && (!s.new_destination || new_destination)
        };
        if !matches(step) {
            continue;
        }
        if at + 1 < chain.steps.len() {
            session.set_step(index, (at + 1) as u8);
            continue;
        }
        session.set_step(index, 0);
        // While the baseline is still forming everything is new, so steps that need a
        // new destination match trivially: chains count as the agent's own work only
        // once half of its learning is done.
        if !event.enforced && agent.baseline.events < config.learning_events_min / 2 {
            continue;
        }
        let bit = 1u16 << index;
        let known = agent.baseline.chains_known & bit != 0;
        if !event.enforced {
            agent.baseline.chains_known |= bit;
        } else if known {
            continue;
        }
        let path: Vec<String> = chain.steps.iter().map(|s| s.tactic.to_string()).collect();
        let o = event.observation;
        let destination = o.destinations.first().map(|d| format!(" to `{d}`")).unwrap_or_default();
        let explanation = format!(
            "agent `{}` completed chain `{}` in session `{}`: {}, ending with `{}` on `{}`{destination}; {}",
            o.agent,
            chain.id,
            o.session,
            path.join(" → "),
            o.intent,
            o.resource,
            if event.enforced {
                "it never ran this chain while learning"
            } else {
                "recorded as part of its learning"
            }
        );
        event.report(FindingKind::Chain, chain.score, true, &chain.id, explanation);
        if let Some(f) = event.findings.last_mut() {
            f.tactics = chain.steps.iter().map(|s| s.tactic).collect();
        }
    }
}

/// How unfamiliar an event's object is to the agent, before it is learned: 1 for a
/// class it never touched; for a resource in a place it never worked in, the
/// surprise of that (from how often it wanders); for a new resource nearby, the
/// surprise of a new resource; 0 for one it knows.
fn source_novelty(b: &Baseline, r: &Resolved) -> f32 {
    if r.class.is_none_or(|id| !b.knows_class(id)) {
        1.0
    } else if is_far(b, r) {
        surprise(b.habits[HABIT_LOCATION])
    } else if r.resource.is_none_or(|id| !b.knows_resource(id)) {
        surprise(b.habits[HABIT_RESOURCE])
    } else {
        0.0
    }
}

/// Source novelty below this says nothing a data flow should report: an agent
/// that meets a new resource more often than once in 16 events (a support agent
/// looking customers up) reading one more is its work, not a new source.
const SOURCE_NOVELTY_MIN: f32 = 0.5;

/// The session's fan-out if it now sends to the destination hashed `destination`:
/// one more when it differs from the last one since the sensitive read.
fn next_fan_out(session: &Session, destination: u32) -> u8 {
    if destination == session.last_destination { session.fan_out } else { session.fan_out.saturating_add(1) }
}

/// Data flow: a send (an event with destinations) after the session read sensitive
/// data — credentials, restricted or bulk data. Reports a send carrying a kind of
/// data the agent never sent to such a destination (one new to it, or one it knew),
/// and a send to a new destination that makes more distinct destinations after one
/// sensitive read than the agent ever sent one read to.
pub(crate) fn data_flow(event: &mut Event<'_, '_>, agent: &AgentState, slot: usize) {
    let (config, r) = (event.config, *event.resolved);
    if !r.is_send() || !event.enforced {
        return;
    }
    let Some(session) = agent.sessions.get(slot) else { return };
    if session.taint == Families::NONE {
        return;
    }
    let b = &agent.baseline;
    let any_new = r.destinations().iter().any(|(id, _)| id.is_none_or(|id| !b.knows_destination(id)));
    let flowed = if any_new { b.flows_new } else { b.flows_new.union(b.flows_known) };
    let unexplained = session.taint.without(flowed);
    let o = event.observation;
    let destination = o.destinations.first().map_or("", String::as_str);
    let weight = if any_new { config.data_flow_score } else { config.data_flow_known_score };
    // Two ways a flow is new: the kind of data never went to such a destination, or
    // the data came from somewhere the agent does not read (its own exports, a
    // ledger it never opened) even if it sends records like it all day.
    let novelty = f32::from(session.taint_novelty) / 255.0;
    // An unfamiliar source counts only for a send to a destination new to the agent
    // (the data leaving for somewhere it never sent). Counted for every send to
    // known destinations too, it fired on 11 % of the behavior bench's ordinary
    // traffic and caught no attack more in the evaluation.
    let by_source = if novelty >= SOURCE_NOVELTY_MIN && any_new { weight * novelty } else { 0.0 };
    let by_kind = if unexplained != Families::NONE { weight } else { 0.0 };
    if by_kind > 0.0 || by_source > 0.0 {
        let why = if by_kind >= by_source {
            format!(
                "in {} events it never sent data of kind {unexplained} to {}",
                b.events,
                if any_new { "a destination new to it" } else { "any destination" }
            )
        } else {
            format!(
                "the data came from a resource unfamiliar to it (novelty {novelty:.2}, from how often it meets new ones)"
            )
        };
        let explanation = format!(
            "agent `{}` sent to `{destination}` ({}) with `{}` after reading data of kind {} in session `{}`; {why}",
            o.agent,
            if any_new { "new to it" } else { "a destination it knows" },
            o.intent,
            session.taint,
            o.session,
        );
        event.report(FindingKind::DataFlow, by_kind.max(by_source), true, destination, explanation);
    }
    let fan_out = next_fan_out(session, r.destination_hash);
    let sensitive = session.taint.intersects(Families::sensitive_data());
    if any_new && sensitive && fan_out > b.fan_out_max {
        // A limit seen over many sensitive reads is a habit; over two, a guess.
        let confidence = (f32::from(b.flow_sends) / f32::from(config.fan_out_sends_min.max(1))).min(1.0);
        let explanation = format!(
            "agent `{}` sent to `{destination}` with `{}`, the {fan_out}th distinct destination since it last read sensitive data in session `{}`; in {} sends after such a read it never sent one to more than {}",
            o.agent, o.intent, o.session, b.flow_sends, b.fan_out_max
        );
        event.report(FindingKind::FanOut, config.fan_out_score * confidence, true, destination, explanation);
    }
}

/// What one event added to a baseline, so the engine can count the fleet's users.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    pub(crate) intent: Option<u32>,
    pub(crate) resource: Option<u32>,
    pub(crate) destinations: [u32; DESTINATIONS_PER_OBSERVATION_MAX],
    pub(crate) destination_count: usize,
}

/// Learns the event into the baseline and updates the novelty habits.
pub(crate) fn learn(
    config: &Config,
    agent: &mut AgentState,
    slot: usize,
    resolved: &Resolved,
    at_unix_ms: i64,
) -> Learned {
    let mut out = Learned::default();
    // Only what an agent learned while learning vouches for a thing to its peers: a
    // novelty adopted after enforcement (first reported, then learned) must not make
    // the same thing look ordinary when other agents start doing it — a fleet-wide
    // rug-pull or a shared exfiltration host would otherwise vouch for itself.
    let vouch = !agent.baseline.enforced;
    let alpha = config.novelty_habit_alpha;
    let b = &mut agent.baseline;
    if b.events == 0 {
        b.first_ms = at_unix_ms;
    }
    let source_novelty = source_novelty(b, resolved);
    let known_intent = resolved.intent.and_then(|id| b.intent_index(id));
    b.habit(HABIT_INTENT, known_intent.is_none(), alpha);
    let index = resolved.intent.and_then(|id| b.learn_intent(id)).unwrap_or(NO_INTENT);
    if known_intent.is_none() && index != NO_INTENT {
        out.intent = resolved.intent.filter(|_| vouch);
    }
    let resource_new = resolved.resource.is_none_or(|id| !b.knows_resource(id));
    b.habit(HABIT_RESOURCE, resource_new, alpha);
    if let Some(id) = resolved.resource
        && b.learn_resource(id)
    {
        out.resource = Some(id).filter(|_| vouch);
    }
    if let Some(id) = resolved.class {
        b.learn_class(id);
    }
    b.families_seen = b.families_seen.union(resolved.families());
    let mut any_new = false;
    for (index, (id, _)) in resolved.destinations().iter().enumerate() {
        any_new |= id.is_none_or(|id| !b.knows_destination(id));
        // Only sends make an organization one the agent sends to: a page fetched
        // from a host must not vouch for posting data back to it.
        if resolved.is_send()
            && let Some(domain) = resolved.domains.get(index)
        {
            b.learn_domain(*domain);
            b.sends = b.sends.saturating_add(1);
        }
        if let Some(id) = id
            && b.learn_destination(*id)
            && vouch
            && let Some(slot) = out.destinations.get_mut(out.destination_count)
        {
            *slot = *id;
            out.destination_count += 1;
        }
    }
    if resolved.is_send() {
        b.habit(HABIT_DESTINATION, any_new, alpha);
    }
    let far = is_far(b, resolved);
    b.habit(HABIT_LOCATION, far, alpha);
    b.learn_location(resolved.location);
    if let Some(parent) = resolved.parent {
        b.learn_location(parent);
    }
    let Some(session) = agent.sessions.get_mut(slot) else { return out };
    // Data flow: a send carries what the session read; a read of sensitive data
    // starts a new count of the destinations it goes to.
    if resolved.is_send() {
        if any_new {
            b.flows_new = b.flows_new.union(session.taint);
        } else {
            b.flows_known = b.flows_known.union(session.taint);
        }
        if session.taint.intersects(Families::sensitive_data()) {
            session.fan_out = next_fan_out(session, resolved.destination_hash);
            session.last_destination = resolved.destination_hash;
            b.fan_out_max = b.fan_out_max.max(session.fan_out);
            b.flow_sends = b.flow_sends.saturating_add(1);
        }
    } else {
        let read = resolved.families().intersection(Families::flow());
        session.taint = session.taint.union(read);
        if read.intersects(Families::sensitive_data()) {
            session.fan_out = 0;
            session.last_destination = 0;
            session.taint_novelty = session.taint_novelty.max((source_novelty * 255.0).round() as u8);
        }
    }
    if session.last_intent != NO_INTENT && index != NO_INTENT {
        let new = b.learn_transition(session.last_intent, index);
        b.habit(HABIT_TRANSITION, new, alpha);
    }
    session.last_intent = index;
    session.last_intent_new = known_intent.is_none();
    session.last_ms = session.last_ms.max(at_unix_ms);
    b.count_hour(at_unix_ms.div_euclid(3_600_000).rem_euclid(24) as usize);
    b.events = b.events.saturating_add(1);
    if !b.enforced
        && b.events >= config.learning_events_min
        && at_unix_ms.saturating_sub(b.first_ms) >= config.learning_ms_min
    {
        b.enforced = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_belongs_to_its_organization() {
        let acme = domain_hash("email:acme.example");
        assert_eq!(domain_hash("email:team3.acme.example"), acme);
        assert_eq!(domain_hash("host:api.acme.example"), acme);
        assert_eq!(domain_hash("email:bob@mail.acme.example"), acme);
        assert_ne!(domain_hash("email:drop.example"), acme);
        // Names without dots are their own domain, per scheme; addresses are whole.
        assert_ne!(domain_hash("user:USR002"), domain_hash("user:USR003"));
        assert_ne!(domain_hash("user:USR002"), domain_hash("account:USR002"));
        assert_ne!(domain_hash("host:10.0.3.4"), domain_hash("host:10.0.7.4"));
    }

    #[test]
    fn an_organization_is_its_registrable_domain_by_the_public_suffix_list() {
        // Two labels of a multi-label suffix are no organization.
        let example = domain_hash("email:mail.example.co.uk");
        assert_eq!(domain_hash("host:www.example.co.uk"), example);
        assert_ne!(domain_hash("email:other.co.uk"), example);
        assert_ne!(domain_hash("email:other.co.uk"), domain_hash("email:third.co.uk"));
        // Case does not make another organization.
        assert_eq!(domain_hash("email:Bob@Mail.Example.CO.UK"), example);
        assert_eq!(domain_hash("host:API.GitHub.com"), domain_hash("host:github.com"));
        // Sites under a hosting suffix have different owners.
        assert_ne!(domain_hash("host:alice.github.io"), domain_hash("host:bob.github.io"));
        // A suffix alone, and a name too long to be a host name, are themselves.
        assert_eq!(domain_hash("host:co.uk"), domain_hash("email:co.uk"));
        let long = format!("host:{}.example", "a".repeat(300));
        assert_eq!(domain_hash(&long), domain_hash(&long));
        assert_ne!(domain_hash(&long), domain_hash("host:a.example"));
    }
}
