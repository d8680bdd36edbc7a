//! The chaos workload: a seeded generator and the random pod plans (restart policy, init containers,
//! probes, exit codes), each container recording its runs under the shared runs directory.

use std::path::Path;

use super::{find, terminated_code};

use peapod::api::PodGroup;

/// A small deterministic generator (splitmix64), so a printed seed replays a run.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// The restart policy mix of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An init container, then two containers that sleep and exit with a known code.
    Never,
    /// One container that fails its first run and succeeds its second.
    OnFailure,
    /// One container that runs for good behind a readiness probe.
    Always,
}

/// One pod of the workload.
#[derive(Debug, Clone)]
pub struct PodPlan {
    /// Pod name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Seconds each app container sleeps before it exits (Never) or fails (OnFailure).
    pub sleep: u64,
    /// Exit code of the Never pod's first app container (the second exits 0).
    pub exit_code: i32,
}

fn script(runs: &str, pod: &str, c: &str, body: &str) -> String {
    format!(
        "mkdir {runs}/{pod}.{c}.live || echo dup >> {runs}/{pod}.{c}.dups; echo run >> {runs}/{pod}.{c}.runs; {body}"
    )
}

fn container(runs: &str, pod: &str, c: &str, body: &str, extra: &str) -> String {
    let script = script(runs, pod, c, body);
    format!(
        "  - name: {c}\n    image: {}\n    command: [sh, -c, '{script}']\n    volumeMounts: [{{name: runs, mountPath: {runs}}}]\n{extra}",
        super::super::BUSYBOX
    )
}

impl PodPlan {
    /// A random pod named `name`.
    pub fn random(name: &str, rng: &mut Rng) -> PodPlan {
        let kind = match rng.between(0, 5) {
            0..=3 => Kind::Never,
            4 => Kind::OnFailure,
            _ => Kind::Always,
        };
        PodPlan {
            name: name.to_string(),
            kind,
            sleep: rng.between(1, 6),
            exit_code: [0, 3, 7][rng.between(0, 2) as usize],
        }
    }

    /// The containers (init first) and what each must end with: `Some(code)` for a terminated one.
    pub fn containers(&self) -> Vec<(&'static str, Option<i32>)> {
        match self.kind {
            Kind::Never => vec![("init", Some(0)), ("a", Some(self.exit_code)), ("b", Some(0))],
            Kind::OnFailure => vec![("app", Some(0))],
            Kind::Always => vec![("app", None)],
        }
    }

    /// The manifest; `runs` is the host directory the containers record their runs in.
    pub fn yaml(&self, runs: &Path) -> String {
        let r = "/runs";
        let n = &self.name;
        let s = self.sleep;
        let rm = format!("rmdir {r}/{n}.");
        let (policy, body) = match self.kind {
            Kind::Never => (
                "Never",
                format!(
                    "  initContainers:\n{}  containers:\n{}{}",
                    container(r, n, "init", &format!("{rm}init.live"), ""),
                    container(r, n, "a", &format!("sleep {s}; {rm}a.live; exit {}", self.exit_code), ""),
                    container(r, n, "b", &format!("sleep 1; {rm}b.live"), ""),
                ),
            ),
            Kind::OnFailure => (
                "OnFailure",
                format!(
                    "  containers:\n{}",
                    container(
                        r,
                        n,
                        "app",
                        &format!("sleep {s}; {rm}app.live; if [ -e {r}/{n}.failed ]; then exit 0; fi; touch {r}/{n}.failed; exit 1"),
                        ""
                    )
                ),
            ),
            Kind::Always => (
                "Always",
                format!(
                    "  containers:\n{}",
                    container(
                        r,
                        n,
                        "app",
                        &format!("trap \"{rm}app.live; exit 143\" TERM; sleep 3600 & wait"),
                        "    readinessProbe: {exec: {command: [\"true\"]}, periodSeconds: 1}\n"
                    )
                ),
            ),
        };
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {n}\nspec:\n  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 2\n  volumes:\n  - name: runs\n    hostPath: {{path: {}, type: DirectoryOrCreate}}\n{body}",
            runs.display()
        )
    }

    /// Whether `pod`'s status is this plan's final state.
    pub fn settled(&self, pod: &PodGroup) -> bool {
        self.containers().iter().all(|(c, want)| {
            let Some(s) = find(pod, c) else { return false };
            match want {
                Some(code) => terminated_code(s) == Some(*code),
                None => s.ready,
            }
        })
    }
}
