//! Root integration tests of what peapod refuses before or while starting a pod (S16 without a cluster):
//! the Pod Security Standards at the default (baseline) and at restricted, Localhost seccomp profiles that
//! fail closed, and hostPath volumes that would reach peapod's own state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod security_probe;

use serde_json::json;

use common::{st, Node};
use security_probe::{container, facts, finished_log, pod, reason_and_message, start, PROBE, T};

fn refused(node: &Node, name: &str) -> (String, String) {
    node.wait_pod(name, "refused", T, |p| st::phase(p) == "Failed");
    reason_and_message(node, name)
}

#[test]
fn baseline_by_default_refuses_what_pod_security_admission_refuses() {
    let mut node = Node::new();
    let plain = || container("c", "true", json!({}));
    let cases = [
        (
            "hostnet",
            json!({"hostNetwork": true, "containers": [plain()]}),
            "host namespaces (hostNetwork=true)",
        ),
        (
            "privileged",
            json!({"containers": [container("c", "true", json!({"securityContext": {"privileged": true}}))]}),
            r#"privileged (container "c" must not set securityContext.privileged=true)"#,
        ),
        (
            "hostpath",
            json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}], "containers": [plain()]}),
            r#"hostPath volumes (volume "root")"#,
        ),
        (
            "netadmin",
            json!({"containers": [container("c", "true", json!({"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}))]}),
            r#"non-default capabilities (container "c" must not include "NET_ADMIN" in securityContext.capabilities.add)"#,
        ),
        (
            "unconfined",
            json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [plain()]}),
            r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ),
    ];
    for (name, spec, _) in &cases {
        node.apply(&format!("{name}.yaml"), &pod(name, spec.clone()));
    }
    let ok = json!({"restartPolicy": "Never", "containers": [container("c", "echo fine", json!({}))]});
    node.apply("ok.yaml", &pod("ok", ok));
    start(&mut node, "baseline", &[]);
    for (name, _, detail) in &cases {
        let (reason, message) = refused(&node, name);
        assert_eq!(reason, "PodSecurityViolation", "{name}");
        assert_eq!(
            message,
            format!(r#"Pod was rejected: violates PodSecurity "baseline:latest": {detail}"#),
            "{name}"
        );
    }
    assert_eq!(finished_log(&node, "ok", "c").trim(), "fine");
    // The Warning Event names the violation too.
    let log = node.supervisor_log();
    assert!(
        log.contains("PodSecurityViolation") && log.contains("violates PodSecurity"),
        "{log}"
    );
    // Nothing of a refused pod ran: no pod directory, no cgroup.
    let uid = node.get("hostnet").unwrap().metadata.uid.unwrap();
    assert!(!node.state.join("pods").join(uid).exists());
    node.finish(T);
}

#[test]
fn restricted_takes_only_hardened_pods() {
    let mut node = Node::new();
    let hardened = json!({"securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
        "runAsUser": 1000, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}});
    let good = json!({"restartPolicy": "Never", "containers": [container("c", PROBE, hardened)]});
    node.apply("good.yaml", &pod("good", good));
    let lax = json!({"containers": [container("c", "true", json!({}))]});
    node.apply("lax.yaml", &pod("lax", lax));
    start(&mut node, "restricted", &[]);
    let f = facts(&finished_log(&node, "good", "c"));
    assert_eq!(
        (
            f["CapBnd"].as_str(),
            f["NoNewPrivs"].as_str(),
            f["Seccomp"].as_str()
        ),
        ("0000000000000000", "1", "2")
    );
    assert!(f["Id"].starts_with("uid=1000"), "{f:?}");
    let (reason, message) = refused(&node, "lax");
    assert_eq!(reason, "PodSecurityViolation");
    assert_eq!(
        message,
        "Pod was rejected: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
         (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities \
         (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or \
         container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must \
         set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    node.finish(T);
}

#[test]
fn localhost_seccomp_profiles_apply_and_fail_closed() {
    let mut node = Node::new();
    let profiles = node.dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("no-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    std::fs::write(profiles.join("empty.json"), "").unwrap();
    let with = |name: &str, profile: &str| {
        let sc = json!({"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": profile}}});
        let spec = json!({"restartPolicy": "Never", "containers": [container("c", "mkdir /tmp/d 2>/dev/null && echo made || echo refused", sc)]});
        pod(name, spec)
    };
    node.apply("local.yaml", &with("local", "no-mkdir.json"));
    node.apply("empty.yaml", &with("empty", "empty.json"));
    node.apply("missing.yaml", &with("missing", "missing.json"));
    let root = profiles.to_str().unwrap().to_string();
    start(&mut node, "baseline", &["--seccomp-profile-root", &root]);
    assert_eq!(finished_log(&node, "local", "c").trim(), "refused");
    for (name, why) in [("empty", "profile is empty"), ("missing", "No such file")] {
        let p = node.wait_pod(name, "CreateContainerError", T, |p| {
            st::waiting_reason(p, "c").as_deref() == Some("CreateContainerError")
        });
        let waiting = st::container(&p, "c").state.clone().unwrap().waiting.unwrap();
        let message = waiting.message.unwrap();
        assert!(
            message.starts_with("failed to generate seccomp spec opts: cannot load seccomp profile")
                && message.contains(why),
            "{name}: {message}"
        );
    }
    node.finish(T);
}

#[test]
fn host_paths_never_reach_peapods_own_state() {
    let mut node = Node::new();
    let link = node.dir.path().join("innocent-looking");
    std::os::unix::fs::symlink(&node.state, &link).unwrap();
    let volume = |path: &std::path::Path| {
        json!({"volumes": [{"name": "v", "hostPath": {"path": path}}],
               "containers": [container("c", "ls /v", json!({"volumeMounts": [{"name": "v", "mountPath": "/v"}]}))]})
    };
    node.apply("state.yaml", &pod("state", volume(&node.state.join("pods"))));
    node.apply("run.yaml", &pod("run", volume(&node.run)));
    node.apply("link.yaml", &pod("link", volume(&link)));
    start(&mut node, "privileged", &[]);
    for name in ["state", "run", "link"] {
        let what = format!("pod {name} refused its hostPath");
        common::wait_for(&what, T, || {
            let log = node.supervisor_log();
            log.lines()
                .any(|l| {
                    l.contains(&format!("default/{name}"))
                        && l.contains("FailedMount")
                        && l.contains("containers may not mount peapod's own state")
                })
                .then_some(())
        });
        let p = node.get(name).unwrap();
        assert!(st::try_container(&p, "c")
            .and_then(|c| c.state.as_ref()?.running.as_ref())
            .is_none());
    }
    node.finish(T);
}
