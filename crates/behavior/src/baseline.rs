//! One agent's learned behavior and its recent sessions, in a compact form.
//!
//! Sets are sorted `Vec<u32>` of interned ids grown one slot at a time (agents use
//! tens of things, not thousands, and a new thing is rare once learned), intents keep
//! insertion order so transitions can name them by a one-byte local index, and
//! everything else is fixed size.

use crate::limits::{
    CLASSES_PER_AGENT_MAX, DESTINATIONS_PER_AGENT_MAX, DOMAINS_PER_AGENT_MAX, INTENTS_PER_AGENT_MAX,
    LOCATIONS_PER_AGENT_MAX, RESOURCES_PER_AGENT_MAX, SESSIONS_PER_AGENT_MAX, TRANSITIONS_PER_AGENT_MAX,
};
use crate::taxonomy::Families;

/// "No previous intent" in a session.
pub(crate) const NO_INTENT: u8 = u8::MAX;

/// Index of each novelty habit.
pub(crate) const HABIT_INTENT: usize = 0;
pub(crate) const HABIT_RESOURCE: usize = 1;
/// A send to a destination new to the agent (sends only: a fetch names a host but
/// brings data in).
pub(crate) const HABIT_DESTINATION: usize = 2;
pub(crate) const HABIT_TRANSITION: usize = 3;
/// A resource in a location (directory, scheme) neither it nor its parent was ever in.
pub(crate) const HABIT_LOCATION: usize = 4;
/// Novelty habits kept.
pub(crate) const HABITS: usize = 5;

/// Whether a sorted set holds `id`.
pub(crate) fn contains(set: &[u32], id: u32) -> bool {
    set.binary_search(&id).is_ok()
}

/// Inserts into a sorted set, growing it by exactly one slot; false when full or present.
pub(crate) fn insert(set: &mut Vec<u32>, id: u32, max: usize) -> bool {
    match set.binary_search(&id) {
        Ok(_) => false,
        Err(_) if set.len() >= max => false,
        Err(at) => {
            set.reserve_exact(1);
            set.insert(at, id);
            true
        }
    }
}

/// Kinds of evidence risk keeps apart ([`crate::FindingKind::risk_slot`]).
pub(crate) const RISK_KINDS: usize = 8;

/// Risk from findings, per kind of evidence (fading with a half-life); across kinds,
/// noisy-OR.
///
/// Findings of one kind are correlated evidence — an agent that touches five new
/// files in a session has not shown five independent signs of compromise — so within
/// a kind a new score adds only half of what noisy-OR would (`max + ½·min·(1 − max)`);
/// different kinds (a new destination *and* a burst *and* a chain) are independent
/// evidence and compound fully. Scores are kept in 1/255 steps.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Risk {
    pub(crate) kinds: [u8; RISK_KINDS],
    /// When `kinds` was last decayed.
    pub(crate) at_ms: i64,
}

fn decay(elapsed_ms: i64, half_life_ms: i64) -> f32 {
    let elapsed = elapsed_ms.max(0) as f32;
    (-elapsed * std::f32::consts::LN_2 / half_life_ms.max(1) as f32).exp()
}

impl Risk {
    /// The risk at `now_ms`, in `[0, 1]`: never grows with time. O(kinds), no allocation.
    pub(crate) fn at(&self, now_ms: i64, half_life_ms: i64) -> f32 {
        let factor = decay(now_ms.saturating_sub(self.at_ms), half_life_ms);
        let quiet = self.kinds.iter().fold(1.0f32, |q, k| q * (1.0 - f32::from(*k) / 255.0 * factor));
        (1.0 - quiet).clamp(0.0, 1.0)
    }

    /// Adds a finding's score to its kind.
    pub(crate) fn add(&mut self, kind: usize, score: f32, now_ms: i64, half_life_ms: i64) {
        if now_ms > self.at_ms {
            let factor = decay(now_ms - self.at_ms, half_life_ms);
            for k in &mut self.kinds {
                *k = (f32::from(*k) * factor).round() as u8;
            }
            self.at_ms = now_ms;
        }
        let score = if score.is_finite() { score.clamp(0.0, 1.0) } else { 0.0 };
        if let Some(k) = self.kinds.get_mut(kind) {
            let current = f32::from(*k) / 255.0;
            let (high, low) = if score > current { (score, current) } else { (current, score) };
            let combined = (high + 0.5 * low * (1.0 - high)).clamp(0.0, 1.0);
            *k = (combined * 255.0).round() as u8;
        }
    }
}

