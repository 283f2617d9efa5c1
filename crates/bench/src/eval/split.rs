//! The dev and held-out test splits: every trajectory (and persona) goes to one of
//! them by a fixed hash of its id, stratified by source, so development looks only
//! at the dev split and the reported figure is the test split's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::training::PROFILES;
use super::{Label, Trajectory};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Split {
    Dev,
    Test,
}

impl Split {
    pub(super) fn name(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// FNV-1a, 64-bit: a stable hash written out here so the split never depends on a
/// library's version.
pub(super) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The split of every unit of the data, stratified: within each stratum the units
/// are ordered by `fnv1a("warden-eval-split:" + unit)` and the first half (rounded
/// down) is `Dev`, the rest `Test`. A unit is what must not straddle the split: a
/// BFCL or τ²-bench trajectory; a firedrill atomic (its attack trace and its benign twin); an
/// AgentThreatBench case (its attack and its benign run); a CodeIPI sample; a persona
/// (its generated attacks and fresh profile days).
pub(super) struct Splits(HashMap<String, Split>);

impl Splits {
    pub(super) fn new(strata: BTreeMap<String, BTreeSet<String>>) -> Splits {
        let mut out = HashMap::new();
        for units in strata.into_values() {
            let mut units: Vec<String> = units.into_iter().collect();
            units.sort_by_key(|u| (fnv1a(&format!("warden-eval-split:{u}")), u.clone()));
            let dev = units.len() / 2;
            for (i, unit) in units.into_iter().enumerate() {
                out.insert(unit, if i < dev { Split::Dev } else { Split::Test });
            }
        }
        Splits(out)
    }

    pub(super) fn of(&self, unit: &str) -> Split {
        self.0.get(unit).copied().unwrap_or(Split::Test)
    }
}

/// The source a trajectory came from, as named in the tables.
pub(super) fn source_name(t: &Trajectory) -> &'static str {
    match t.source.as_str() {
        s if s.starts_with("bfcl") => "bfcl",
        s if s.starts_with("agent-firedrill") => "firedrill",
        s if s.contains("agent_threat_bench") => "agentthreatbench",
        s if s.starts_with("tau2") => "tau2",
        s if s.contains("ipi_coding_agent") => "codeipi",
        _ => "data",
    }
}

/// The unit a held-out trajectory belongs to: its id, without the `/attack` or
/// `/benign` of paired traces.
pub(super) fn unit_of(t: &Trajectory) -> String {
    let id = t.id.split_once('/').map_or(t.id.as_str(), |(unit, _)| unit);
    format!("{}/{id}", source_name(t))
}

pub(super) fn persona_unit(persona: &str) -> String {
    format!("persona/{persona}")
}

/// Units by stratum: each source's held-out trajectories (AgentThreatBench's and
/// CodeIPI's cases with and without an attack apart, τ²-bench's by domain), profile
/// personas, BFCL roles, τ²-bench domains and the CodeIPI persona. A stratum of its
/// own for each new source keeps every other unit's split where it was.
pub(super) fn splits(trajectories: &[Trajectory], personas: &BTreeSet<String>) -> Splits {
    let mut strata: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let with_attack: BTreeSet<String> =
        trajectories.iter().filter(|t| t.label == Label::Attack).map(unit_of).collect();
    for t in trajectories.iter().filter(|t| !t.train) {
        let unit = unit_of(t);
        let stratum = match source_name(t) {
            "agentthreatbench" if with_attack.contains(&unit) => "agentthreatbench/with-attack".to_owned(),
            "agentthreatbench" => "agentthreatbench/benign-only".to_owned(),
            "codeipi" if with_attack.contains(&unit) => "codeipi/with-attack".to_owned(),
            "codeipi" => "codeipi/benign-only".to_owned(),
            "tau2" => format!("tau2/{}", t.persona),
            source => source.to_owned(),
        };
        strata.entry(stratum).or_default().insert(unit);
    }
    for persona in personas {
        // A persona only `--data` brings is a stratum of its own, so adding data never
        // moves a built-in persona between the splits.
        let stratum = match persona.split_once(':') {
            Some(("bfcl", _)) => "persona/bfcl",
            Some(("tau2", _)) => "persona/tau2",
            // Before the profile personas: joining their stratum would move them.
            Some(("codeipi", _)) => "persona/codeipi",
            _ if PROFILES.iter().any(|(p, _, _)| p == persona) => "persona/profile",
            _ => "persona/data",
        };
        strata.entry(stratum.to_owned()).or_default().insert(persona_unit(persona));
    }
    Splits::new(strata)
}
