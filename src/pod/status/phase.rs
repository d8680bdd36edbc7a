//! The pod's phase as the kubelet's `getPhase` (pkg/kubelet/kubelet_pods.go) computes it from the container
//! statuses, native sidecars included: init containers counted first, then regular containers, then the
//! restart policy decides.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, PodSpec};

use crate::pod::plan::is_sidecar;

/// The container counts `getPhase` decides on.
#[derive(Debug, Default)]
struct Counts {
    pending_regular_init: u32,
    pending_sidecars: u32,
    failed_init: u32,
    unknown: u32,
    running: u32,
    waiting: u32,
    stopped: u32,
    succeeded: u32,
}

fn find<'a>(list: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    list.iter().find(|s| s.name == name)
}

fn last_terminated(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    s.last_state.as_ref().and_then(|l| l.terminated.as_ref())
}

impl Counts {
    fn init(&mut self, spec: &PodSpec, init: &[ContainerStatus]) {
        for c in spec.init_containers.iter().flatten() {
            let sidecar = is_sidecar(c);
            let Some(s) = find(init, &c.name) else {
                if sidecar {
                    self.unknown += 1;
                } else {
                    self.pending_regular_init += 1;
                }
                continue;
            };
            if sidecar {
                self.sidecar(s);
            } else {
                self.regular_init(s);
            }
        }
    }

    fn sidecar(&mut self, s: &ContainerStatus) {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            if s.started != Some(true) {
                self.pending_sidecars += 1;
            }
            self.running += 1;
        } else if st.terminated.is_some() || last_terminated(s).is_some() {
        } else if st.waiting.is_some() {
            self.pending_sidecars += 1;
            self.waiting += 1;
        } else {
            self.pending_sidecars += 1;
            self.unknown += 1;
        }
    }

    fn regular_init(&mut self, s: &ContainerStatus) {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            self.pending_regular_init += 1;
        } else if let Some(t) = &st.terminated {
            if t.exit_code != 0 {
                self.failed_init += 1;
            }
        } else if st.waiting.is_some() {
            match last_terminated(s) {
                Some(t) if t.exit_code != 0 => self.failed_init += 1,
                Some(_) => {}
                None => self.pending_regular_init += 1,
            }
        } else {
            self.pending_regular_init += 1;
        }
    }

    fn regular(&mut self, spec: &PodSpec, app: &[ContainerStatus]) {
        for c in &spec.containers {
            let Some(s) = find(app, &c.name) else {
                self.unknown += 1;
                continue;
            };
            let st = s.state.clone().unwrap_or_default();
            if st.running.is_some() {
                self.running += 1;
            } else if let Some(t) = &st.terminated {
                self.stopped += 1;
                if t.exit_code == 0 {
                    self.succeeded += 1;
                }
            } else if st.waiting.is_some() {
                if last_terminated(s).is_some() {
                    self.stopped += 1;
                } else {
                    self.waiting += 1;
                }
            } else {
                self.unknown += 1;
            }
        }
    }
}

/// The kubelet's `getPhase`, sidecars included.
pub fn phase(
    spec: &PodSpec,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    terminal: bool,
    has_initialized: bool,
) -> &'static str {
    let mut n = Counts::default();
    n.init(spec, init);
    n.regular(spec, app);
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if n.failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if n.pending_regular_init > 0 || (n.pending_sidecars > 0 && !has_initialized) || n.waiting > 0 {
        return "Pending";
    }
    if n.running > 0 && n.unknown == 0 {
        return "Running";
    }
    if n.running == 0 && n.stopped > 0 && n.unknown == 0 {
        if terminal {
            return if n.stopped == n.succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if n.stopped == n.succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}
