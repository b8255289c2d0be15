//! Authentication: JSON Web Tokens verified with the configured keys. The verified claims
//! become `auth` in the rules and the identity in the engine's context.
//!
//! Accepted: HS256 with a shared secret; RS256 and ES256 with a PEM public key file or a JWKS
//! file (keys chosen by `kid`). `exp` is required and, like `nbf`, enforced with a small
//! leeway; `iss` and `aud` are checked when configured. Tokens signed with another algorithm
//! — including `alg: none` — or with a key that is not configured are refused.
//!
//! The administrator: a request presenting `[auth] admin_secret` (off by default) acts as the
//! server itself — rules do not apply — and may use the admin endpoints (dead letters). It is
//! what Firebase calls a database secret, so Firebase's REST `?auth=` and its `auth` request
//! take it too. It is compared in constant time and never logged.
//!
//! Clients present a token as `Authorization: Bearer <token>` (HTTP, event streams, the
//! WebSocket handshake), as `?token=<token>` (where browsers cannot set headers:
//! `EventSource`, `WebSocket`), or in an `auth` message on the WebSocket.

use std::path::PathBuf;

use axum::http::HeaderMap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use kora_engine::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Clock skew tolerated on `exp` and `nbf` by default: clients' clocks drift, and a token
/// refused a few seconds early is a confusing failure.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// How tokens are verified (`[auth]` in kora.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Shared secret for HS256 tokens.
    pub hs256_secret: Option<String>,
    /// A PEM public key (RSA for RS256, EC P-256 for ES256).
    pub public_key: Option<PathBuf>,
    /// A JWKS file (RFC 7517) of RS256/ES256 keys, chosen by the token's `kid`.
    pub jwks: Option<PathBuf>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    /// Seconds of leeway on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// A secret (at least 32 bytes) that makes its bearer the administrator; none by default.
    pub admin_secret: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            hs256_secret: None,
            public_key: None,
            jwks: None,
            issuer: None,
            audience: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            admin_secret: None,
        }
    }
}

/// The shortest `admin_secret` accepted: as long as an HS256 key, so neither is guessable.
pub const MIN_SECRET_BYTES: usize = 32;

/// The keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("auth: {0}")]
pub struct AuthError(String);

struct Key {
    algorithm: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
}

/// Verifies tokens.
pub struct Verifier {
    keys: Vec<Key>,
    config: AuthConfig,
}

impl Verifier {
    /// The verifier the configuration asks for; `None` when no key is configured (then every
    /// token is refused and every client is anonymous).
    pub fn from_config(config: &AuthConfig) -> Result<Option<Verifier>, AuthError> {
        let mut keys = Vec::new();
        if config
            .admin_secret
            .as_ref()
            .is_some_and(|s| s.len() < MIN_SECRET_BYTES)
        {
            return Err(AuthError(format!(
                "admin_secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        if let Some(secret) = &config.hs256_secret {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(AuthError(format!(
                    "hs256_secret must be at least {MIN_SECRET_BYTES} bytes (256 bits)"
                )));
            }
            keys.push(Key {
                algorithm: Algorithm::HS256,
                kid: None,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        if let Some(path) = &config.public_key {
            keys.push(pem_key(path)?);
        }
        if let Some(path) = &config.jwks {
            keys.extend(jwks_keys(path)?);
        }
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(Verifier {
            keys,
            config: config.clone(),
        }))
    }

    /// The token's claims, or why it is refused (`permission_denied`).
    pub fn verify(&self, token: &str) -> Result<Value, Error> {
        let refuse = |why: String| Error::permission_denied(format!("invalid token: {why}"));
        let header = decode_header(token).map_err(|e| refuse(e.to_string()))?;
        let key = self
            .keys
            .iter()
            .filter(|k| k.algorithm == header.alg)
            .find(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
            .ok_or_else(|| refuse(format!("no configured key for {:?}", header.alg)))?;
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.config.leeway_secs;
        validation.validate_nbf = true;
        validation.validate_aud = self.config.audience.is_some();
        if let Some(audience) = &self.config.audience {
            validation.set_audience(&[audience]);
        }
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
        }
        let data =
            decode::<Value>(token, &key.key, &validation).map_err(|e| refuse(e.to_string()))?;
        Ok(data.claims)
    }
}

fn pem_key(path: &PathBuf) -> Result<Key, AuthError> {
    let pem = std::fs::read(path).map_err(|e| AuthError(format!("{}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&pem);
    let (algorithm, key) =
        if text.contains("BEGIN RSA PUBLIC KEY") || DecodingKey::from_rsa_pem(&pem).is_ok() {
            (Algorithm::RS256, DecodingKey::from_rsa_pem(&pem))
        } else {
            (Algorithm::ES256, DecodingKey::from_ec_pem(&pem))
        };
    let key = key.map_err(|e| {
        AuthError(format!(
            "{}: not an RSA or EC public key: {e}",
            path.display()
        ))
    })?;
    Ok(Key {
        algorithm,
        kid: None,
        key,
    })
}

fn jwks_keys(path: &PathBuf) -> Result<Vec<Key>, AuthError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| AuthError(format!("{}: {e}", path.display())))?;
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| AuthError(format!("{}: {e}", path.display())))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| AuthError(format!("{}: {e}", path.display())))?;
        keys.push(Key {
            algorithm,
            kid: jwk.common.key_id.clone(),
            key,
        });
    }
    if keys.is_empty() {
        return Err(AuthError(format!(
            "{}: no RS256 or ES256 keys",
            path.display()
        )));
    }
    Ok(keys)
}

