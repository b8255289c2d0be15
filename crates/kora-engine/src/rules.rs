//! The rules file as an interceptor: one mechanism for code and for declarations.
//!
//! `kora_rules` decides, purely and synchronously, over data it asks for by path; this module
//! is the asynchronous loop around it — decide, load from the store what the decision asked
//! for, decide again (at most `MAX_LOOKUP_ROUNDS` times) — and the mapping of its answers
//! onto the engine: refusals become errors, the write plan (server-set fields, derived
//! writes, webhooks) becomes an [`Addition`], and reads and pushed changes are filtered.
//!
//! Register it on `**`. The system context (the server's own work) is not subject to rules.
//! Every lookup is read through `Kora::read_store`, so a write commits only if none of the data
//! its rules read changed before its commit; otherwise the rules run again on fresh data
//! (`crate::reads`). A `data`-dependent rule cannot be passed by racing a second write, and
//! derived writes and server-set fields are computed from the data they commit on.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use kora_core::stamp::wall_millis;
use kora_core::{Mutation, Path, PathQuery, Value};
use kora_rules::limits::MAX_LOOKUP_ROUNDS;
use kora_rules::{CheckError, LoadError, Loaded, Rules};
use kora_store::NewEffect;

use crate::context::Context;
use crate::error::{Code, Error};
use crate::interceptor::{Addition, Interceptor, ReadLayer, WholeWrite};
use crate::kora::Kora;

/// A rules file, reloadable while the server runs.
pub struct RulesInterceptor {
    rules: RwLock<Arc<Rules>>,
    source: Option<PathBuf>,
}

impl RulesInterceptor {
    /// Rules given directly (no file to reload from).
    pub fn new(rules: Rules) -> Self {
        RulesInterceptor {
            rules: RwLock::new(Arc::new(rules)),
            source: None,
        }
    }

    /// Loads a rules file.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, LoadError> {
        let path = path.into();
        let rules = Rules::load(&path)?;
        Ok(RulesInterceptor {
            rules: RwLock::new(Arc::new(rules)),
            source: Some(path),
        })
    }

    /// Reads the file again; on an error the old rules stay and the error is returned.
    pub fn reload(&self) -> Result<(), LoadError> {
        let Some(path) = &self.source else {
            return Ok(());
        };
        let rules = Rules::load(path)?;
        if let Ok(mut current) = self.rules.write() {
            *current = Arc::new(rules);
        }
        Ok(())
    }

    /// The file the rules come from.
    pub fn source(&self) -> Option<&std::path::Path> {
        self.source.as_deref()
    }

    fn current(&self) -> Arc<Rules> {
        match self.rules.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn refusal(error: CheckError) -> Error {
    match error {
        CheckError::Denied(denial) => {
            let code = match denial.code {
                kora_rules::Code::PermissionDenied => Code::PermissionDenied,
                kora_rules::Code::ValidationFailed => Code::ValidationFailed,
                kora_rules::Code::TooLarge => Code::TooLarge,
            };
            // Clients learn which rule refused, not its expression or where the file is;
            // the server's log has everything.
            tracing::debug!(%denial, "refused by the rules");
            let message = match &denial.rule {
                Some(rule) => format!(
                    "{} rule of {} refused {}",
                    rule.clause, rule.pattern, denial.path
                ),
                None => format!("no rule allows access to {}", denial.path),
            };
            Error::new(code, message)
        }
        CheckError::NeedsData(needs) => Error::internal(format!(
            "the rules still needed data after {MAX_LOOKUP_ROUNDS} rounds: {needs}"
        )),
    }
}

/// Decides with data loaded from the store as the decision asks for it.
async fn decide<T>(
    kora: &Kora,
    mut decision: impl FnMut(&Loaded) -> Result<T, CheckError>,
) -> Result<T, Error> {
    let mut loaded = Loaded::new();
    for _ in 0..MAX_LOOKUP_ROUNDS {
        let needs = match decision(&loaded) {
            Err(CheckError::NeedsData(needs)) => needs,
            other => return other.map_err(refusal),
        };
        let parts: Vec<PathQuery> = needs.paths.iter().cloned().map(PathQuery::new).collect();
        let snapshot = kora.read_store(&parts).await?;
        for (path, value) in needs.paths.iter().zip(snapshot.values) {
            loaded.insert(path, value);
        }
    }
    decision(&loaded).map_err(refusal)
}

fn now() -> i64 {
    wall_millis() as i64
}

#[async_trait]
impl Interceptor for RulesInterceptor {
    async fn before_write(&self, write: &WholeWrite<'_>, ctx: &Context) -> Result<Addition, Error> {
        if ctx.is_system() {
            return Ok(Addition::default());
        }
        let rules = self.current();
        let auth = ctx.auth();
        let now = now();
        let plan = decide(write.kora, |loaded| {
            rules.check_write(write.mutation, auth.as_ref(), now, loaded)
        })
        .await?;
        Ok(Addition {
            mutation: (!plan.extra.is_empty()).then_some(plan.extra),
            effects: plan
                .effects
                .into_iter()
                .map(|e| NewEffect {
                    kind: e.kind,
                    payload: e.payload,
                })
                .collect(),
        })
    }

    async fn before_query(&self, read: &ReadLayer<'_>, ctx: &Context) -> Result<(), Error> {
        if ctx.is_system() || !matches!(read.relation, crate::pattern::Relation::Exact(_)) {
            return Ok(());
        }
        let rules = self.current();
        let auth = ctx.auth();
        let now = now();
        let path = &read.query.path;
        decide(read.kora, |loaded| {
            rules.check_read(path, auth.as_ref(), now, loaded)
        })
        .await
    }

    fn filters_reads(&self) -> bool {
        true
    }

    async fn filter_read(
        &self,
        read: &ReadLayer<'_>,
        value: Option<Value>,
        ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        let Some(value) = value else {
            return Ok(None);
        };
        if ctx.is_system() || !matches!(read.relation, crate::pattern::Relation::Exact(_)) {
            return Ok(Some(value));
        }
        let rules = self.current();
        if rules.allows_all() {
            return Ok(Some(value));
        }
        let auth = ctx.auth();
        let now = now();
        let path: &Path = &read.query.path;
        decide(read.kora, |loaded| {
            rules.filter_read(path, value.clone(), auth.as_ref(), now, loaded)
        })
        .await
    }

    async fn filter_change(
        &self,
        query: &PathQuery,
        change: Mutation,
        ctx: &Context,
        kora: &Kora,
    ) -> Result<Mutation, Error> {
        let rules = self.current();
        if ctx.is_system() || rules.allows_all() {
            return Ok(change);
        }
        let auth = ctx.auth();
        let now = now();
        decide(kora, |loaded| {
            rules.filter_change(&query.path, &change, auth.as_ref(), now, loaded)
        })
        .await
    }
}
