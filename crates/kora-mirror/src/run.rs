//! A mirror's loop: read the change log from the cursor, publish, wait for JetStream's
//! acknowledgements, move the cursor; retry from the cursor when anything fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use kora_core::Path;
use kora_engine::{Captures, Kora, Pattern};
use kora_store::{Change, LogRead, Seq};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::config::{MirrorConfig, MirrorError};
use crate::cursor::Cursor;

/// How long an idle mirror waits for the next commit before reading the log again (a commit
/// wakes it at once; this bounds how long one made by another node waits).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The first pause after a failure; each further failure doubles it, up to the mirror's
/// `max_backoff_ms`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// One message a commit makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    /// Its `Nats-Msg-Id`: the same for the same change of the same path, however often sent.
    pub id: String,
    pub payload: Value,
}

/// The deduplication id of commit `seq`'s change to `path`.
pub fn message_id(seq: Seq, path: &str) -> String {
    format!("{seq}:{path}")
}

/// The messages `change` makes: one for each path of it that matches one of `patterns` (the
/// first that matches names the subject), with the commit's part under that path.
pub fn messages(change: &Change, patterns: &[Pattern], subject: Option<&str>) -> Vec<Message> {
    let mut out = Vec::new();
    for layer in change.mutation.layers() {
        let Some(captures) = patterns
            .iter()
            .find_map(|p| p.matches(layer.path.segments()))
        else {
            continue;
        };
        let path = layer.path.to_string();
        out.push(Message {
            subject: subject_for(subject, &layer.path, &captures),
            id: message_id(change.seq, &path),
            payload: json!({
                "seq": change.seq,
                "stamp": change.stamp.to_string(),
                "path": path,
                "captures": captures,
                "mutation": change.mutation.restrict(&layer.path),
            }),
        });
    }
    out
}

/// `template` with each `$name` token replaced by its capture, or `kora.<segments>`.
fn subject_for(template: Option<&str>, path: &Path, captures: &Captures) -> String {
    match template {
        Some(template) => template
            .split('.')
            .map(|token| match token.strip_prefix('$') {
                Some(name) => escape(captures.get(name).map_or(token, String::as_str)),
                None => token.to_string(),
            })
            .collect::<Vec<_>>()
            .join("."),
        None => std::iter::once("kora".to_string())
            .chain(path.segments().iter().map(|s| escape(s)))
            .collect::<Vec<_>>()
            .join("."),
    }
}

/// A key as one subject token: the characters NATS gives a meaning to (`.`, `*`, `>`,
/// whitespace) and `%` itself written as `%XX`.
fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '.' | '*' | '>' | '%' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_whitespace() || c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A running mirror: its task, and what it has done.
#[derive(Debug)]
pub struct Running {
    pub task: JoinHandle<()>,
    /// The last commit mirrored (acknowledged by JetStream).
    pub mirrored: Arc<AtomicU64>,
    /// Tries that failed (NATS unreachable, no acknowledgement in time) and were retried.
    pub failures: Arc<AtomicU64>,
}

/// Starts every mirror of `configs` on `kora`.
pub fn start(kora: &Kora, configs: &[MirrorConfig]) -> Result<Vec<Running>, MirrorError> {
    let mut started = Vec::new();
    for config in configs {
        let patterns = config.checked()?;
        let mirror = Mirror {
            kora: kora.clone(),
            config: config.clone(),
            patterns,
            mirrored: Arc::default(),
            failures: Arc::default(),
        };
        let (mirrored, failures) = (mirror.mirrored.clone(), mirror.failures.clone());
        started.push(Running {
            task: tokio::spawn(mirror.run()),
            mirrored,
            failures,
        });
    }
    Ok(started)
}

