//! Snapshots, so baselines survive restarts: one agent (self-contained, names as
//! strings, for the server to persist per agent) or the whole engine (names once, as
//! tables; agents by id).
//!
//! Layout: 4 magic bytes, one version byte, then the fields in a fixed order
//! (`codec.rs`). Restoring validates every count and index, so corrupt or hostile
//! bytes give a [`SnapshotError`], never a panic or an unbounded allocation.

use std::sync::Arc;

use warden_core::Clock;

use crate::baseline::{
    AgentState, Baseline, HABIT_LOCATION, HABIT_RESOURCE, HABITS, NO_INTENT, RISK_KINDS, Rate, Risk, Session,
    insert,
};
use crate::codec::{Reader, Writer};
use crate::config::Config;
use crate::detect::{domain_hash, location_hash};
use crate::engine::{Engine, lock};
use crate::error::SnapshotError;
use crate::finding::BreakerState;
use crate::fleet::{ClassState, Fleet};
use crate::interner::Interner;
use crate::limits::{
    CLASSES_PER_AGENT_MAX, DESTINATIONS_PER_AGENT_MAX, DOMAINS_PER_AGENT_MAX, FLEET_CLASSES_MAX,
    INTENTS_PER_AGENT_MAX, LOCATIONS_PER_AGENT_MAX, NAME_BYTES_MAX, NAMES_PER_KIND_MAX,
    RESOURCES_PER_AGENT_MAX, SESSIONS_PER_AGENT_MAX, SNAPSHOT_AGENTS_MAX, SURGE_BUCKETS,
    TRANSITIONS_PER_AGENT_MAX,
};
use crate::taxonomy::{Families, Target};

const AGENT_MAGIC: &[u8; 4] = b"WBAG";
const ENGINE_MAGIC: &[u8; 4] = b"WBEN";
/// The snapshot format this build writes. It also reads version 1 (before
/// locations and data flows): an agent restored from it gets its locations from its
/// resources and counts every data flow and fan-out as already seen, so the data-flow
/// detector stays quiet for it rather than report what it did all along. And it
/// reads version 2 (before the organizations its sends reached were kept with how
/// often): an agent restored from version 1 or 2 gets its organizations from its
/// destinations, each as reached once by one send, so it is barely surprised by a
/// new organization until its sends show again which ones it returns to.
pub const SNAPSHOT_VERSION: u8 = 3;
/// The oldest snapshot format this build reads.
const SNAPSHOT_VERSION_MIN: u8 = 1;

/// How names are written: as strings (one agent, self-contained) or as ids into the
/// engine snapshot's name tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Names,
    Ids,
}

/// Which interner a name belongs to.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Intent,
    Resource,
    Destination,
}

/// Checks the magic and returns the version.
fn header(r: &mut Reader<'_>, magic: &'static [u8; 4], expected: &'static str) -> Result<u8, SnapshotError> {
    if r.take(4).ok() != Some(magic.as_slice()) {
        return Err(SnapshotError::Magic { expected });
    }
    let version = r.u8()?;
    if !(SNAPSHOT_VERSION_MIN..=SNAPSHOT_VERSION).contains(&version) {
        return Err(SnapshotError::Version {
            found: version,
            oldest: SNAPSHOT_VERSION_MIN,
            supported: SNAPSHOT_VERSION,
        });
    }
    Ok(version)
}

impl Engine {
    fn interner(&self, kind: Kind) -> &crate::interner::Shared {
        match kind {
            Kind::Intent => &self.names.intents,
            Kind::Resource => &self.names.resources,
            Kind::Destination => &self.names.destinations,
        }
    }

    fn write_names(&self, w: &mut Writer, kind: Kind, ids: &[u32], mode: Mode) {
        w.varint(ids.len() as u64);
        let names = self.interner(kind).read();
        for id in ids {
            match mode {
                Mode::Ids => w.varint(u64::from(*id)),
                Mode::Names => w.str(names.name(*id)),
            }
        }
    }