/// Events per active minute: an exponentially weighted mean and variance.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Rate {
    /// The minute being counted (Unix minutes).
    pub(crate) minute: u32,
    /// Events in that minute so far.
    pub(crate) count: u32,
    /// Events in the minute before it (0 if it was idle).
    pub(crate) previous: u32,
    pub(crate) mean: f32,
    pub(crate) variance: f32,
    /// Active minutes folded into the mean.
    pub(crate) minutes: u32,
    /// The last minute a burst was reported in (one report per minute).
    pub(crate) flagged_minute: u32,
}

impl Rate {
    /// Counts one event at `minute`, first folding a finished minute into the norm.
    /// Events in the last sixty seconds, estimated from this minute's count and the
    /// part of the previous minute the window still covers (a sliding window from two
    /// counters, so a burst straddling a minute boundary is seen whole).
    pub(crate) fn window(&self, second_of_minute: u32) -> f32 {
        let uncovered = second_of_minute.min(60) as f32 / 60.0;
        self.count as f32 + self.previous as f32 * (1.0 - uncovered)
    }

    pub(crate) fn count(&mut self, minute: u32, alpha: f32) {
        if minute > self.minute {
            if self.count > 0 {
                let x = self.count as f32;
                if self.minutes == 0 {
                    self.mean = x;
                    self.variance = 0.0;
                } else {
                    let d = x - self.mean;
                    self.mean += alpha * d;
                    self.variance = (1.0 - alpha) * (self.variance + alpha * d * d);
                }
                self.minutes = self.minutes.saturating_add(1);
            }
            self.previous = if minute == self.minute + 1 { self.count } else { 0 };
            self.minute = minute;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
    }
}

/// What an agent normally does.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Baseline {
    pub(crate) events: u32,
    pub(crate) first_ms: i64,
    pub(crate) enforced: bool,
    // INVARIANT: unique, insertion order (a transition names an intent by position),
    // at most INTENTS_PER_AGENT_MAX.
    pub(crate) intents: Vec<u32>,
    // INVARIANT: sorted, unique, at most RESOURCES_PER_AGENT_MAX.
    pub(crate) resources: Vec<u32>,
    // INVARIANT: sorted, unique, at most DESTINATIONS_PER_AGENT_MAX.
    pub(crate) destinations: Vec<u32>,
    // INVARIANT: sorted, unique, at most CLASSES_PER_AGENT_MAX.
    pub(crate) classes: Vec<u32>,
    /// The organizations its sends reached: each entry is the top 31 bits of the
    /// [`crate::detect::domain_hash`], shifted left once, with the low bit set once
    /// its sends reached the organization a second time (see [`Baseline::new_org_rate`]).
    // INVARIANT: sorted, unique by `entry >> 1`, at most DOMAINS_PER_AGENT_MAX.
    pub(crate) domains: Vec<u32>,
    /// Destinations its sends named (saturating): the draws [`Baseline::new_org_rate`]
    /// divides by.
    pub(crate) sends: u32,
    /// Locations of the resources it touched and their parents, as
    /// [`crate::detect::location_hash`]es (stable across processes).
    // INVARIANT: sorted, unique, at most LOCATIONS_PER_AGENT_MAX.
    pub(crate) locations: Vec<u32>,
    // INVARIANT: sorted by key; entry = (prev << 8 | next) << 16 | count, with prev and
    // next positions in `intents`; at most TRANSITIONS_PER_AGENT_MAX.
    pub(crate) transitions: Vec<u32>,
    /// Events per hour of day (UTC), halved together when one saturates.
    pub(crate) hours: [u16; 24],
    pub(crate) rate: Rate,
    /// Per kind (intent, resource, destination, transition, location): how often an
    /// event brought something new, smoothed. An agent that often meets new things is
    /// less surprised by one more.
    // INVARIANT: each in [0, 1].
    pub(crate) habits: [f32; HABITS],
    /// Chains completed while learning: part of this agent's normal work.
    pub(crate) chains_known: u16,
    /// Every family the agent's events have been in: a dangerous family weighs on a
    /// novelty only the first time the agent acts in it.
    pub(crate) families_seen: Families,
    /// Data flows: the sensitive-data families a session had read before it sent to
    /// a destination new to the agent (`flows_new`) or one it knew (`flows_known`).
    pub(crate) flows_new: Families,
    pub(crate) flows_known: Families,
    /// The most distinct destinations it sent to after one sensitive read.
    pub(crate) fan_out_max: u8,
    /// Sends made after a sensitive read (saturating): how well `fan_out_max` is known.
    pub(crate) flow_sends: u16,
}

