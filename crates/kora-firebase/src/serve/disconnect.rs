//! onDisconnect: writes a connection registers (`o`, `om`), cancels (`oc`), and that run when
//! the connection closes, for whatever reason (docs/firebase-protocol.md §5.4).

use kora_core::Path;
use kora_engine::{Context, Error};
use serde_json::{Map, Value};

use crate::write::{self, Expect, Refusal};
use crate::FirebaseState;

/// Most onDisconnect writes one connection may hold.
pub const MAX_PENDING: usize = 10_000;

/// The writes waiting for the connection to close, in the order they were registered.
#[derive(Debug, Default)]
pub struct Pending {
    writes: Vec<(Path, Value)>,
}

impl Pending {
    /// `o`: set `path` to `data` (`null`: remove it) on disconnect.
    pub fn set(&mut self, path: Path, data: Value) -> Result<(), Error> {
        if self.writes.len() >= MAX_PENDING {
            return Err(Error::too_large(format!(
                "a connection may hold at most {MAX_PENDING} onDisconnect writes"
            )));
        }
        // A later set replaces what earlier ones did at or under its path.
        self.forget(&path);
        self.writes.push((path, data));
        Ok(())
    }

    /// `om`: set each child of `path` on disconnect.
    pub fn update(&mut self, path: &Path, children: Map<String, Value>) -> Result<(), Error> {
        for (relative, data) in children {
            self.set(write::below(path, &relative)?, data)?;
        }
        Ok(())
    }

    /// `oc`: forget everything registered at or under `path`.
    pub fn forget(&mut self, path: &Path) {
        self.writes.retain(|(p, _)| !p.starts_with(path));
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Runs the writes, in order, as the connection's user: server values are resolved now.
    pub async fn run(self, state: &FirebaseState, ctx: &Context) {
        for (path, data) in self.writes {
            if let Err(refusal) = write::put(state, ctx, &path, data, Expect::Anything).await {
                let why = match refusal {
                    Refusal::Error(error) => error.to_string(),
                    Refusal::Stale { .. } => "stale".into(),
                };
                tracing::info!(%path, %why, "an onDisconnect write was refused");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cancelling_forgets_everything_beneath() {
        let p = |t: &str| Path::parse(t).unwrap();
        let mut pending = Pending::default();
        pending.set(p("a/b"), json!(1)).unwrap();
        pending
            .update(
                &p("a"),
                json!({"c": 2, "d/e": 3}).as_object().unwrap().clone(),
            )
            .unwrap();
        pending.set(p("x"), Value::Null).unwrap();
        pending.forget(&p("a/d"));
        let paths: Vec<String> = pending.writes.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(paths, vec!["a/b", "a/c", "x"]);
        pending.set(p("a"), json!(0)).unwrap();
        assert_eq!(pending.writes.len(), 2);
    }
}