    fn read_names(
        &self,
        r: &mut Reader<'_>,
        kind: Kind,
        max: usize,
        mode: Mode,
    ) -> Result<Vec<u32>, SnapshotError> {
        let len = r.len(max)?;
        let mut ids = Vec::with_capacity(len);
        for _ in 0..len {
            let id = match mode {
                Mode::Ids => {
                    let id = r.u32()?;
                    if id as usize >= self.interner(kind).read().len() {
                        return Err(SnapshotError::Corrupt("a name id is unknown"));
                    }
                    id
                }
                Mode::Names => {
                    let name = r.str(NAME_BYTES_MAX)?;
                    let target = match kind {
                        Kind::Intent => Some(Target::Intent),
                        Kind::Resource => Some(Target::Resource),
                        Kind::Destination => None,
                    };
                    let taxonomy = &self.config.taxonomy;
                    self.interner(kind)
                        .id(name, |n| target.map_or(Families::NONE, |t| taxonomy.classify(t, n)))
                        .ok_or(SnapshotError::Corrupt("the engine has no room for more names"))?
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }

    fn write_classes(&self, w: &mut Writer, ids: &[u32], mode: Mode) {
        w.varint(ids.len() as u64);
        let names = self.names.classes.read();
        for id in ids {
            match mode {
                Mode::Ids => w.varint(u64::from(*id)),
                Mode::Names => w.str(names.name(*id)),
            }
        }
    }

    fn read_classes(&self, r: &mut Reader<'_>, mode: Mode) -> Result<Vec<u32>, SnapshotError> {
        let len = r.len(CLASSES_PER_AGENT_MAX)?;
        let mut ids = Vec::with_capacity(len);
        for _ in 0..len {
            let id = match mode {
                Mode::Ids => {
                    let id = r.u32()?;
                    if id as usize >= self.names.classes.read().len() {
                        return Err(SnapshotError::Corrupt("a class id is unknown"));
                    }
                    id
                }
                Mode::Names => {
                    let name = r.str(NAME_BYTES_MAX)?;
                    let taxonomy = &self.config.taxonomy;
                    self.names
                        .classes
                        .id(name, |n| taxonomy.classify(Target::Class, n))
                        .ok_or(SnapshotError::Corrupt("the engine has no room for more names"))?
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }

    fn write_agent(&self, w: &mut Writer, a: &AgentState, mode: Mode, fleet: &Fleet) {
        let b = &a.baseline;
        w.varint(u64::from(b.events));
        w.signed(b.first_ms);
        w.u8(u8::from(b.enforced));
        self.write_names(w, Kind::Intent, &b.intents, mode);
        self.write_names(w, Kind::Resource, &b.resources, mode);
        self.write_names(w, Kind::Destination, &b.destinations, mode);
        self.write_classes(w, &b.classes, mode);
        w.varint(b.transitions.len() as u64);
        for t in &b.transitions {
            w.varint(u64::from(*t));
        }
        for h in b.hours {
            w.varint(u64::from(h));
        }
        let rate = &b.rate;
        for v in [rate.minute, rate.count, rate.previous, rate.minutes, rate.flagged_minute] {
            w.varint(u64::from(v));
        }
        w.f32(rate.mean);
        w.f32(rate.variance);
        for h in b.habits {
            w.f32(h);
        }
        w.varint(u64::from(b.chains_known));
        w.varint(u64::from(b.families_seen.0));
        w.varint(b.locations.len() as u64);
        for l in &b.locations {
            w.varint(u64::from(*l));
        }
        w.varint(u64::from(b.flows_new.0));
        w.varint(u64::from(b.flows_known.0));
        w.u8(b.fan_out_max);
        w.varint(u64::from(b.flow_sends));
        w.varint(b.domains.len() as u64);
        for d in &b.domains {
            w.varint(u64::from(*d));
        }
        w.varint(u64::from(b.sends));
        for s in &a.sessions {
            w.varint(s.key);
            w.signed(s.last_ms);
            write_risk(w, &s.risk);
            w.u8(s.last_intent);
            w.u8(u8::from(s.off_hours_reported) | u8::from(s.last_intent_new) << 1);
            w.varint(s.progress);
            match mode {
                Mode::Ids => w.varint(s.classes),
                Mode::Names => {
                    let classes = self.names.classes.read();
                    let held: Vec<&ClassState> = fleet
                        .classes
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| s.classes & (1u64 << i) != 0)
                        .map(|(_, c)| c)
                        .collect();
                    w.varint(held.len() as u64);
                    for c in held {
                        w.str(classes.name(c.class));
                    }
                }
            }
            w.varint(u64::from(s.taint.0));
            w.u8(s.fan_out);
            w.varint(u64::from(s.last_destination));
            w.u8(s.taint_novelty);
        }
        write_risk(w, &a.risk);
    }

    fn read_agent(
        &self,
        r: &mut Reader<'_>,
        id: u32,
        mode: Mode,
        version: u8,
    ) -> Result<Box<AgentState>, SnapshotError> {
        let mut b = Baseline {
            events: r.u32()?,
            first_ms: r.signed()?,
            enforced: r.u8()? != 0,
            intents: self.read_names(r, Kind::Intent, INTENTS_PER_AGENT_MAX, mode)?,
            resources: self.read_names(r, Kind::Resource, RESOURCES_PER_AGENT_MAX, mode)?,
            destinations: self.read_names(r, Kind::Destination, DESTINATIONS_PER_AGENT_MAX, mode)?,
            classes: self.read_classes(r, mode)?,
            ..Baseline::default()
        };
        let mut unique = b.intents.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != b.intents.len() {
            return Err(SnapshotError::Corrupt("an intent appears twice"));
        }
        // Ids differ between engines: sets are sorted by id, so sort them again.
        b.resources.sort_unstable();
        b.resources.dedup();
        b.destinations.sort_unstable();
        b.destinations.dedup();
        b.classes.sort_unstable();
        b.classes.dedup();
        let transitions = r.len(TRANSITIONS_PER_AGENT_MAX)?;
        b.transitions = (0..transitions).map(|_| r.u32()).collect::<Result<_, _>>()?;
        let intents = b.intents.len() as u32;
        if b.transitions.iter().any(|t| (t >> 24) >= intents || ((t >> 16) & 0xff) >= intents) {
            return Err(SnapshotError::Corrupt("a transition names an unknown intent"));
        }
        if b.transitions.windows(2).any(|p| matches!(p, [x, y] if x >> 16 >= y >> 16)) {
            return Err(SnapshotError::Corrupt("transitions are not sorted"));
        }
        for h in &mut b.hours {
            *h = u16::try_from(r.varint()?)
                .map_err(|_| SnapshotError::Corrupt("an hour count is too large"))?;
        }
        let (minute, count, previous) = (r.u32()?, r.u32()?, r.u32()?);
        let (minutes, flagged_minute) = (r.u32()?, r.u32()?);
        let (mean, variance) = (r.f32()?.max(0.0), r.f32()?.max(0.0));
        b.rate = Rate { minute, count, previous, mean, variance, minutes, flagged_minute };
        let habits = if version == 1 { HABIT_LOCATION } else { HABITS };
        for h in b.habits.iter_mut().take(habits) {
            *h = r.unit()?;
        }
        b.chains_known =
            u16::try_from(r.varint()?).map_err(|_| SnapshotError::Corrupt("chain bits are too large"))?;
        b.families_seen = read_families(r)?;
        if version == 1 {
            self.upgrade_v1(&mut b);
        } else {
            let locations = r.len(LOCATIONS_PER_AGENT_MAX)?;
            b.locations = (0..locations).map(|_| r.u32()).collect::<Result<_, _>>()?;
            if b.locations.windows(2).any(|p| matches!(p, [x, y] if x >= y)) {
                return Err(SnapshotError::Corrupt("locations are not sorted"));
            }
            b.flows_new = read_families(r)?;
            b.flows_known = read_families(r)?;
            b.fan_out_max = r.u8()?;
            b.flow_sends = u16::try_from(r.varint()?)
                .map_err(|_| SnapshotError::Corrupt("a send count is too large"))?;
        }
        if version >= 3 {
            let domains = r.len(DOMAINS_PER_AGENT_MAX)?;
            b.domains = (0..domains).map(|_| r.u32()).collect::<Result<_, _>>()?;
            if b.domains.windows(2).any(|p| matches!(p, [x, y] if x >> 1 >= y >> 1)) {
                return Err(SnapshotError::Corrupt("organizations are not sorted"));
            }
            b.sends = r.u32()?;
        } else {
            self.upgrade_v2(&mut b);
        }
        let mut sessions = [Session::default(); SESSIONS_PER_AGENT_MAX];
        for s in &mut sessions {
            s.key = r.varint()?;
            s.last_ms = r.signed()?;
            s.risk = read_risk(r)?;
            s.last_intent = r.u8()?;
            if s.last_intent != NO_INTENT && u32::from(s.last_intent) >= intents {
                return Err(SnapshotError::Corrupt("a session names an unknown intent"));
            }
            let flags = r.u8()?;
            s.off_hours_reported = flags & 1 != 0;
            s.last_intent_new = flags & 2 != 0;
            s.progress = r.varint()?;
            s.classes = match mode {
                Mode::Ids => r.varint()?,
                Mode::Names => self.read_session_classes(r)?,
            };
            if version > 1 {
                s.taint = read_families(r)?;
                s.fan_out = r.u8()?;
                s.last_destination = r.u32()?;
                s.taint_novelty = r.u8()?;
            }
        }
        let risk = read_risk(r)?;
        Ok(Box::new(AgentState { id, baseline: b, sessions, risk }))
    }

    /// What a version-1 snapshot did not hold: locations come from the resources;
    /// every data flow and fan-out counts as seen.
    fn upgrade_v1(&self, b: &mut Baseline) {
        b.habits[HABIT_LOCATION] = b.habits[HABIT_RESOURCE];
        let names = self.names.resources.read();
        for id in &b.resources {
            let (location, parent) = location_hash(names.name(*id));
            insert(&mut b.locations, location, LOCATIONS_PER_AGENT_MAX);
            if let Some(parent) = parent {
                insert(&mut b.locations, parent, LOCATIONS_PER_AGENT_MAX);
            }
        }
        b.flows_new = Families::sensitive_data();
        b.flows_known = Families::sensitive_data();
        b.fan_out_max = u8::MAX;
        b.flow_sends = u16::MAX;
    }

    /// What a version-1 or -2 snapshot did not hold: the organizations its sends
    /// reached come from every destination it holds (fetched hosts included, which
    /// a snapshot cannot tell from sends), each as reached once by one send.
    fn upgrade_v2(&self, b: &mut Baseline) {
        let names = self.names.destinations.read();
        let domains: Vec<u32> = b.destinations.iter().map(|id| domain_hash(names.name(*id))).collect();
        for domain in domains {
            b.remember_domain(domain);
        }
        b.sends = u32::try_from(b.destinations.len()).unwrap_or(u32::MAX);
    }

    fn read_session_classes(&self, r: &mut Reader<'_>) -> Result<u64, SnapshotError> {
        let count = r.len(FLEET_CLASSES_MAX)?;
        let mut bits = 0u64;
        for _ in 0..count {
            let name = r.str(NAME_BYTES_MAX)?;
            let taxonomy = &self.config.taxonomy;
            let Some(class) = self.names.classes.id(name, |n| taxonomy.classify(Target::Class, n)) else {
                continue;
            };
            if let Some(slot) = lock(&self.fleet).slot(class) {
                self.names.classes.read().set_aux(class, slot as u32 + 1);
                bits |= 1u64 << slot;
            }
        }
        Ok(bits)
    }

    /// One agent's state (baseline, recent sessions, risk) as self-contained bytes,
    /// or `None` for an unknown agent. The server persists these per agent.
    pub fn snapshot_agent(&self, agent: &str) -> Option<Vec<u8>> {
        let id = self.names.agents.read().get(agent)?;
        let shard = self.shard(id);
        let state = shard.get(id)?;
        let mut w = Writer::default();
        w.bytes.extend_from_slice(AGENT_MAGIC);
        w.u8(SNAPSHOT_VERSION);
        let fleet = lock(&self.fleet).clone();
        self.write_agent(&mut w, state, Mode::Names, &fleet);
        Some(w.bytes)
    }

    /// Restores one agent from [`Engine::snapshot_agent`] bytes, replacing any state
    /// the engine holds for it.
    pub fn restore_agent(&self, agent: &str, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut r = Reader::new(bytes);
        let version = header(&mut r, AGENT_MAGIC, "WBAG")?;
        let id = self
            .names
            .agents
            .id(agent, |_| Families::NONE)
            .ok_or(SnapshotError::Corrupt("the engine has no room for more agents"))?;
        let state = self.read_agent(&mut r, id, Mode::Names, version)?;
        if !r.is_empty() {
            return Err(SnapshotError::Corrupt("bytes follow the agent"));
        }
        self.install(state);
        Ok(())
    }

    /// Puts a restored agent in its shard and counts what it holds as the fleet's
    /// users (an approximation for a single agent: the snapshot does not say which
    /// things it learned while learning).
    fn install(&self, state: Box<AgentState>) {
        self.count_users(&state.baseline, 1);
        if let Some(previous) = self.shard(state.id).insert(state) {
            self.count_users(&previous.baseline, -1);
        }
    }

    /// The whole engine as bytes: names, fleet classes and breakers, every agent.
    /// Taken shard by shard while observations may continue.
    pub fn snapshot(&self) -> Vec<u8> {
        let fleet = lock(&self.fleet).clone();
        // Agents first, into their own buffer: names only grow, so every id an agent
        // holds is in the name tables written after.
        let mut agents = Writer::default();
        let mut count = 0u64;
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for state in shard.agents.iter() {
                agents.varint(u64::from(state.id));
                self.write_agent(&mut agents, state, Mode::Ids, &fleet);
                count += 1;
            }
        }
        let mut w = Writer::default();
        w.bytes.extend_from_slice(ENGINE_MAGIC);
        w.u8(SNAPSHOT_VERSION);
        w.varint(self.config.taxonomy.chains.len() as u64);
        for chain in &self.config.taxonomy.chains {
            w.str(&chain.id);
        }
        for names in [
            &self.names.intents,
            &self.names.resources,
            &self.names.classes,
            &self.names.destinations,
            &self.names.agents,
        ] {
            let names = names.read();
            w.varint(names.len() as u64);
            for id in 0..names.len() as u32 {
                w.str(names.name(id));
                w.varint(u64::from(names.aux(id)));
            }
        }
        w.varint(fleet.classes.len() as u64);
        for c in &fleet.classes {
            w.varint(u64::from(c.class));
            w.signed(c.head);
            for b in c.buckets {
                w.varint(u64::from(b));
            }
            w.f32(c.usual_per_minute);
            match c.breaker {
                BreakerState::Closed => w.u8(0),
                BreakerState::Tripped { since_unix_ms, arrivals } => {
                    w.u8(1);
                    w.signed(since_unix_ms);
                    w.varint(u64::from(arrivals));
                }
            }
        }
        w.varint(count);
        w.bytes.extend_from_slice(&agents.bytes);
        w.bytes
    }

    /// An engine restored from [`Engine::snapshot`] bytes. The chain table must be
    /// the one the snapshot was taken with, or that table with chains appended
    /// (sessions and baselines hold progress and learning per chain, by position).
    pub fn restore(config: Config, clock: Arc<dyn Clock>, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let engine =
            Engine::new(config, clock).map_err(|_| SnapshotError::Corrupt("the configuration is invalid"))?;
        let mut r = Reader::new(bytes);
        let version = header(&mut r, ENGINE_MAGIC, "WBEN")?;
        let chains = r.len(crate::limits::CHAINS_MAX)?;
        let expected = engine.config.taxonomy.chains.len();
        // Chains appended since the snapshot start with no progress and were never
        // run while learning; a chain removed, renamed or moved would shift the
        // progress and learning bits of the others.
        let mut prefix = chains <= expected;
        for index in 0..chains {
            let id = r.str(NAME_BYTES_MAX)?;
            prefix &= engine.config.taxonomy.chains.get(index).is_some_and(|c| c.id == id);
        }
        if !prefix {
            return Err(SnapshotError::Chains { found: chains, expected });
        }
        let taxonomy = &engine.config.taxonomy;
        let targets = [Some(Target::Intent), Some(Target::Resource), Some(Target::Class), None, None];
        let kinds = [
            &engine.names.intents,
            &engine.names.resources,
            &engine.names.classes,
            &engine.names.destinations,
            &engine.names.agents,
        ];
        // Fleet user counts come back as they were (a class's is its fleet slot, set
        // again from the fleet below).
        let keep_users = [true, true, false, true, false];
        for ((names, target), keep) in kinds.into_iter().zip(targets).zip(keep_users) {
            let mut names = names.write();
            read_table(&mut r, &mut names, keep, |n| {
                target.map_or(Families::NONE, |t| taxonomy.classify(t, n))
            })?;
        }
        engine.read_fleet(&mut r)?;
        let agents = r.len(SNAPSHOT_AGENTS_MAX)?;
        let known_agents = engine.names.agents.read().len();
        for _ in 0..agents {
            let id = r.u32()?;
            if id as usize >= known_agents {
                return Err(SnapshotError::Corrupt("an agent id is unknown"));
            }
            let state = engine.read_agent(&mut r, id, Mode::Ids, version)?;
            // Fleet user counts were restored with the names.
            engine.shard(state.id).insert(state);
        }
        if !r.is_empty() {
            return Err(SnapshotError::Corrupt("bytes follow the last agent"));
        }
        Ok(engine)
    }

    fn read_fleet(&self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        let count = r.len(FLEET_CLASSES_MAX)?;
        let classes = self.names.classes.read();
        let mut fleet = lock(&self.fleet);
        for slot in 0..count {
            let class = r.u32()?;
            if class as usize >= classes.len() || classes.aux(class) != 0 {
                return Err(SnapshotError::Corrupt("a fleet class is unknown or repeated"));
            }
            let head = r.signed()?;
            let mut buckets = [0u32; SURGE_BUCKETS];
            for b in &mut buckets {
                *b = r.u32()?;
            }
            let usual_per_minute = r.f32()?.max(0.0);
            let breaker = match r.u8()? {
                0 => BreakerState::Closed,
                1 => BreakerState::Tripped { since_unix_ms: r.signed()?, arrivals: r.u32()? },
                _ => return Err(SnapshotError::Corrupt("a breaker state is unknown")),
            };
            fleet.classes.push(ClassState { class, head, buckets, usual_per_minute, breaker });
            classes.set_aux(class, slot as u32 + 1);
        }
        Ok(())
    }
}

fn read_families(r: &mut Reader<'_>) -> Result<Families, SnapshotError> {
    u16::try_from(r.varint()?).map(Families).map_err(|_| SnapshotError::Corrupt("family bits are too large"))
}

fn write_risk(w: &mut Writer, risk: &Risk) {
    w.bytes.extend_from_slice(&risk.kinds);
    w.signed(risk.at_ms);
}

fn read_risk(r: &mut Reader<'_>) -> Result<Risk, SnapshotError> {
    let kinds = r.take(RISK_KINDS)?.try_into().map_err(|_| SnapshotError::Corrupt("it ends early"))?;
    Ok(Risk { kinds, at_ms: r.signed()? })
}

fn read_table(
    r: &mut Reader<'_>,
    names: &mut Interner,
    keep_users: bool,
    families: impl Fn(&str) -> Families,
) -> Result<(), SnapshotError> {
    let count = r.len(NAMES_PER_KIND_MAX)?;
    for index in 0..count {
        let name = r.str(NAME_BYTES_MAX)?;
        let users = r.u32()?;
        if names.intern(name, &families) != Some(index as u32) {
            return Err(SnapshotError::Corrupt("a name table repeats a name"));
        }
        if keep_users {
            names.set_aux(index as u32, users);
        }
    }
    Ok(())
}
