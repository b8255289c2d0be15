//! Mirrors: Kora's committed changes published to NATS for other systems to follow — a search
//! index, a warehouse, another database — declared in kora.toml (`[[mirrors]]`).
//!
//! A mirror follows the change log, which is durable and already in commit order, from a
//! cursor it keeps in a JetStream key-value bucket (shared by every node: `cursor`). For each
//! commit, each layer at a path matching one of its patterns is published to JetStream
//! (subject from the pattern's captures, the commit's part under that path as the payload,
//! `<seq>:<path>` as the `Nats-Msg-Id` deduplication id), and the cursor moves past the commit
//! only once JetStream has acknowledged every message of it. So nothing is lost while NATS is
//! down (the mirror retries from its cursor, with backoff), the order of changes to a path is
//! kept (one commit at a time, each step from the shared cursor), and a message sent twice (a
//! crash between the acknowledgement and the cursor's write, two nodes stepping at once) is
//! dropped by JetStream's duplicate window. The subjects must be captured by a JetStream
//! stream.
//!
//! Why the change log and not the outbox of effects: the effects runner runs a batch at once
//! and retries each effect on its own schedule, which reorders one path's changes when some
//! fail; the change log is ordered already and costs the commit nothing more.

mod config;
mod cursor;
mod run;

pub use config::{MirrorConfig, MirrorError, DEFAULT_CURSOR_BUCKET, TABLE};
pub use run::{message_id, messages, start, Message, Running};