impl Baseline {
    pub(crate) fn intent_index(&self, intent: u32) -> Option<u8> {
        self.intents.iter().position(|i| *i == intent).and_then(|p| u8::try_from(p).ok())
    }

    /// Adds an intent; returns its local index (None when full).
    pub(crate) fn learn_intent(&mut self, intent: u32) -> Option<u8> {
        if let Some(index) = self.intent_index(intent) {
            return Some(index);
        }
        if self.intents.len() >= INTENTS_PER_AGENT_MAX {
            return None;
        }
        self.intents.reserve_exact(1);
        self.intents.push(intent);
        u8::try_from(self.intents.len() - 1).ok()
    }

    pub(crate) fn knows_resource(&self, id: u32) -> bool {
        contains(&self.resources, id)
    }

    pub(crate) fn learn_resource(&mut self, id: u32) -> bool {
        insert(&mut self.resources, id, RESOURCES_PER_AGENT_MAX)
    }

    pub(crate) fn knows_class(&self, id: u32) -> bool {
        contains(&self.classes, id)
    }

    pub(crate) fn learn_class(&mut self, id: u32) -> bool {
        insert(&mut self.classes, id, CLASSES_PER_AGENT_MAX)
    }

    pub(crate) fn knows_location(&self, hash: u32) -> bool {
        contains(&self.locations, hash)
    }

    pub(crate) fn learn_location(&mut self, hash: u32) -> bool {
        insert(&mut self.locations, hash, LOCATIONS_PER_AGENT_MAX)
    }

    pub(crate) fn knows_domain(&self, hash: u32) -> bool {
        self.domains.binary_search_by_key(&(hash >> 1), |e| e >> 1).is_ok()
    }

    /// Counts one send reaching the organization hashed `hash`: a new one is
    /// remembered as reached once, a known one as reached again.
    pub(crate) fn learn_domain(&mut self, hash: u32) {
        match self.domains.binary_search_by_key(&(hash >> 1), |e| e >> 1) {
            Ok(at) => {
                if let Some(e) = self.domains.get_mut(at) {
                    *e |= 1;
                }
            }
            Err(_) => self.remember_domain(hash),
        }
    }

    /// Remembers an organization as reached once, if it is new and there is room.
    pub(crate) fn remember_domain(&mut self, hash: u32) {
        if let Err(at) = self.domains.binary_search_by_key(&(hash >> 1), |e| e >> 1)
            && self.domains.len() < DOMAINS_PER_AGENT_MAX
        {
            self.domains.reserve_exact(1);
            self.domains.insert(at, (hash >> 1) << 1);
        }
    }

    /// How often the agent's sends reach an organization new to it. Good–Turing's
    /// estimate of the chance that the next draw is of a kind never drawn is the
    /// share of draws whose kind was drawn exactly once: here, organizations its
    /// sends reached once, over its sends. It is smoothed with two pseudo-sends
    /// that reach a new organization as often as the agent sends at all (a Beta
    /// prior whose mean is its send rate): an agent that never sent is as surprised
    /// by a first send anywhere as by one event in all it did, and a few sends soon
    /// outweigh the prior. An agent that mails new customers all day has most of its
    /// organizations reached once and is barely surprised; one whose sends go to a
    /// closed set, each reached again and again, is the more surprised the longer
    /// its history. `None` when the organizations it remembers are at their bound
    /// (it reaches too many to count): the caller falls back to its habit.
    pub(crate) fn new_org_rate(&self) -> Option<f32> {
        if self.domains.len() >= DOMAINS_PER_AGENT_MAX {
            return None;
        }
        let (once, sends, events) = (self.orgs_reached_once() as f32, self.sends as f32, self.events as f32);
        let send_rate = ((sends + 1.0) / (events + 2.0)).min(1.0);
        Some(((once + 2.0 * send_rate) / (sends + 2.0)).clamp(0.0, 1.0))
    }

