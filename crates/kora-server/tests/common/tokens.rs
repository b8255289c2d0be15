//! Signed tokens: the HS256 secret test servers verify with, and a signer.

use std::path::PathBuf;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;

/// The `[auth] hs256_secret` of test servers (at least 32 bytes, as Kora requires).
pub const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";

/// Seconds since the epoch, as `exp` counts them.
pub fn now() -> u64 {
    kora_core::stamp::wall_millis() / 1000
}

/// `claims` signed with HS256 and `secret`.
pub fn sign(claims: Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("claims encode")
}

/// A key file (PEM, JWKS) in `tests/data`.
pub fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// `claims` signed with [`SECRET`].
pub fn hs256(claims: Value) -> String {
    sign(claims, SECRET)
}
