//! Who a Firebase client is: the token of an `auth`/`gauth` request or of a REST request.
//!
//! Tokens are JWTs verified with Kora's configured keys (`[auth]`), like Kora's own clients'.
//! With `[firebase] mock_tokens = true` the emulator's conventions are accepted too: unsigned
//! tokens (`alg: none`, what `connectDatabaseEmulator`'s `mockUserToken` sends) are taken at
//! their word, and `owner` is the administrator, who passes every rule. The admin secret
//! (`[auth] admin_secret`, Firebase's "database secret") is the administrator whatever the mode.

use base64::Engine;
use kora_engine::{Context, Error};
use serde_json::Value;

use crate::FirebaseState;

/// The identity a token stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// Claims: `auth` in the rules. Firebase's `uid` is added (from `user_id` or `sub`) when
    /// absent, and `sub` from `user_id`, so rules written either way find the user.
    /// `expires`: seconds since the epoch at which the identity lapses, its token's `exp` plus
    /// the verifier's leeway (`kora_transport::auth::lapses_at`; none for the
    /// emulator's unsigned tokens, which carry `exp: 3600` whatever the date, as the
    /// emulator ignores it).
    User { claims: Value, expires: Option<u64> },
    /// The administrator (`owner`, with mock tokens on): rules do not apply.
    Owner,
}

/// The identity of `token`, or why it is refused.
pub fn identify(state: &FirebaseState, token: &str) -> Result<Identity, Error> {
    let mock = state.settings.mock_tokens;
    if state.is_admin(token) || (mock && token == "owner") {
        return Ok(Identity::Owner);
    }
    if mock {
        if let Some(claims) = unsigned_claims(token) {
            return Ok(Identity::User {
                claims: with_uid(claims),
                expires: None,
            });
        }
    }
    match state.authenticate(Some(token))? {
        Some(claims) => Ok(Identity::User {
            expires: kora_transport::auth::lapses_at(&claims, state.config.auth.leeway_secs),
            claims: with_uid(claims),
        }),
        None => Err(Error::permission_denied("no token")),
    }
}

/// The context a request with `token` (if any) runs in, and when its identity lapses.
pub fn context(
    state: &FirebaseState,
    token: Option<&str>,
) -> Result<(Context, Option<u64>), Error> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok((state.context(), None));
    };
    Ok(match identify(state, token)? {
        Identity::Owner => (state.admin_context(), None),
        Identity::User { claims, expires } => {
            let ctx = state.context();
            ctx.set_auth(Some(claims));
            (ctx, expires)
        }
    })
}

/// The claims of an unsigned JWT (`alg: none`), `None` when `token` is not one.
fn unsigned_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (header, payload) = (parts.next()?, parts.next()?);
    let decode = |part: &str| -> Option<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let alg = decode(header)?.get("alg")?.as_str()?.to_ascii_lowercase();
    (alg == "none").then(|| decode(payload)).flatten()
}

fn with_uid(mut claims: Value) -> Value {
    let Some(map) = claims.as_object_mut() else {
        return claims;
    };
    let id = map
        .get("user_id")
        .or_else(|| map.get("sub"))
        .or_else(|| map.get("uid"))
        .cloned();
    if let Some(id) = id {
        map.entry("uid").or_insert_with(|| id.clone());
        map.entry("sub").or_insert(id);
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unsigned(payload: Value) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&payload)
        )
    }

    #[test]
    fn unsigned_tokens_are_read_and_given_a_uid() {
        let token = unsigned(json!({"user_id": "ada", "iat": 1}));
        let claims = unsigned_claims(&token).map(with_uid);
        assert_eq!(
            claims,
            Some(json!({"user_id": "ada", "iat": 1, "uid": "ada", "sub": "ada"}))
        );
    }

    #[test]
    fn signed_tokens_are_not_unsigned() {
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"sub":"x"}"#)
        );
        assert_eq!(unsigned_claims(&token), None);
        assert_eq!(unsigned_claims("owner"), None);
        assert_eq!(unsigned_claims("a.b"), None);
    }
}
