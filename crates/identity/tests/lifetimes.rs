//! Token lifetimes per environment tier; production control planes get at most 60 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use warden_identity::{EnvironmentTier, LifetimeError, Lifetimes};

#[test]
fn defaults_are_five_minutes_and_prod_control_plane_sixty_seconds() {
    let lifetimes = Lifetimes::default();
    for tier in EnvironmentTier::ALL {
        assert_eq!(lifetimes.lifetime_s(tier, false), 300, "{tier}");
    }
    assert_eq!(lifetimes.lifetime_s(EnvironmentTier::Dev, true), 300);
    assert_eq!(lifetimes.lifetime_s(EnvironmentTier::Staging, true), 300);
    assert_eq!(lifetimes.lifetime_s(EnvironmentTier::Prod, true), 60);
}

#[test]
fn configuration_overrides_but_never_lifts_the_prod_control_plane_clamp() {
    let lifetimes = Lifetimes::default()
        .with_lifetime_s(EnvironmentTier::Prod, 900)
        .unwrap()
        .with_lifetime_s(EnvironmentTier::Dev, 1_800)
        .unwrap();
    assert_eq!(lifetimes.lifetime_s(EnvironmentTier::Prod, false), 900);
    assert_eq!(lifetimes.lifetime_s(EnvironmentTier::Prod, true), 60);
    assert_eq!(lifetimes.lifetime_s(EnvironmentTier::Dev, true), 1_800);
    let strict = Lifetimes::default().with_lifetime_s(EnvironmentTier::Prod, 30).unwrap();
    assert_eq!(strict.lifetime_s(EnvironmentTier::Prod, true), 30, "shorter settings are kept");
}

#[test]
fn refuses_out_of_range_lifetimes_and_unknown_tiers() {
    assert_eq!(
        Lifetimes::default().with_lifetime_s(EnvironmentTier::Prod, 86_400).unwrap_err(),
        LifetimeError::OutOfRange { tier: EnvironmentTier::Prod, lifetime_s: 86_400 }
    );
    assert!(Lifetimes::default().with_lifetime_s(EnvironmentTier::Dev, 0).is_err());
    assert_eq!("prod".parse::<EnvironmentTier>().unwrap(), EnvironmentTier::Prod);
    let err = "production".parse::<EnvironmentTier>().unwrap_err();
    assert_eq!(err.to_string(), "environment tier `production` is unknown: use `dev`, `staging` or `prod`");
    assert_eq!(serde_json::to_string(&EnvironmentTier::Staging).unwrap(), "\"staging\"");
}
