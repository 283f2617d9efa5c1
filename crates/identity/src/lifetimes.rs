//! How long access tokens live, per environment tier.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::{PROD_CONTROL_PLANE_LIFETIME_S_MAX, TOKEN_LIFETIME_S_DEFAULT, TOKEN_LIFETIME_S_MAX};

/// The environment tier of an agent or resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentTier {
    /// Development.
    Dev,
    /// Staging.
    Staging,
    /// Production.
    Prod,
}

impl EnvironmentTier {
    /// Every tier.
    pub const ALL: [Self; 3] = [Self::Dev, Self::Staging, Self::Prod];

    /// The tier's name: `dev`, `staging` or `prod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }
}

impl fmt::Display for EnvironmentTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a tier or lifetime setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifetimeError {
    /// Not `dev`, `staging` or `prod`.
    #[error("environment tier `{0}` is unknown: use `dev`, `staging` or `prod`")]
    UnknownTier(String),
    /// Outside `1..=TOKEN_LIFETIME_S_MAX`.
    #[error(
        "token lifetime of {lifetime_s} s for tier `{tier}` must be between 1 and {TOKEN_LIFETIME_S_MAX} s"
    )]
    OutOfRange {
        /// The tier being configured.
        tier: EnvironmentTier,
        /// The lifetime asked for.
        lifetime_s: i64,
    },
}

impl FromStr for EnvironmentTier {
    type Err = LifetimeError;

    fn from_str(s: &str) -> Result<Self, LifetimeError> {
        Self::ALL
            .into_iter()
            .find(|tier| tier.as_str() == s)
            .ok_or_else(|| LifetimeError::UnknownTier(s.to_owned()))
    }
}

/// Access-token lifetimes per tier: [`TOKEN_LIFETIME_S_DEFAULT`] (5 minutes) unless
/// configured, and never more than [`PROD_CONTROL_PLANE_LIFETIME_S_MAX`] for a
/// production control-plane audience, whatever the configuration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// INVARIANT: each in `1..=TOKEN_LIFETIME_S_MAX`.
    dev_s: i64,
    staging_s: i64,
    prod_s: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            dev_s: TOKEN_LIFETIME_S_DEFAULT,
            staging_s: TOKEN_LIFETIME_S_DEFAULT,
            prod_s: TOKEN_LIFETIME_S_DEFAULT,
        }
    }
}

impl Lifetimes {
    /// Overrides the lifetime of `tier` (a configuration value).
    pub fn with_lifetime_s(mut self, tier: EnvironmentTier, lifetime_s: i64) -> Result<Self, LifetimeError> {
        if !(1..=TOKEN_LIFETIME_S_MAX).contains(&lifetime_s) {
            return Err(LifetimeError::OutOfRange { tier, lifetime_s });
        }
        *self.slot(tier) = lifetime_s;
        Ok(self)
    }

    fn slot(&mut self, tier: EnvironmentTier) -> &mut i64 {
        match tier {
            EnvironmentTier::Dev => &mut self.dev_s,
            EnvironmentTier::Staging => &mut self.staging_s,
            EnvironmentTier::Prod => &mut self.prod_s,
        }
    }

    /// The lifetime of a token for an audience of `tier`; a production
    /// control-plane audience is clamped to [`PROD_CONTROL_PLANE_LIFETIME_S_MAX`].
    pub fn lifetime_s(&self, tier: EnvironmentTier, control_plane_audience: bool) -> i64 {
        let configured = match tier {
            EnvironmentTier::Dev => self.dev_s,
            EnvironmentTier::Staging => self.staging_s,
            EnvironmentTier::Prod => self.prod_s,
        };
        if tier == EnvironmentTier::Prod && control_plane_audience {
            return configured.min(PROD_CONTROL_PLANE_LIFETIME_S_MAX);
        }
        configured
    }
}
