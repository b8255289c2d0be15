//! # kora-rules
//!
//! Kora's declarative rules. Clients talk to the database directly, so the database decides
//! who may read and write what; a rules file (`kora.rules.yaml`) says so per path pattern,
//! and also validates data, computes server-set fields, keeps derived indexes in step and
//! names effects (webhooks) to run after commit. docs/rules.md is the user's guide.
//!
//! ```
//! use kora_core::{Mutation, Path};
//! use kora_rules::Rules;
//! use serde_json::{json, Map};
//!
//! let rules = Rules::parse("kora.rules.yaml", r#"
//! rules:
//!   todos/$uid:
//!     read: auth.sub == $uid
//!     write: auth.sub == $uid
//!   todos/$uid/$id:
//!     set: {created: "data == null ? now : data.created"}
//! "#)?;
//! let alice = json!({"sub": "alice"});
//! let write = Mutation::set(&Path::parse("todos/alice/T1")?, json!({"text": "Milk"}))?;
//! let plan = rules.check_write(&write, Some(&alice), 1_000, &Map::new())?;
//! assert_eq!(plan.extra.to_json()["merge"], json!({"todos": {"alice": {"T1": {"created": 1_000}}}}));
//! assert!(rules.check_read(&Path::parse("todos/bob")?, Some(&alice), 1_000, &Map::new()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The decisions, all pure and synchronous:
//!
//! - [`Rules::check_write`]: may this write happen, and what does the server add to it
//!   ([`WritePlan`]: server-set fields, derived writes, effects)?
//! - [`Rules::check_read`]: may this caller query or subscribe at a path?
//! - [`Rules::filter_read`] / [`Rules::filter_change`]: the parts of an answer / of a pushed
//!   change the caller may see.
//!
//! Each reads the tree through a [`Lookup`]; when it needs data that is not loaded it says
//! which ([`NeedsData`]) instead of blocking, and the caller loads it and asks again.
//!
//! Modules: [`expr`] (the expression language), [`pattern`] (path patterns and which is most
//! specific), [`lookup`], [`error`], [`limits`] (every bound, named).
//!
//! Not here: I/O beyond reading a rules file, async, the store. The engine wraps this crate
//! into an interceptor.

mod decide;
pub mod error;
pub mod expr;
pub mod limits;
mod load;
pub mod lookup;
pub mod pattern;
mod read;
mod rules;
mod template;
mod world;
mod write;
mod yaml;

pub use error::{CheckError, Code, Denial, LoadError, Location, NeedsData, Problem, RuleRef};
pub use expr::{Bindings, EvalError, Expression, SyntaxError};
pub use lookup::{resolve, Loaded, Lookup, MayNeedData, NothingLoaded};
pub use pattern::{Captures, Pattern, PatternError, Relation, Step};
pub use rules::Rules;
pub use write::{Effect, WritePlan};

#[cfg(test)]
mod tests {
    #[test]
    fn rules_can_be_shared_across_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<super::Rules>();
        shared::<super::CheckError>();
    }
}