/// Whether `token` is the configured admin secret. Constant time, so that the answer's timing
/// does not reveal how much of a guess was right.
pub fn is_admin_secret(config: &AuthConfig, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    config
        .admin_secret
        .as_ref()
        .is_some_and(|secret| bool::from(secret.as_bytes().ct_eq(token.as_bytes())))
}

/// The token a request presents: `Authorization: Bearer …` or the `token` parameter.
pub fn presented<'a>(headers: &'a HeaderMap, token_param: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or(token_param)
}

/// When an identity lapses, in seconds since the epoch: its token's `exp` plus the leeway the
/// verifier accepted the token with, so a token accepted at connect is not dropped on the next
/// message. The one expiry rule of every socket and stream, of both protocols.
pub fn lapses_at(claims: &Value, leeway_secs: u64) -> Option<u64> {
    let exp = claims.get("exp").and_then(Value::as_u64)?;
    Some(exp.saturating_add(leeway_secs))
}

/// Whether an identity that lapses at `lapses_at` ([`lapses_at`]) has lapsed: from that
/// second on, as JWTs define `exp`.
pub fn lapsed(lapses_at: Option<u64>) -> bool {
    lapses_at.is_some_and(|at| at.saturating_mul(1000) <= kora_core::stamp::wall_millis())
}

/// How long until an identity that lapses at `lapses_at` has lapsed (none: it never does).
pub fn until_lapse(lapses_at: Option<u64>) -> Option<std::time::Duration> {
    let left = lapses_at?
        .saturating_mul(1000)
        .saturating_sub(kora_core::stamp::wall_millis());
    Some(std::time::Duration::from_millis(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_lapses_at_its_exp_second() {
        let now = kora_core::stamp::wall_millis() / 1000;
        assert!(!lapsed(None));
        assert!(lapsed(Some(now)));
        assert!(lapsed(Some(now - 1)));
        assert!(!lapsed(Some(now + 60)));
        assert_eq!(until_lapse(None), None);
        assert_eq!(until_lapse(Some(now - 1)), Some(std::time::Duration::ZERO));
        let left = until_lapse(Some(now + 60)).unwrap();
        assert!(
            left > std::time::Duration::from_secs(59) && left <= std::time::Duration::from_secs(60)
        );
    }

    #[test]
    fn an_identity_lapses_after_its_exp_and_the_leeway() {
        assert_eq!(lapses_at(&serde_json::json!({"exp": 100}), 30), Some(130));
        assert_eq!(lapses_at(&serde_json::json!({"sub": "x"}), 30), None);
    }
}