struct Mirror {
    kora: Kora,
    config: MirrorConfig,
    patterns: Vec<Pattern>,
    mirrored: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Mirror {
    async fn run(self) {
        let mut backoff = FIRST_BACKOFF;
        let mut link: Option<Link> = None;
        loop {
            match self.step(&mut link).await {
                Ok(moved) => {
                    backoff = FIRST_BACKOFF;
                    if !moved {
                        let next = self.mirrored.load(Ordering::Acquire).saturating_add(1);
                        let wait = self.kora.wait_delivered(next);
                        let _ = tokio::time::timeout(IDLE_POLL, wait).await;
                    }
                }
                Err(why) => {
                    self.failures.fetch_add(1, Ordering::Release);
                    let cursor = self.mirrored.load(Ordering::Acquire);
                    tracing::warn!(mirror = self.config.name, cursor, %why, "mirror retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.max_backoff());
                }
            }
        }
    }

    /// Publishes the commits after the shared cursor (one batch) and moves it past those
    /// JetStream acknowledged; true when it moved.
    async fn step(&self, link: &mut Option<Link>) -> Result<bool, String> {
        let link = match link {
            Some(link) => link,
            None => link.insert(self.connect().await?),
        };
        // From where the last step of any node ended.
        link.cursor.reload().await?;
        let cursor = link.cursor.seq();
        self.mirrored.store(cursor, Ordering::Release);
        let done = self.publish_after(&link.js, cursor).await?;
        if done == cursor {
            return Ok(false);
        }
        link.cursor.advance(done).await?;
        self.mirrored.store(link.cursor.seq(), Ordering::Release);
        Ok(true)
    }

    /// Publishes the commits after `cursor` (one batch); returns the last commit whose
    /// messages JetStream acknowledged.
    async fn publish_after(&self, js: &jetstream::Context, cursor: Seq) -> Result<Seq, String> {
        let changes = match self
            .kora
            .store()
            .changes(cursor, self.config.batch)
            .await
            .map_err(|e| format!("reading the change log: {e}"))?
        {
            LogRead::Changes(changes) => changes,
            LogRead::Compacted { oldest } => {
                tracing::error!(
                    mirror = self.config.name,
                    lost = format!("{}..{}", cursor + 1, oldest),
                    "the mirror fell behind the change log's retention: those commits are not mirrored"
                );
                return Ok(oldest.saturating_sub(1));
            }
        };
        let mut done = cursor;
        for change in changes {
            let messages = messages(&change, &self.patterns, self.config.subject.as_deref());
            if !messages.is_empty() {
                if let Err(why) = publish(js, messages).await {
                    // Whatever this commit acknowledged already is sent again, and dropped
                    // as a duplicate.
                    return if done > cursor { Ok(done) } else { Err(why) };
                }
            }
            done = change.seq;
        }
        Ok(done)
    }

    async fn connect(&self) -> Result<Link, String> {
        let client = async_nats::connect(&self.config.nats)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.config.nats))?;
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_millis(self.config.ack_timeout_ms));
        let cursor = Cursor::open(&js, &self.config.cursor_bucket, &self.config.name).await?;
        Ok(Link { js, cursor })
    }
}

/// A mirror's way to NATS: its JetStream context and its cursor there.
struct Link {
    js: jetstream::Context,
    cursor: Cursor,
}

/// Publishes a commit's messages and waits for every acknowledgement.
async fn publish(context: &jetstream::Context, messages: Vec<Message>) -> Result<(), String> {
    let mut acks = Vec::with_capacity(messages.len());
    for message in messages {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message.id.as_str());
        let payload = serde_json::to_vec(&message.payload).map_err(|e| e.to_string())?;
        let ack = context
            .publish_with_headers(message.subject.clone(), headers, payload.into())
            .await
            .map_err(|e| format!("publishing to {}: {e}", message.subject))?;
        acks.push((message.subject, ack));
    }
    for (subject, ack) in acks {
        ack.await
            .map_err(|e| format!("no acknowledgement for {subject}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kora_core::{Mutation, Stamp};

    fn change(seq: Seq, mutation: Value) -> Change {
        Change {
            seq,
            stamp: Stamp::ZERO,
            mutation: Mutation::from_json(&mutation).unwrap(),
        }
    }

    #[test]
    fn a_commit_makes_one_message_per_matching_path() {
        let patterns = vec![Pattern::parse("orders/$id").unwrap()];
        let commit = change(
            7,
            json!({"merge": {"orders": {"o1": {"n": 1}, "o.2": {"n": 2}}, "other": 1}}),
        );
        let out = messages(&commit, &patterns, Some("shop.orders.$id"));
        let subjects: Vec<&str> = out.iter().map(|m| m.subject.as_str()).collect();
        // In key order: `.` sorts before `1`.
        assert_eq!(subjects, ["shop.orders.o%2E2", "shop.orders.o1"]);
        assert_eq!(out[1].id, "7:orders/o1");
        assert_eq!(
            out[1].payload["mutation"]["merge"],
            json!({"orders": {"o1": {"n": 1}}})
        );
        let default = messages(&commit, &patterns, None);
        assert_eq!(default[1].subject, "kora.orders.o1");
    }
}
