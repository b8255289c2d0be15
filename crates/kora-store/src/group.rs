//! Group commit: concurrent callers' writes are gathered into one transaction.
//!
//! One committer task owns the backend's write side. It takes the first waiting write, then
//! every write already queued behind it (up to [`MAX_BATCH`]), commits them together, and
//! answers each caller. There is no timer: while one batch is being made durable the next
//! one forms by itself, so a lone writer pays one flush and 64 writers share one.
//!
//! Two shapes of write side:
//!
//! - a [`Batcher`] commits a batch in one call (the SQL backends: their transaction holds a
//!   row lock from the first read to the commit);
//! - a [`Pipeline`] splits a commit into staging (reading and planning, CPU work) and
//!   persisting (writing and flushing, mostly waiting on the disk), so that batch N+1 is
//!   staged while batch N is flushed (the embedded backend). Persisting stays strictly in
//!   order, one batch at a time, and callers are answered only once their batch is durable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex as SyncMutex;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::condition::Conflict;
use crate::error::StoreError;
use crate::store::{Commit, Submitted, Write};

/// Most writes in one transaction: bounds the transaction's size and the latency one batch
/// adds to the next, while 512 small mutations still commit in a few milliseconds.
pub const MAX_BATCH: usize = 512;

/// Writes waiting for the committer before callers wait for room: a bounded queue is the
/// store's backpressure.
pub const QUEUE_LENGTH: usize = 8_192;

/// What became of one write of a batch that committed: its commit, or the conflict that
/// refused it alone (its conditions did not hold; `crate::condition`).
pub type Outcome = Result<Commit, Conflict>;

/// The write side of a backend: commits a batch atomically, durably, in order. Returns one
/// outcome per write, in order.
#[async_trait]
pub trait Batcher: Send + 'static {
    async fn commit_batch(&mut self, writes: Vec<Write>) -> Result<Vec<Outcome>, StoreError>;
}

/// A durable write in progress.
pub type Persisting = Pin<Box<dyn Future<Output = Result<Vec<Outcome>, StoreError>> + Send>>;

/// A write side in two steps; see the module documentation.
#[async_trait]
pub trait Pipeline: Send + 'static {
    type Staged: Send + 'static;

    /// Plans a batch on top of every batch staged before it, durable or not.
    async fn stage(&mut self, writes: Vec<Write>) -> Result<Self::Staged, StoreError>;

    /// Makes a staged batch durable. Called in staging order; the next call comes only
    /// after the future it returns has finished.
    fn persist(&self, staged: Self::Staged) -> Persisting;

    /// A persist failed: forget every batch staged and not yet durable.
    fn reset(&mut self);
}

type Reply = oneshot::Sender<Result<Commit, StoreError>>;
type Job = (Write, Reply);

/// The handle callers use; the committer task runs until [`GroupCommit::close`].
pub struct GroupCommit {
    queue: SyncMutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The next batch: the first waiting write and every write queued behind it.
async fn next_batch(rx: &mut mpsc::Receiver<Job>) -> Option<(Vec<Write>, Vec<Reply>)> {
    let first = rx.recv().await?;
    let mut jobs = vec![first];
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs.into_iter().unzip())
}

/// Answers a batch's callers; returns whether it succeeded, and how if not.
fn answer(replies: Vec<Reply>, result: Result<Vec<Outcome>, StoreError>) -> Result<(), StoreError> {
    match result {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome.map_err(StoreError::Conflict));
            }
            Ok(())
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
            Err(error)
        }
    }
}

async fn run_batcher(mut batcher: impl Batcher, mut rx: mpsc::Receiver<Job>) {
    while let Some((writes, replies)) = next_batch(&mut rx).await {
        let _ = answer(replies, batcher.commit_batch(writes).await);
    }
}

/// Waits for the batch being persisted; `Err` with its error if it failed.
async fn settle(in_flight: Option<JoinHandle<Result<(), StoreError>>>) -> Result<(), StoreError> {
    match in_flight {
        None => Ok(()),
        Some(task) => task
            .await
            .unwrap_or_else(|e| Err(StoreError::Internal(format!("commit task failed: {e}")))),
    }
}

async fn run_pipeline<P: Pipeline>(mut pipeline: P, mut rx: mpsc::Receiver<Job>) {
    let mut in_flight = None;
    while let Some((writes, replies)) = next_batch(&mut rx).await {
        // A persist that already failed resets the pipeline before anything is staged on it.
        if in_flight.as_ref().is_some_and(JoinHandle::is_finished)
            && settle(in_flight.take()).await.is_err()
        {
            pipeline.reset();
        }
        let staged = pipeline.stage(writes).await;
        // Staged or not, this batch goes after the one being persisted; if that one fails,
        // this one, planned on top of it, fails with it.
        if let Err(error) = settle(in_flight.take()).await {
            pipeline.reset();
            let _ = answer(replies, Err(error));
            continue;
        }
        let staged = match staged {
            Ok(staged) => staged,
            Err(error) => {
                let _ = answer(replies, Err(error));
                continue;
            }
        };
        let persisting = pipeline.persist(staged);
        in_flight = Some(tokio::spawn(
            async move { answer(replies, persisting.await) },
        ));
    }
    let _ = settle(in_flight).await;
}

