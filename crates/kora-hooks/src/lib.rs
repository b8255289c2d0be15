//! HTTP interceptors: Kora's interceptors and `call` handlers served by an endpoint written in
//! any language, declared in kora.toml (`[[hooks]]`) and run by the stock `kora serve`.
//!
//! A hook runs exactly where a Rust interceptor runs — inside the write's decision, before it
//! commits — so it can refuse a write, replace a layer's value or add writes (which are
//! intercepted in turn), refuse a read, answer a read of a virtual path, or serve a call. Each
//! request is a signed JSON POST ([`client::SIGNATURE_HEADER`]); each hook has a timeout and a
//! failure policy. The contract, with examples in Python and Node.js, is in
//! docs/interceptors.md ("HTTP hooks").

pub mod client;
pub mod config;
mod error;
pub mod hook;

use std::collections::BTreeSet;
use std::sync::Arc;

use kora_engine::KoraBuilder;

pub use client::Endpoint;
pub use config::{HookConfig, HookKind, OnFailure, Secret, TABLE};
pub use error::HookError;
pub use hook::{HttpCall, HttpInterceptor};

/// Registers every hook of `hooks` on `builder`: an interceptor on each `path`, a handler for
/// each of `calls`. Requests share one connection pool.
pub fn register(mut builder: KoraBuilder, hooks: &[HookConfig]) -> Result<KoraBuilder, HookError> {
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| HookError::Config(format!("the hooks' HTTP client: {e}")))?;
    let mut calls = BTreeSet::new();
    for hook in hooks {
        let endpoint = Endpoint {
            url: hook.url.clone(),
            secret: hook.checked()?,
            timeout: hook.timeout(),
            on_failure: hook.on_failure,
            http: http.clone(),
        };
        if let Some(pattern) = hook.path.as_deref().filter(|_| !hook.on.is_empty()) {
            check_reads(pattern, &hook.reads)?;
            check_reads(pattern, &hook.resolves_from)?;
            let interceptor = HttpInterceptor {
                endpoint: endpoint.clone(),
                pattern: pattern.to_string(),
                on: hook.on.clone(),
                reads: hook.reads.clone(),
                resolves_from: hook.resolves_from.clone(),
            };
            builder = builder.interceptor_arc(pattern, Arc::new(interceptor));
        }
        for name in &hook.calls {
            if !calls.insert(name.clone()) {
                return Err(HookError::Config(format!(
                    "[[hooks]]: call {name:?} is served by two hooks"
                )));
            }
            let call = HttpCall {
                endpoint: endpoint.clone(),
                name: name.clone(),
            };
            builder = builder.handler(name, call);
        }
    }
    Ok(builder)
}

/// Each `$name` in `reads` must be a capture of `pattern`.
fn check_reads(pattern: &str, reads: &[String]) -> Result<(), HookError> {
    let captures: BTreeSet<&str> = pattern
        .split('/')
        .filter_map(|s| s.strip_prefix('$'))
        .collect();
    for read in reads {
        for name in read.split('/').filter_map(|s| s.strip_prefix('$')) {
            if !captures.contains(name) {
                return Err(HookError::Config(format!(
                    "[[hooks]] {pattern}: reads {read:?} names ${name}, which the pattern does not capture"
                )));
            }
        }
    }
    Ok(())
}
