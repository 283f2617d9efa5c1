//! Every bound the engine keeps, as named constants with the unit last.
//!
//! The engine holds state for every agent of a fleet in memory; these bounds are what
//! keep an agent at about a kilobyte in steady state and make hostile input (endless
//! fresh destinations, session ids, resource names) cost a bounded amount.

/// Distinct intents remembered per agent. Local intent indices are `u8` and
/// `u8::MAX` means "none", so this is at most 255.
pub const INTENTS_PER_AGENT_MAX: usize = 255;
/// Distinct resources remembered per agent; past this, a new resource is still
/// reported but no longer learned.
pub const RESOURCES_PER_AGENT_MAX: usize = 256;
/// Distinct resource classes remembered per agent.
pub const CLASSES_PER_AGENT_MAX: usize = 64;
/// Distinct resource locations (and their parents) remembered per agent.
pub const LOCATIONS_PER_AGENT_MAX: usize = 128;
/// Distinct destinations remembered per agent.
pub const DESTINATIONS_PER_AGENT_MAX: usize = 256;
/// Distinct destination domains (the organizations its sends reach) remembered per agent.
pub const DOMAINS_PER_AGENT_MAX: usize = 128;
/// Distinct intent-to-intent transitions remembered per agent.
pub const TRANSITIONS_PER_AGENT_MAX: usize = 512;
/// Recent sessions tracked per agent (least recently active replaced first).
pub const SESSIONS_PER_AGENT_MAX: usize = 4;
/// Destinations looked at per observation; further ones are ignored.
pub const DESTINATIONS_PER_OBSERVATION_MAX: usize = 16;
/// Distinct strings interned per kind (intents, resources, classes, destinations,
/// agents). Past this, new names are treated as never seen and not learned.
pub const NAMES_PER_KIND_MAX: usize = 4_000_000;
/// Bytes of one interned name; longer names are cut at a character boundary.
pub const NAME_BYTES_MAX: usize = 256;
/// Resource classes the fleet-surge detector tracks (a session's classes are a
/// `u64` bitmask).
pub const FLEET_CLASSES_MAX: usize = 64;
/// Chains in the chain table (a session's progress is 4 bits per chain in a `u64`).
pub const CHAINS_MAX: usize = 16;
/// Steps in one chain (progress is 4 bits).
pub const CHAIN_STEPS_MAX: usize = 15;
/// Mutex shards of the agent table.
pub const SHARDS: usize = 64;
/// Width of one bucket of the fleet-surge window, in milliseconds.
pub const SURGE_BUCKET_MS: i64 = 10_000;
/// Buckets in the fleet-surge window (the window is one minute).
pub const SURGE_BUCKETS: usize = 6;
/// Agents in one engine snapshot.
pub const SNAPSHOT_AGENTS_MAX: usize = 10_000_000;