    /// Organizations its sends reached exactly once.
    pub(crate) fn orgs_reached_once(&self) -> usize {
        self.domains.iter().filter(|e| *e & 1 == 0).count()
    }

    pub(crate) fn knows_destination(&self, id: u32) -> bool {
        contains(&self.destinations, id)
    }

    pub(crate) fn learn_destination(&mut self, id: u32) -> bool {
        insert(&mut self.destinations, id, DESTINATIONS_PER_AGENT_MAX)
    }

    fn transition_key(prev: u8, next: u8) -> u32 {
        u32::from(prev) << 8 | u32::from(next)
    }

    /// How often the transition was seen (0: never).
    pub(crate) fn transition_count(&self, prev: u8, next: u8) -> u16 {
        let key = Self::transition_key(prev, next);
        match self.transitions.binary_search_by_key(&key, |e| e >> 16) {
            Ok(at) => self.transitions.get(at).map_or(0, |e| (e & 0xffff) as u16),
            Err(_) => 0,
        }
    }

    /// Counts a transition; returns true when it was new.
    pub(crate) fn learn_transition(&mut self, prev: u8, next: u8) -> bool {
        let key = Self::transition_key(prev, next);
        match self.transitions.binary_search_by_key(&key, |e| e >> 16) {
            Ok(at) => {
                if let Some(e) = self.transitions.get_mut(at)
                    && *e & 0xffff != 0xffff
                {
                    *e += 1;
                }
                false
            }
            Err(_) if self.transitions.len() >= TRANSITIONS_PER_AGENT_MAX => true,
            Err(at) => {
                self.transitions.reserve_exact(1);
                self.transitions.insert(at, key << 16 | 1);
                true
            }
        }
    }

    pub(crate) fn count_hour(&mut self, hour: usize) {
        if let Some(h) = self.hours.get_mut(hour) {
            if *h == u16::MAX {
                for h in &mut self.hours {
                    *h /= 2;
                }
            }
            if let Some(h) = self.hours.get_mut(hour) {
                *h += 1;
            }
        }
    }

    /// Whether `hour` and both neighbours are hours the agent was never active in.
    pub(crate) fn is_off_hours(&self, hour: usize) -> bool {
        let at = |h: usize| self.hours.get(h % 24).copied().unwrap_or(0);
        at(hour) == 0 && at(hour + 1) == 0 && at(hour + 23) == 0
    }

    pub(crate) fn habit(&mut self, kind: usize, new: bool, alpha: f32) {
        if let Some(h) = self.habits.get_mut(kind) {
            *h = (*h + alpha * (f32::from(u8::from(new)) - *h)).clamp(0.0, 1.0);
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.intents.capacity()
            + self.resources.capacity()
            + self.classes.capacity()
            + self.locations.capacity()
            + self.domains.capacity()
            + self.destinations.capacity()
            + self.transitions.capacity())
            * size_of::<u32>()
    }
}

