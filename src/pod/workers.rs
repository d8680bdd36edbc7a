//! The set of pod workers on this node, keyed by pod uid. Front ends call it; it never blocks.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::worker::{Context, Msg, Update, Worker};
use crate::api::PodGroup;

struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
    task: JoinHandle<()>,
}

/// All pod workers.
pub struct PodWorkers {
    ctx: Arc<Context>,
    updates: mpsc::UnboundedSender<Update>,
    workers: HashMap<String, Handle>,
}

impl PodWorkers {
    /// Workers that report to `updates`.
    pub fn new(ctx: Arc<Context>, updates: mpsc::UnboundedSender<Update>) -> Self {
        PodWorkers {
            ctx,
            updates,
            workers: HashMap::new(),
        }
    }

    /// Starts a worker for `pod`, or hands the new version to the running one.
    pub fn sync(&mut self, pod: PodGroup) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(h) = self.workers.get(&uid) {
            if !h.task.is_finished() {
                let _ = h.tx.send(Msg::Update(Box::new(pod)));
                return;
            }
        }
        let (worker, tx) = Worker::new(self.ctx.clone(), pod, self.updates.clone());
        let task = tokio::spawn(worker.run());
        self.workers.insert(uid, Handle { tx, task });
    }

    /// Asks the worker of `uid` to stop its pod for good.
    pub fn terminate(&self, uid: &str, grace: Option<i64>) {
        if let Some(h) = self.workers.get(uid) {
            let _ = h.tx.send(Msg::Terminate { grace });
        }
    }

    /// Whether a worker exists for `uid`.
    pub fn contains(&self, uid: &str) -> bool {
        self.workers.contains_key(uid)
    }

    /// Forgets a worker that reported itself finished.
    pub fn finished(&mut self, uid: &str) {
        self.workers.remove(uid);
    }

    /// Uids of all workers.
    pub fn uids(&self) -> Vec<String> {
        self.workers.keys().cloned().collect()
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether there are no workers.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Stops every worker task without touching what runs: the next supervisor adopts it.
    pub fn detach(&mut self) {
        for (_, h) in self.workers.drain() {
            h.task.abort();
        }
    }
}
