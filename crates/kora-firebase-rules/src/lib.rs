//! # kora-firebase-rules
//!
//! Firebase Realtime Database security rules — the `database.rules.json` language — parsed
//! once and evaluated natively, so that Kora can enforce the rules of an application written
//! for Firebase.
//!
//! ```
//! use kora_firebase_rules::{Context, Rules};
//! use serde_json::json;
//!
//! let rules = Rules::parse(r#"{
//!   "rules": {
//!     "users": {
//!       "$uid": {
//!         // only the user writes their profile, which needs a name
//!         ".write": "auth != null && auth.uid == $uid",
//!         ".validate": "newData.hasChildren(['name'])",
//!         "name": { ".validate": "newData.isString() && newData.val().length < 50" }
//!       }
//!     }
//!   }
//! }"#)?;
//! let data = json!({"users": {"alice": {"name": "Alice"}}});
//! let alice = json!({"uid": "alice"});
//! let ctx = Context { auth: Some(&alice), now: 1_700_000_000_000 };
//! assert!(rules.can_write("/users/alice/name", Some(&json!("Al")), &ctx, &data).is_allowed());
//! assert!(!rules.can_write("/users/alice/name", Some(&json!(7)), &ctx, &data).is_allowed());
//! assert!(!rules.can_write("/users/bob", Some(&json!({"name": "B"})), &ctx, &data).is_allowed());
//! assert!(!rules.can_read("/users/alice", &ctx, &data, None).is_allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The decisions ([`Rules::can_read`], [`Rules::can_write`], [`Rules::can_update`]) are pure
//! and synchronous. They read the database through [`Data`], which the caller implements
//! over its own store (and can use to record what a decision read); `newData` is that tree
//! with the write applied, built here. Their semantics are Firebase's:
//! - `.read` and `.write` cascade: access is granted when any rule from the root down to the
//!   location is true; a grant above cannot be revoked below; rules below do not grant.
//! - `.validate` does not cascade and all must hold: at the written location and its
//!   ancestors where the new data exists, and at every location inside the written value
//!   that has rules. Deleted locations are not validated.
//! - A rule that errs is false. `$variables` bind the keys they matched.
//! - An update is checked path by path, against the tree after all of its paths.
//!
//! The expression language is Firebase's JavaScript subset with its type rules: what
//! Firebase refuses to deploy, [`Rules::parse`] refuses, naming the rule
//! (`rules/users/$uid/.write: …`). Expressions are parsed once, at load. Decisions are checked
//! against Firebase's recorded answers (`tests/firebase_fixtures.json`) and against
//! targaryen, an independent implementation, with random rules, data and requests
//! (`tests/targaryen.rs`; `ORACLE.md` lists where and why the two differ).
//!
//! Choices where Firebase's documentation is silent, settled by its recorded answers:
//! a rule that is not a boolean expression (`".read": "1"`, `"auth.uid"`) is refused at load;
//! a member of `null` is `null` (`auth.uid == null` holds when signed out) while a method of
//! `null` errs; `x / 0` is `NaN`.
//!
//! Deliberately not here:
//! - I/O of any kind: the caller reads the rules file, the data, and verifies tokens.
//! - Priorities: `getPriority()` is always `null`, `.priority` in written data is dropped.
//! - Server values other than `{".sv": "timestamp"}` (resolve increments before asking).
//! - Filtering what a read returns: a read is allowed or refused as a whole, as in Firebase.
//! - Comparing two objects with `==`: an error (so false) rather than JavaScript's identity.
//! - Validating the keys and sizes of written data, which the protocol layer does.
//!
//! Every bound is a named constant in [`limits`].

mod data;
mod decide;
pub mod error;
mod expr;
pub mod limits;
mod query;
mod regex;
mod rules;

pub use data::Data;
pub use decide::{Context, Decision, Denial};
pub use error::RulesError;
pub use query::{OrderBy, QueryParams};
pub use rules::Rules;

// Loaded rules are shared by every connection's task, and their errors and decisions cross
// tasks: a compile error here, not a test, if one of them stops being shareable.
const _: fn() = || {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Rules>();
    shared::<RulesError>();
    shared::<Decision>();
};
