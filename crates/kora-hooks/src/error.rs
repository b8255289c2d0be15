//! What can go wrong declaring or asking a hook.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HookError {
    /// A `[[hooks]]` entry that cannot be served as written.
    #[error("{0}")]
    Config(String),
    /// The endpoint could not be asked, or did not answer as the contract says.
    #[error("hook {url}: {why}")]
    Failed { url: String, why: String },
}