impl GroupCommit {
    /// Starts a committer over a one-step write side.
    pub fn spawn(batcher: impl Batcher) -> Self {
        Self::start(|rx| run_batcher(batcher, rx))
    }

    /// Starts a committer over a two-step write side.
    pub fn spawn_pipelined(pipeline: impl Pipeline) -> Self {
        Self::start(|rx| run_pipeline(pipeline, rx))
    }

    fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(mpsc::Receiver<Job>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE_LENGTH);
        GroupCommit {
            queue: SyncMutex::new(Some(tx)),
            task: Mutex::new(Some(tokio::spawn(run(rx)))),
        }
    }

    /// Commits one write with whatever else is waiting.
    pub async fn commit(&self, write: Write) -> Result<Commit, StoreError> {
        self.submit(write).await?.await
    }

    /// Queues one write and returns once it is queued: writes queued one after another
    /// commit in that order. The answer resolves to its commit.
    pub async fn submit(&self, write: Write) -> Result<Submitted, StoreError> {
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
        Ok(Box::pin(async move {
            answer.await.map_err(|_| StoreError::Closed)?
        }))
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};

    use kora_core::{Mutation, Stamp};

    use super::*;

    /// Numbers writes like a store; fails the persist of any batch holding stamp 13.
    struct Fake {
        staged: u64,
        durable: Arc<StdMutex<u64>>,
        resets: Arc<StdMutex<u32>>,
    }

    #[async_trait]
    impl Pipeline for Fake {
        type Staged = (u64, Vec<Write>);

        async fn stage(&mut self, writes: Vec<Write>) -> Result<Self::Staged, StoreError> {
            let first = self.staged + 1;
            self.staged += writes.len() as u64;
            Ok((first, writes))
        }

        fn persist(&self, (first, writes): Self::Staged) -> Persisting {
            let durable = self.durable.clone();
            Box::pin(async move {
                tokio::task::yield_now().await;
                if writes.iter().any(|w| w.stamp == Stamp::from_packed(13, 0)) {
                    return Err(StoreError::Unavailable("disk".into()));
                }
                let commits: Vec<Outcome> = (first..)
                    .zip(&writes)
                    .map(|(seq, w)| {
                        Ok(Commit {
                            seq,
                            stamp: w.stamp,
                            effect: w.mutation.clone(),
                        })
                    })
                    .collect();
                *durable.lock().unwrap() = first + writes.len() as u64 - 1;
                Ok(commits)
            })
        }

        fn reset(&mut self) {
            *self.resets.lock().unwrap() += 1;
            self.staged = *self.durable.lock().unwrap();
        }
    }

    fn write(n: u64) -> Write {
        Write::new(Stamp::from_packed(n, 0), Mutation::new())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pipelined_commits_are_numbered_in_order_and_failures_leave_no_gap() {
        let durable = Arc::new(StdMutex::new(0));
        let resets = Arc::new(StdMutex::new(0));
        let group = Arc::new(GroupCommit::spawn_pipelined(Fake {
            staged: 0,
            durable: durable.clone(),
            resets: resets.clone(),
        }));
        let mut seqs = Vec::new();
        for n in 1..=12 {
            seqs.push(group.commit(write(n)).await.unwrap().seq);
        }
        assert_eq!(seqs, (1..=12).collect::<Vec<u64>>());
        assert!(group.commit(write(13)).await.is_err());
        // Concurrent writers: all answered, numbered densely after the last durable one.
        let tasks: Vec<_> = (14..64)
            .map(|n| {
                let group = group.clone();
                tokio::spawn(async move { group.commit(write(n)).await })
            })
            .collect();
        let mut ok: Vec<u64> = Vec::new();
        for task in tasks {
            if let Ok(commit) = task.await.unwrap() {
                ok.push(commit.seq);
            }
        }
        ok.sort_unstable();
        // (A batch staged while the failed one was still finishing fails with it.)
        assert!(!ok.is_empty());
        assert_eq!(ok, (13..13 + ok.len() as u64).collect::<Vec<u64>>());
        assert_eq!(*durable.lock().unwrap(), 12 + ok.len() as u64);
        assert!(*resets.lock().unwrap() >= 1);
        group.close().await;
        assert_eq!(group.commit(write(99)).await, Err(StoreError::Closed));
    }
}
