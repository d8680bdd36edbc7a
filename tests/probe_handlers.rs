//! Root tests of the probe and lifecycle-hook handlers (`peapod::runtime::probe`): network actions against
//! small servers inside a throw-away network namespace (HTTP with redirects, errors and a slow endpoint,
//! TCP, a gRPC health server over HTTP/2), and exec actions in a real container started by the node
//! harness, with the kubelet's outcomes and wording.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "probe_handlers/servers.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};
use peapod::runtime::layout::RuntimeConfig;
use peapod::runtime::probe::{probe, Outcome, Target};
use tokio::net::TcpListener;

use common::{c, pod, st, wait_for, Node};
use servers::{listen, serve_grpc, serve_http, serve_https, NetNs};

const POD: &str = "web_default(1234)";

fn spec(yaml: &str) -> Probe {
    serde_saphyr::from_str(yaml).unwrap()
}

/// Runs a hook; `Err` is its message as users see it (the FailedPostStartHook text).
async fn hook(t: &Target<'_>, h: &LifecycleHandler, limit: Option<Duration>) -> Result<(), String> {
    peapod::runtime::probe::hook(t, h, limit)
        .await
        .map_err(|e| e.to_string())
}

fn handler(yaml: &str) -> LifecycleHandler {
    serde_saphyr::from_str(yaml).unwrap()
}

fn container(http_port: u16) -> Container {
    serde_saphyr::from_str(&format!(
        "name: c\nports:\n- name: web\n  containerPort: {http_port}\n"
    ))
    .unwrap()
}

fn cfg(dir: &Path) -> RuntimeConfig {
    RuntimeConfig::new(
        dir.join("state"),
        dir.join("run"),
        PathBuf::from("runc"),
        common::peapod_bin(),
    )
}

/// A port with nothing listening inside `netns`.
fn closed_port(netns: &Path) -> u16 {
    let (l, port) = listen(netns);
    drop(l);
    port
}

#[test]
fn network_probes_and_hooks_run_inside_the_pod_network_namespace() {
    let ns = NetNs::new();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let netns = ns.path();
        let (http, hp) = listen(&netns);
        serve_http(http);
        let (tls, sp) = listen(&netns);
        serve_https(tls, dir.path());
        let (grpc, gp) = listen(&netns);
        serve_grpc(grpc);
        let closed = closed_port(&netns);
        let host_only = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host_port = host_only.local_addr().unwrap().port();
        let cfg = cfg(dir.path());
        let c = container(hp);
        let t = Target {
            cfg: &cfg,
            container_id: "none",
            container: &c,
            pod: POD,
            netns: Some(&netns),
            pod_ip: Some("127.0.0.1"),
        };
        http_get_probes(&t, hp, closed).await;
        https_and_tcp_probes(&t, [hp, sp, closed, host_port]).await;
        grpc_probes(&t, gp, closed).await;
        network_hooks(&t, hp, closed).await;
        drop(host_only);
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(ns);
}