/// A recent session of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Session {
    /// A 64-bit hash of the session id; 0 marks a free slot.
    pub(crate) key: u64,
    pub(crate) last_ms: i64,
    pub(crate) risk: Risk,
    /// Local index of the session's last intent, or [`NO_INTENT`].
    pub(crate) last_intent: u8,
    /// Off-hours activity already reported for this session.
    pub(crate) off_hours_reported: bool,
    /// The session's last intent was new to the agent (its transitions say nothing more).
    pub(crate) last_intent_new: bool,
    /// Progress through each chain of the table, 4 bits per chain.
    pub(crate) progress: u64,
    /// Fleet classes this session already reached, one bit per fleet slot.
    pub(crate) classes: u64,
    /// Sensitive-data families the session has read (what its sends may carry).
    pub(crate) taint: Families,
    /// Distinct destinations sent to since the session's last sensitive read.
    pub(crate) fan_out: u8,
    /// FNV-1a of the last destination sent to since then (0: none).
    pub(crate) last_destination: u32,
    /// How unfamiliar the source of the session's most surprising sensitive read was
    /// to the agent, in 1/255 steps (see `detect::data_flow`).
    pub(crate) taint_novelty: u8,
}

impl Session {
    pub(crate) fn step(&self, chain: usize) -> u8 {
        ((self.progress >> (4 * chain)) & 0xf) as u8
    }

    pub(crate) fn set_step(&mut self, chain: usize, step: u8) {
        let shift = 4 * chain;
        self.progress = (self.progress & !(0xf << shift)) | (u64::from(step & 0xf) << shift);
    }
}

/// All the engine keeps about one agent.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct AgentState {
    /// The agent's interned id.
    pub(crate) id: u32,
    pub(crate) baseline: Baseline,
    pub(crate) sessions: [Session; SESSIONS_PER_AGENT_MAX],
    pub(crate) risk: Risk,
}

impl AgentState {
    /// The session slot for `key`, taking over the least recently active slot when
    /// the session is new (its state, including its risk, starts fresh).
    pub(crate) fn session_slot(&mut self, key: u64) -> usize {
        let key = key.max(1);
        if let Some(at) = self.sessions.iter().position(|s| s.key == key) {
            return at;
        }
        let oldest = self
            .sessions
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| if s.key == 0 { i64::MIN } else { s.last_ms })
            .map_or(0, |(at, _)| at);
        if let Some(slot) = self.sessions.get_mut(oldest) {
            *slot = Session { key, last_intent: NO_INTENT, ..Session::default() };
        }
        oldest
    }

    pub(crate) fn find_session(&self, key: u64) -> Option<&Session> {
        let key = key.max(1);
        self.sessions.iter().find(|s| s.key == key)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        size_of::<AgentState>() + self.baseline.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_sets_stay_sorted_and_bounded() {
        let mut set = Vec::new();
        for id in [5, 1, 9, 1, 3] {
            insert(&mut set, id, 4);
        }
        assert_eq!(set, vec![1, 3, 5, 9]);
        assert!(!insert(&mut set, 7, 4));
        assert!(contains(&set, 9) && !contains(&set, 7));
    }

    #[test]
    fn transitions_count_and_saturate() {
        let mut b = Baseline::default();
        assert!(b.learn_transition(1, 2));
        assert!(!b.learn_transition(1, 2));
        assert!(b.learn_transition(0, 7));
        assert_eq!(b.transition_count(1, 2), 2);
        assert_eq!(b.transition_count(2, 1), 0);
    }

    #[test]
    fn risk_damps_within_a_kind_and_compounds_across_kinds() {
        let mut r = Risk::default();
        r.add(0, 0.5, 0, 1_000);
        r.add(0, 0.5, 0, 1_000);
        assert!((r.at(0, 1_000) - 0.625).abs() < 0.01);
        r.add(1, 0.5, 0, 1_000);
        assert!((r.at(0, 1_000) - 0.8125).abs() < 0.01);
        let one = Risk { kinds: [0, 0, 0, 0, 0, 0, 0, 128], at_ms: 0 };
        assert!((one.at(1_000, 1_000) - 0.25).abs() < 0.01);
    }

    #[test]
    fn sessions_replace_the_least_recently_active() {
        let mut a = AgentState::default();
        for (i, key) in [10u64, 20, 30, 40].iter().enumerate() {
            let slot = a.session_slot(*key);
            if let Some(s) = a.sessions.get_mut(slot) {
                s.last_ms = i as i64;
            }
        }
        let slot = a.session_slot(50);
        assert_eq!(a.sessions.get(slot).map(|s| s.key), Some(50));
        assert!(a.find_session(10).is_none());
        assert!(a.find_session(20).is_some());
    }
}
