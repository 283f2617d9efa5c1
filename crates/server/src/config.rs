//! Configuration: defaults, then a TOML file, then `WARDEN_…` variables, then flags.
//!
//! Every key can be set by a variable: `listen` is `WARDEN_LISTEN`, `data_dir` is
//! `WARDEN_DATA_DIR`, and nested keys join with a double underscore, so
//! `[log] origin` is `WARDEN_LOG__ORIGIN`.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use warden_store::directory::Budgets;

/// Shortest allowed checkpoint interval: checkpoints are published at most once a second.
pub const CHECKPOINT_INTERVAL_MS_MIN: u64 = 1_000;
/// Longest allowed checkpoint interval.
pub const CHECKPOINT_INTERVAL_MS_MAX: u64 = 3_600_000;
/// Longest context retention.
pub const CONTEXT_RETENTION_DAYS_MAX: u32 = 36_500;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Where the store and keys live.
    pub data_dir: PathBuf,
    /// The log.
    pub log: LogConfig,
    /// Telemetry ingestion.
    pub telemetry: TelemetryConfig,
    /// Default budgets of a session started without its own.
    pub budgets: Budgets,
    /// The authorization server.
    pub oauth: OAuthConfig,
    /// The gateway: upstreams, routes, credentials, limits.
    pub gateway: crate::gateway::config::GatewayConfig,
    /// The behavior engine: learning period, surge threshold, snapshots.
    pub behavior: crate::behavior::BehaviorConfig,
}

/// `[oauth]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Issuer identifier (this server's public URL); default `http://<listen address>`.
    pub issuer: Option<String>,
    /// Token lifetime per environment tier, seconds (default 300 each).
    pub lifetime_s_dev: Option<i64>,
    /// See `lifetime_s_dev`.
    pub lifetime_s_staging: Option<i64>,
    /// See `lifetime_s_dev`; control-plane audiences are capped at 60 s in prod.
    pub lifetime_s_prod: Option<i64>,
    /// Audiences (resource URIs) that are control planes.
    pub control_plane_audiences: Vec<String>,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The log's origin line (and signing key name). Fixed when the key is created;
    /// by default `localhost/warden/<random>`.
    pub origin: Option<String>,
    /// How often to publish a checkpoint while the tree grows.
    pub checkpoint_interval_ms: u64,
    /// What a decision waits for before the action it allows goes ahead.
    pub decision_durability: DecisionDurability,
}

/// `[log] decision_durability`: what a decision waits for before the action it
/// allows is forwarded (or `/v1/authorize` answers).
///
/// Either way the decision is in the log before the action happens, and nothing
/// the log acknowledged is lost when Warden crashes (`kill -9`). They differ on an
/// operating-system crash or power loss: `synced` loses nothing, `written` can lose
/// the decisions of the last few milliseconds (those the syncer, which runs one
/// fdatasync after another beside the writer, had not yet covered; `/metrics`
/// shows the gap as `warden_log_sequenced_entries - warden_log_synced_entries`).
/// `synced` adds one fdatasync to every action's latency; telemetry, control
/// changes and checkpoints always wait for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionDurability {
    /// Written to the log's WAL: survives a crash of Warden, synced moments later.
    #[default]
    Written,
    /// Synced to stable storage: survives a power loss.
    Synced,
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// How long submitted contexts (kept apart from the log) are retained.
    pub context_retention_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./warden-data"),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            budgets: Budgets::default(),
            oauth: OAuthConfig::default(),
            gateway: crate::gateway::config::GatewayConfig::default(),
            behavior: crate::behavior::BehaviorConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            origin: None,
            checkpoint_interval_ms: CHECKPOINT_INTERVAL_MS_MIN,
            decision_durability: DecisionDurability::default(),
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { context_retention_days: 90 }
    }
}

/// Keys that may come from the environment, as `WARDEN_<KEY>` with `__` for nesting.
const ENV_KEYS: [&str; 29] = [
    "gateway__hold_timeout_ms",
    "gateway__limits__connections_max",
    "gateway__limits__queue_max",
    "gateway__limits__request_body_bytes_max",
    "gateway__limits__response_body_bytes_max",
    "gateway__limits__connect_timeout_ms",
    "gateway__limits__first_byte_timeout_ms",
    "gateway__limits__total_timeout_ms",
    "gateway__forensic_body_bytes_max",
    "gateway__forensic_retention_days",
    "behavior__learning_events_min",
    "behavior__learning_hours_min",
    "behavior__surge_arrivals_min",
    "behavior__snapshot_interval_s",
    "oauth__issuer",
    "oauth__lifetime_s_dev",
    "oauth__lifetime_s_staging",
    "oauth__lifetime_s_prod",
    "listen",
    "data_dir",
    "log__origin",
    "log__checkpoint_interval_ms",
    "log__decision_durability",
    "telemetry__context_retention_days",
    "budgets__tool_calls_max",
    "budgets__writes_max",
    "budgets__bytes_max",
    "budgets__in_flight_max",
    "budgets__lifetime_s_max",
];

/// Why the configuration is unusable: every problem, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.join("\n"))]
pub struct ConfigError {
    /// One line per problem: where, which key, why.
    pub problems: Vec<String>,
}

