//! Group commit: concurrent callers' writes are gathered into one transaction.
//!
//! One committer task owns the backend's write side. It takes the first waiting write, then
//! every write already queued behind it (up to [`MAX_BATCH`]), commits them together, and
//! answers each caller. There is no timer: while one batch is being made durable the next
//! one forms by itself, so a lone writer pays one flush and 64 writers share one.

use async_trait::async_trait;
use std::sync::Mutex as SyncMutex;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::store::{Commit, Write};

/// Most writes in one transaction: bounds the transaction's size and the latency one batch
/// adds to the next, while 512 small mutations still commit in a few milliseconds.
pub const MAX_BATCH: usize = 512;

/// Writes waiting for the committer before callers wait for room: a bounded queue is the
/// store's backpressure.
pub const QUEUE_LENGTH: usize = 8_192;

/// The write side of a backend: commits a batch atomically, durably, in order.
#[async_trait]
pub trait Batcher: Send + 'static {
    async fn commit_batch(&mut self, writes: Vec<Write>) -> Result<Vec<Commit>, StoreError>;
}

type Job = (Write, oneshot::Sender<Result<Commit, StoreError>>);

/// The handle callers use; the committer task runs until [`GroupCommit::close`].
pub struct GroupCommit {
    queue: SyncMutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    pub fn spawn(mut batcher: impl Batcher) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_LENGTH);
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let (writes, replies): (Vec<Write>, Vec<_>) = jobs.into_iter().unzip();
                match batcher.commit_batch(writes).await {
                    Ok(commits) => {
                        for (reply, commit) in replies.into_iter().zip(commits) {
                            let _ = reply.send(Ok(commit));
                        }
                    }
                    Err(error) => {
                        for reply in replies {
                            let _ = reply.send(Err(error.clone()));
                        }
                    }
                }
            }
        });
        GroupCommit {
            queue: SyncMutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Commits one write with whatever else is waiting.
    pub async fn commit(&self, write: Write) -> Result<Commit, StoreError> {
        let sender = self
            .queue
            .lock()
            .map_err(|_| StoreError::Internal("commit queue lock poisoned".into()))?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send((write, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking writes, lets queued ones commit, and waits for the committer.
    pub async fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}
