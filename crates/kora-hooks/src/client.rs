//! Asking an endpoint: the signed POST, its timeout, and reading the answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use kora_engine::{Code, Error};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::config::{OnFailure, Secret, MAX_ANSWER_BYTES};
use crate::error::HookError;

/// The header carrying a request's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" with the shared secret>`.
pub const SIGNATURE_HEADER: &str = "kora-signature";

/// The header naming the hook a request asks (`before_mutation`, `before_query`, `resolve`,
/// `call`).
pub const HOOK_HEADER: &str = "kora-hook";

/// One endpoint, with its secret, timeout and failure policy. Requests share the process's
/// connection pool (keep-alive).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub secret: Option<Secret>,
    pub timeout: Duration,
    pub on_failure: OnFailure,
    pub http: reqwest::Client,
}

/// What an endpoint answered (a JSON object; every member optional).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answer {
    /// `refuse: {code, message}`: the write or read is refused with that error.
    pub refuse: Option<Error>,
    /// `replace: v`: the layer's value becomes `v` (`null` deletes it).
    pub replace: Option<Value>,
    /// `add: <mutation>`: writes added to the write (absolute paths, Kora's mutation JSON).
    pub add: Option<Value>,
    /// `value: v`: the answer of a `resolve` or a `call`.
    pub value: Option<Value>,
    /// `state: {…}`: values set on the caller's connection (`user` names it).
    pub state: Map<String, Value>,
}

impl Endpoint {
    /// POSTs `body` as hook `hook` and reads the answer; `Ok(None)` when the endpoint could not
    /// be asked and the failure policy lets the request pass.
    pub async fn ask(&self, hook: &str, body: &Value) -> Result<Option<Answer>, Error> {
        match self.post(hook, body).await {
            Ok(answer) => Ok(Some(answer)),
            Err(failure) => {
                tracing::warn!(hook, error = %failure, "hook failed");
                match self.on_failure {
                    OnFailure::Allow => Ok(None),
                    OnFailure::Refuse => Err(Error::new(Code::Unavailable, failure.to_string())),
                }
            }
        }
    }

    async fn post(&self, hook: &str, body: &Value) -> Result<Answer, HookError> {
        let failed = |why: String| HookError::Failed {
            url: self.url.clone(),
            why,
        };
        let body = body.to_string();
        let mut request = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HOOK_HEADER, hook);
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(&secret.0, unix_now(), &body));
        }
        let mut response = request.body(body).send().await.map_err(|e| {
            let what = if e.is_timeout() {
                format!("no answer within {} ms", self.timeout.as_millis())
            } else {
                format!("not reachable: {e}")
            };
            failed(what)
        })?;
        if !response.status().is_success() {
            return Err(failed(format!("answered HTTP {}", response.status())));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(format!("answer cut short: {e}")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(failed(format!("answer over {MAX_ANSWER_BYTES} bytes")));
            }
        }
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| failed(format!("answer is not JSON: {e}")))?
        };
        Answer::from_json(value).map_err(failed)
    }
}

impl Answer {
    fn from_json(value: Value) -> Result<Answer, String> {
        let Value::Object(mut map) = value else {
            return Err("answer is not a JSON object".into());
        };
        let refuse = match map.remove("refuse") {
            None | Some(Value::Null) => None,
            Some(refusal) => Some(refusal_error(&refusal)?),
        };
        let state = match map.remove("state") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(state)) => state,
            Some(_) => return Err("`state` is not an object".into()),
        };
        Ok(Answer {
            refuse,
            replace: map.remove("replace"),
            add: map.remove("add").filter(|a| !a.is_null()),
            value: map.remove("value"),
            state,
        })
    }
}

/// `{"code": "validation_failed", "message": "…"}` (the code defaults to
/// `permission_denied`), or a bare message.
fn refusal_error(refusal: &Value) -> Result<Error, String> {
    if let Some(message) = refusal.as_str() {
        return Ok(Error::permission_denied(message));
    }
    let message = refusal
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused by a hook");
    let code = match refusal.get("code") {
        None => Code::PermissionDenied,
        Some(code) => serde_json::from_value(code.clone())
            .map_err(|_| format!("`refuse.code` {code} is not an error code"))?,
    };
    Ok(Error::new(code, message))
}

/// The `Kora-Signature` of `body` sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: u64, body: &str) -> String {
    format!("t={unix_seconds},v1={}", sign(secret, unix_seconds, body))
}

fn sign(secret: &str, unix_seconds: u64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{unix_seconds}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_signature_is_the_hmac_of_time_and_body() {
        // Computed independently with Python's hmac module:
        // hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("secret", 1_700_000_000, "{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn an_endpoint_never_shows_its_secret() {
        let endpoint = Endpoint {
            url: "http://127.0.0.1:1/".into(),
            secret: Some("hunter2".into()),
            timeout: Duration::from_secs(1),
            on_failure: OnFailure::Refuse,
            http: reqwest::Client::new(),
        };
        let shown = format!("{endpoint:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn answers_read_as_the_contract_says() {
        let answer = Answer::from_json(json!({
            "refuse": {"code": "validation_failed", "message": "no"},
            "replace": null,
            "add": {"merge": {"a": 1}},
            "state": {"user": "ada"}
        }))
        .unwrap();
        let refusal = answer.refuse.expect("a refusal");
        assert_eq!(
            (refusal.code, refusal.message.as_str()),
            (Code::ValidationFailed, "no")
        );
        assert_eq!(answer.replace, Some(Value::Null));
        assert_eq!(answer.add, Some(json!({"merge": {"a": 1}})));
        assert_eq!(answer.state["user"], "ada");
        assert_eq!(Answer::from_json(json!({})).unwrap(), Answer::default());
        assert!(Answer::from_json(json!([])).is_err());
        assert!(Answer::from_json(json!({"refuse": {"code": "nope"}})).is_err());
    }
}
