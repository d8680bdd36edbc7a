//! One sync of a pod (the kubelet's `SyncPod`): observe, check the active deadline, plan, report what was
//! observed, act, then move the lifecycle on when the pod has stopped for good. Also when to wake up next.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::{Worker, RESYNC};
use crate::pod::backoff;
use crate::pod::events::Event;
use crate::pod::instances::spec_hash;
use crate::pod::plan::{self, PlanInput};
use crate::pod::state::Transition;
use crate::runtime::container;

impl Worker {
    /// Syncs the pod once; returns whether to sync again at once.
    pub(super) async fn sync(&mut self) -> bool {
        self.refresh_created();
        let now = Timestamp::now();
        if self.start_time.is_none() {
            self.start_time = Some(now);
        }
        if let Some(failure) = plan::deadline_exceeded(&self.pod.spec.pod, self.start_time, now) {
            let event = Event::normal("DeadlineExceeded", failure.message.clone());
            if self.transition(Transition::Fail(failure)) {
                self.record(event);
            }
        }
        let view = self.view();
        let stopping = self.lifecycle.stopping();
        let plan = plan::compute(
            &self.pod,
            &PlanInput {
                view: &view,
                hashes: &self.hashes(),
                stopping,
            },
        );
        // The kubelet reports what it observed before it acts (`SyncPod`: the API status first, then the
        // runtime's `SyncPod`): an exit seen now, or at recovery, must not wait for the starts below, and a
        // terminating pod shows not ready before its containers stop.
        self.report(false);
        // A sidecar that started (without a startup probe) lets the next init container start: no exit
        // or probe message will come to trigger that sync, so it follows at once.
        let sidecar = plan.start_init.clone().filter(|name| self.is_sidecar(name));
        let before = sidecar.as_deref().map(|n| self.instances.count(n));
        self.act(&plan).await;
        let mut again = false;
        if let (Some(name), Some(before)) = (sidecar.as_deref(), before) {
            let running = self
                .instances
                .latest(name)
                .is_some_and(|i| i.exited.is_none() && i.started.is_some());
            again = self.instances.count(name) > before && running;
        }
        if plan::stopped_for_good(&plan, stopping, &self.view()) {
            self.transition(Transition::Stopped);
        }
        self.report(false);
        again
    }

    /// Picks up `started.json` of instances a previous supervisor was still starting, and the identity of
    /// their shims when it was not recorded yet at recovery.
    fn refresh_created(&mut self) {
        let cfg = &self.ctx.runtime;
        for inst in self.instances.all_mut() {
            if inst.exited.is_some() {
                continue;
            }
            let dir = cfg.instance_dir(&self.uid, &inst.record.name, inst.record.attempt);
            if inst.started.is_none() {
                inst.started = crate::sys::fs::read_json(&dir.join(crate::runtime::record::STARTED))
                    .ok()
                    .flatten();
            }
            if inst.shim.is_none() {
                inst.shim = container::shim_identity(cfg, &inst.record.id, &dir);
            }
        }
    }

    /// How long to sleep before the next sync if no message comes: the next retry, backoff expiry or
    /// deadline, at most [`RESYNC`].
    pub(super) fn next_wakeup(&self) -> Duration {
        let now = Timestamp::now();
        let mut at: Vec<Timestamp> = Vec::new();
        at.extend(self.retry_at);
        for c in self.all_containers() {
            let key = backoff::key(&c.name, &spec_hash(c));
            if let Some(ex) = self.instances.latest(&c.name).and_then(|i| i.exited.as_ref()) {
                at.extend(self.backoff.ready_at(&key, ex.finished_at));
            }
        }
        at.extend(self.pull_backoff.ready_at());
        at.extend(plan::deadline_at(&self.pod.spec.pod, self.start_time));
        let soonest = at.into_iter().filter(|t| *t > now).min();
        match soonest {
            Some(t) => {
                let nanos = (t.as_nanosecond() - now.as_nanosecond()).max(0) as u64;
                Duration::from_nanos(nanos).min(RESYNC) + Duration::from_millis(5)
            }
            None => RESYNC,
        }
    }
}