/// httpGet probes: named ports, status codes, redirects (local, elsewhere, loops), timeouts, headers and a
/// closed port, with the kubelet's outcomes.
async fn http_get_probes(t: &Target<'_>, hp: u16, closed: u16) {
    let get = |path: &str, port: String| {
        spec(&format!(
            "httpGet: {{path: {path}, port: {port}, httpHeaders: [{{name: X-Port, value: '{hp}'}}]}}"
        ))
    };

    assert_eq!(
        probe(t, &get("/ok", "web".into())).await,
        Outcome::Success,
        "named port"
    );
    assert_eq!(
        probe(t, &get("/fail", hp.to_string())).await,
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(probe(t, &get("/local", hp.to_string())).await, Outcome::Success);
    assert_eq!(
        probe(t, &get("/other", hp.to_string())).await,
        Outcome::Warning("Probe terminated redirects, Response body: elsewhere".into())
    );
    assert_eq!(
        probe(t, &get("/loop", hp.to_string())).await,
        Outcome::Failure("Get \"/loop\": stopped after 10 redirects".into())
    );
    assert_eq!(
        probe(t, &get("/slow", hp.to_string())).await,
        Outcome::Failure(format!("Get \"http://127.0.0.1:{hp}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
    );
    assert_eq!(
        probe(t, &get("/ok", "admin".into())).await,
        Outcome::Unknown("port \"admin\" not found".into())
    );
    let headers = spec(&format!(
        "httpGet: {{path: /headers, port: {hp}, httpHeaders: [{{name: host, value: example.test}}, {{name: x-custom, value: 'yes'}}]}}"
    ));
    assert_eq!(
        probe(t, &headers).await,
        Outcome::Success,
        "kubelet headers and Host override"
    );
    assert_eq!(
        probe(t, &get("/ok", closed.to_string())).await,
        Outcome::Failure(format!(
            "Get \"http://127.0.0.1:{closed}/ok\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
        ))
    );
}

/// HTTPS probes (a plain-HTTP answer, an unverified certificate) and tcpSocket probes, which dial from the
/// pod's network namespace unless the pod is on the host network. `ports`: HTTP, HTTPS, closed, host-only.
async fn https_and_tcp_probes(t: &Target<'_>, [hp, sp, closed, host_port]: [u16; 4]) {
    let https = spec(&format!("httpGet: {{path: /ok, port: {hp}, scheme: HTTPS}}"));
    assert_eq!(
        probe(t, &https).await,
        Outcome::Failure(format!(
            "Get \"https://127.0.0.1:{hp}/ok\": http: server gave HTTP response to HTTPS client"
        ))
    );
    let tls_ok = spec(&format!("httpGet: {{path: /ok, port: {sp}, scheme: HTTPS}}"));
    assert_eq!(
        probe(t, &tls_ok).await,
        Outcome::Success,
        "HTTPS with an unverified certificate"
    );
    let tls_fail = spec(&format!("httpGet: {{path: /fail, port: {sp}, scheme: HTTPS}}"));
    assert_eq!(
        probe(t, &tls_fail).await,
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    let tcp = |port: u16| spec(&format!("tcpSocket: {{port: {port}}}"));
    assert_eq!(probe(t, &tcp(hp)).await, Outcome::Success);
    assert_eq!(
        probe(t, &tcp(closed)).await,
        Outcome::Failure(format!(
            "dial tcp 127.0.0.1:{closed}: connect: connection refused"
        ))
    );
    assert_eq!(
        probe(t, &tcp(host_port)).await,
        Outcome::Failure(format!(
            "dial tcp 127.0.0.1:{host_port}: connect: connection refused"
        )),
        "a server on the host's loopback is not reachable from the pod network namespace"
    );
    let host_net = Target { netns: None, ..*t };
    assert_eq!(
        probe(&host_net, &tcp(host_port)).await,
        Outcome::Success,
        "host network dials from the host"
    );
}

/// gRPC health probes: serving, not serving, no health service, nothing listening.
async fn grpc_probes(t: &Target<'_>, gp: u16, closed: u16) {
    let grpc = |service: &str, port: u16| spec(&format!("grpc: {{port: {port}, service: '{service}'}}"));
    assert_eq!(probe(t, &grpc("", gp)).await, Outcome::Success);
    assert_eq!(
        probe(t, &grpc("down", gp)).await,
        Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
    assert_eq!(
        probe(t, &grpc("unimpl", gp)).await,
        Outcome::Failure("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health".into())
    );
    assert_eq!(
        probe(t, &grpc("", closed)).await,
        Outcome::Failure(format!(
            "timeout: failed to connect service \"127.0.0.1:{closed}\" within 1s: context deadline exceeded"
        ))
    );
}

/// HTTP and sleep lifecycle hooks, and a tcpSocket hook (which the kubelet cannot run).
async fn network_hooks(t: &Target<'_>, hp: u16, closed: u16) {
    // Hooks: an HTTP answer of any status is success, as in the kubelet; no answer is an error.
    let http_hook = |path: &str, port: u16| handler(&format!("httpGet: {{path: {path}, port: {port}}}"));
    assert_eq!(hook(t, &http_hook("/fail", hp), None).await, Ok(()));
    let https_hook = handler(&format!("httpGet: {{path: /ok, port: {hp}, scheme: HTTPS}}"));
    assert_eq!(
        hook(t, &https_hook, None).await,
        Ok(()),
        "HTTPS hook answered in HTTP falls back to HTTP"
    );
    assert_eq!(
        hook(t, &http_hook("/x", closed), None).await,
        Err(format!("HTTP lifecycle hook (/x) for Container \"c\" in Pod \"{POD}\" failed - error: Get \"http://127.0.0.1:{closed}/x\": dial tcp 127.0.0.1:{closed}: connect: connection refused"))
    );
    assert_eq!(
        hook(t, &http_hook("/slow", hp), Some(Duration::from_millis(300))).await,
        Err(format!("HTTP lifecycle hook (/slow) for Container \"c\" in Pod \"{POD}\" failed - error: Get \"http://127.0.0.1:{hp}/slow\": context deadline exceeded"))
    );
    assert_eq!(hook(t, &handler("sleep: {seconds: 0}"), None).await, Ok(()));
    assert_eq!(
        hook(t, &handler("sleep: {seconds: 30}"), Some(Duration::from_millis(200))).await,
        Err(format!("Sleep lifecycle hook (30) for Container \"c\" in Pod \"{POD}\" failed - error: container terminated before sleep hook finished"))
    );
    assert_eq!(
        hook(t, &handler("tcpSocket: {port: 8080}"), None).await,
        Err("Cannot run handler: invalid handler: &LifecycleHandler{Exec:nil,HTTPGet:nil,TCPSocket:&TCPSocketAction{Port:{0 8080 },Host:,},Sleep:nil,}".into())
    );
}

/// Live processes (not zombies) whose command line is exactly `argv`.
fn live_processes(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn exec_probes_and_hooks_run_in_the_container() {
    let mut node = Node::new();
    node.apply(
        "exec.yaml",
        &pod("ex")
            .grace(1)
            .container(c("c").command(["sleep", "3600"]).env("WORD", "hello"))
            .manifest(),
    );
    node.start();
    let p = node.wait_pod("ex", "running", Duration::from_secs(60), |p| st::running(p, "c"));
    let id = st::container(&p, "c").container_id.clone().unwrap();
    let id = id.strip_prefix("peapod://").unwrap().to_string();
    let cfg = common::host::runtime_config(&node);
    let c: Container = serde_saphyr::from_str("name: c\nenv: [{name: WORD, value: hello}]\n").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Target {
        cfg: &cfg,
        container_id: &id,
        container: &c,
        pod: POD,
        netns: None,
        pod_ip: None,
    };
    let exec =
        |cmd: &str, timeout: u32| spec(&format!("exec: {{command: {cmd}}}\ntimeoutSeconds: {timeout}"));
    rt.block_on(async {
        assert_eq!(probe(&t, &exec("[sh, -c, 'test $(WORD) = hello']", 5)).await, Outcome::Success);
        assert_eq!(
            probe(&t, &exec("[sh, -c, 'echo out; echo err >&2; exit 3']", 5)).await,
            Outcome::Failure("out\nerr\n".into()),
            "stdout then stderr"
        );
        assert_eq!(
            probe(&t, &exec("[sleep, '37']", 1)).await,
            Outcome::Failure("command \"sleep 37\" timed out".into())
        );
        let missing = probe(&t, &exec("[no-such-binary]", 5)).await;
        assert!(matches!(missing, Outcome::Unknown(_)), "{missing:?}");
        let gone = Target { container_id: "no-such-container", ..t };
        let gone = probe(&gone, &exec("[true]", 5)).await;
        assert!(matches!(&gone, Outcome::Unknown(m) if m.contains("does not exist")), "{gone:?}");

        let exec_hook = |cmd: &str| handler(&format!("exec: {{command: {cmd}}}"));
        assert_eq!(hook(&t, &exec_hook("[sh, -c, 'exit 0']"), None).await, Ok(()));
        assert_eq!(
            hook(&t, &exec_hook("[sh, -c, 'echo hi; exit 1']"), None).await,
            Err(format!("Exec lifecycle hook ([sh -c echo hi; exit 1]) for Container \"c\" in Pod \"{POD}\" failed - error: command 'sh -c echo hi; exit 1' exited with 1: , message: \"hi\\n\""))
        );
        let limited = hook(&t, &exec_hook("[sleep, '38']"), Some(Duration::from_secs(1))).await;
        assert!(limited.as_ref().is_err_and(|e| e.contains("context deadline exceeded")), "{limited:?}");
        let dropped = tokio::time::timeout(Duration::from_millis(500), hook(&t, &exec_hook("[sleep, '39']"), None)).await;
        assert!(dropped.is_err(), "a cancelled hook call kills its process");
    });
    wait_for(
        "timed-out exec processes to be gone",
        Duration::from_secs(10),
        || {
            (live_processes(&["sleep", "37"]).is_empty()
                && live_processes(&["sleep", "38"]).is_empty()
                && live_processes(&["sleep", "39"]).is_empty())
            .then_some(())
        },
    );
    let leftovers: Vec<_> = std::fs::read_dir(node.run.join("exec"))
        .unwrap()
        .flatten()
        .collect();
    assert!(leftovers.is_empty(), "pid files left: {leftovers:?}");
    node.delete("exec.yaml");
    wait_for("pod ex gone", Duration::from_secs(60), || {
        node.get("ex").is_none().then_some(())
    });
    assert!(node.stop(Duration::from_secs(60)).success());
    node.assert_clean();
}