/// Flags that override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
}

impl Config {
    /// Loads defaults, then `file` (if given, it must exist), then the environment,
    /// then `overrides`; validates the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError { problems: vec![format!("{}: file not found", path.display())] });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("WARDEN_")
                .filter(|k| ENV_KEYS.iter().any(|known| k.as_str().eq_ignore_ascii_case(known)))
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError { problems: e.into_iter().map(|e| describe(&e, file)).collect() })?;
        if let Some(d) = &overrides.data_dir {
            config.data_dir.clone_from(d);
        }
        if let Some(l) = &overrides.listen {
            config.listen.clone_from(l);
        }
        config.validate(file)?;
        Ok(config)
    }

    /// Checks values that parse but make no sense; names every problem.
    pub fn validate(&self, file: Option<&Path>) -> Result<(), ConfigError> {
        let at = file.map_or_else(|| "configuration".to_owned(), |p| p.display().to_string());
        let mut problems = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!("{at}: `listen`: `{}` is not an address like 127.0.0.1:8080", self.listen));
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push(format!("{at}: `data_dir`: must not be empty"));
        }
        if let Some(origin) = &self.log.origin
            && (origin.is_empty() || origin.contains('+') || origin.chars().any(char::is_whitespace))
        {
            problems.push(format!("{at}: `log.origin`: `{origin}` must be non-empty, without spaces or `+`"));
        }
        let interval = self.log.checkpoint_interval_ms;
        if !(CHECKPOINT_INTERVAL_MS_MIN..=CHECKPOINT_INTERVAL_MS_MAX).contains(&interval) {
            problems.push(format!(
                "{at}: `log.checkpoint_interval_ms`: {interval} is outside {CHECKPOINT_INTERVAL_MS_MIN}..={CHECKPOINT_INTERVAL_MS_MAX}"
            ));
        }
        if let Some(issuer) = &self.oauth.issuer
            && !(issuer.starts_with("https://") || issuer.starts_with("http://"))
        {
            problems.push(format!("{at}: `oauth.issuer`: `{issuer}` must be an http(s) URL"));
        }
        for (key, value) in [
            ("oauth.lifetime_s_dev", self.oauth.lifetime_s_dev),
            ("oauth.lifetime_s_staging", self.oauth.lifetime_s_staging),
            ("oauth.lifetime_s_prod", self.oauth.lifetime_s_prod),
        ] {
            if let Some(v) = value
                && !(1..=warden_identity::limits::TOKEN_LIFETIME_S_MAX).contains(&v)
            {
                problems.push(format!(
                    "{at}: `{key}`: {v} is outside 1..={}",
                    warden_identity::limits::TOKEN_LIFETIME_S_MAX
                ));
            }
        }
        let days = self.telemetry.context_retention_days;
        if days == 0 || days > CONTEXT_RETENTION_DAYS_MAX {
            problems.push(format!(
                "{at}: `telemetry.context_retention_days`: {days} is outside 1..={CONTEXT_RETENTION_DAYS_MAX}"
            ));
        }
        problems.extend(self.gateway.problems(&at, &crate::policy_api::DEFAULT_INTENTS));
        for (key, why) in self.behavior.problems() {
            problems.push(format!("{at}: `{key}`: {why}"));
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError { problems }) }
    }
}

fn describe(e: &figment::Error, file: Option<&Path>) -> String {
    let source = e
        .metadata
        .as_ref()
        .map(|m| m.source.as_ref().map_or_else(|| m.name.to_string(), ToString::to_string))
        .or_else(|| file.map(|p| p.display().to_string()))
        .unwrap_or_else(|| "configuration".into());
    let key = if e.path.is_empty() { String::new() } else { format!("`{}`: ", e.path.join(".")) };
    format!("{source}: {key}{}", e.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags_and_every_problem_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\n[log]\norigin = \"example.com/log\"\n").unwrap();
        let c = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.log.origin.as_deref(), Some("example.com/log"));
        let c = Config::load(Some(&path), &Overrides { listen: Some("127.0.0.1:1".into()), data_dir: None })
            .unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");

        std::fs::write(&path, "listen = \"nope\"\n[log]\ncheckpoint_interval_ms = 5\n").unwrap();
        let e = Config::load(Some(&path), &Overrides::default()).unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        std::fs::write(&path, "lisen = 1\n").unwrap();
        let e = Config::load(Some(&path), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        assert!(Config::load(Some(&dir.path().join("missing.toml")), &Overrides::default()).is_err());
    }

    #[test]
    fn decision_durability_defaults_to_written_and_names_a_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, "[log]\n").unwrap();
        let c = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(c.log.decision_durability, DecisionDurability::Written);
        std::fs::write(&path, "[log]\ndecision_durability = \"synced\"\n").unwrap();
        let c = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(c.log.decision_durability, DecisionDurability::Synced);
        std::fs::write(&path, "[log]\ndecision_durability = \"eventually\"\n").unwrap();
        let e = Config::load(Some(&path), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("decision_durability") && e.contains("eventually"), "{e}");
    }
}
