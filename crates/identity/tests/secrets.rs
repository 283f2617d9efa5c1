//! Client secrets: generated with 256 bits, stored as argon2id PHC strings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use warden_identity::{
    SecretError, generate_client_secret, hash_client_secret, verify_client_secret,
    verify_unknown_client_secret,
};

#[test]
fn generated_secrets_are_prefixed_long_and_distinct() {
    let a = generate_client_secret();
    let b = generate_client_secret();
    assert_ne!(a, b);
    let body = a.strip_prefix("wsec_").unwrap();
    assert_eq!(body.len(), 43, "32 bytes as unpadded base64url");
    assert!(body.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
}

#[test]
fn hash_then_verify() {
    let secret = generate_client_secret();
    let phc = hash_client_secret(&secret).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(!phc.contains(&secret));
    assert!(verify_client_secret(&secret, &phc));
    assert!(!verify_client_secret(&generate_client_secret(), &phc));
    assert!(!verify_client_secret("", &phc));
    // Salted: the same secret hashes differently each time.
    assert_ne!(hash_client_secret(&secret).unwrap(), phc);
}

#[test]
fn refuses_bad_hashes_and_secrets() {
    let secret = generate_client_secret();
    assert!(!verify_client_secret(&secret, "not a phc string"));
    assert!(!verify_client_secret(&secret, ""));
    // argon2i is not argon2id, whatever it hashes.
    let argon2i = "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$1y5cfnFSdzC0ycqS6DGYPPNJdDAO5SxRjPRDmPQmCxA";
    assert!(!verify_client_secret(&secret, argon2i));
    // A stored hash asking for 4 GiB of memory is refused before any work.
    let greedy = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$1y5cfnFSdzC0ycqS6DGYPPNJdDAO5SxRjPRDmPQmCxA";
    assert!(!verify_client_secret(&secret, greedy));
    assert_eq!(hash_client_secret("short").unwrap_err(), SecretError::TooShort);
    assert_eq!(hash_client_secret(&"x".repeat(300)).unwrap_err(), SecretError::TooLong);
    assert!(!verify_client_secret(&"x".repeat(300), "$argon2id$"));
    assert!(!verify_unknown_client_secret(&secret));
}
