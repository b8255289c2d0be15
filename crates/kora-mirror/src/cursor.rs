//! A mirror's cursor: the last commit JetStream acknowledged, kept in a JetStream key-value
//! bucket beside the stream the mirror fills.
//!
//! Kept in NATS, not on a node, for two reasons. Every node of a cluster runs the mirror, and
//! each one starts its steps from the same shared cursor: a node that was stopped or cut off
//! for a while never publishes old commits again after newer ones (JetStream's duplicate
//! window would no longer drop them). And the cursor lives and dies with the stream's data:
//! a NATS that lost its data republishes from the start of the change log, where a cursor on
//! a Kora node would have skipped everything the stream lost.
//!
//! The cursor only moves forward: it is replaced only at the revision it was read at, and a
//! node that finds it moved meanwhile reads it again and keeps the further of the two.

use async_nats::jetstream::{self, kv};
use kora_store::Seq;

/// A mirror's cursor, as last read or written.
pub(crate) struct Cursor {
    bucket: kv::Store,
    key: String,
    seq: Seq,
    /// The bucket's revision of the entry (0: none yet).
    revision: u64,
}

impl Cursor {
    /// The cursor `key` in `bucket` (the bucket is made when missing), not read yet: a
    /// mirror reads it ([`Cursor::reload`]) before each batch.
    pub(crate) async fn open(
        js: &jetstream::Context,
        bucket: &str,
        key: &str,
    ) -> Result<Cursor, String> {
        let store = match js.get_key_value(bucket).await {
            Ok(store) => store,
            Err(_) => {
                make_bucket(js, bucket).await?;
                js.get_key_value(bucket)
                    .await
                    .map_err(|e| format!("the cursor bucket {bucket}: {e}"))?
            }
        };
        Ok(Cursor {
            bucket: store,
            key: key.to_string(),
            seq: 0,
            revision: 0,
        })
    }

    /// The last commit published, as last read or written.
    pub(crate) fn seq(&self) -> Seq {
        self.seq
    }

    /// Reads the cursor again (another node may have moved it).
    pub(crate) async fn reload(&mut self) -> Result<(), String> {
        let entry = self
            .bucket
            .entry(self.key.as_str())
            .await
            .map_err(|e| format!("reading the cursor {}: {e}", self.key))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            (self.seq, self.revision) = (0, 0);
            return Ok(());
        };
        let text = String::from_utf8_lossy(&entry.value);
        self.seq = text
            .trim()
            .parse()
            .map_err(|_| format!("the cursor {}: {text:?} is not a sequence", self.key))?;
        self.revision = entry.revision;
        Ok(())
    }

    /// Moves the cursor forward to `seq` (nothing when another node moved it that far).
    pub(crate) async fn advance(&mut self, seq: Seq) -> Result<(), String> {
        while self.seq < seq {
            let value = seq.to_string().into();
            let written = match self.revision {
                0 => self
                    .bucket
                    .create(self.key.as_str(), value)
                    .await
                    .map_err(|e| {
                        (
                            e.kind() == kv::CreateErrorKind::AlreadyExists,
                            e.to_string(),
                        )
                    }),
                revision => self
                    .bucket
                    .update(self.key.as_str(), value, revision)
                    .await
                    .map_err(|e| {
                        let moved = e.kind() == kv::UpdateErrorKind::WrongLastRevision;
                        (moved, e.to_string())
                    }),
            };
            match written {
                Ok(revision) => (self.seq, self.revision) = (seq, revision),
                // Moved by another node since it was read: read it again, and go on only if
                // it is still short of `seq`.
                Err((true, _)) => self.reload().await?,
                Err((false, why)) => return Err(format!("writing the cursor {}: {why}", self.key)),
            }
        }
        Ok(())
    }
}

/// Makes the key-value bucket `bucket` (one replica, one value per key), as the key-value
/// convention lays it out: a stream `KV_<bucket>` on `$KV.<bucket>.>`. Made as a stream
/// rather than through the client's bucket call, which asks the server for account details
/// that older servers (2.9) answer in a shape the client does not read. Made already (by
/// another node meanwhile) is fine.
async fn make_bucket(js: &jetstream::Context, bucket: &str) -> Result<(), String> {
    let config = jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("Kora mirrors: the last commit each one published".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    match js.get_or_create_stream(config).await {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("making the cursor bucket {bucket}: {e}")),
    }
}
