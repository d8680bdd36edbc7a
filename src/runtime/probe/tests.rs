//! Pure parts of the probe handlers: port resolution, static command expansion, Go formatting, hook
//! messages.

use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, TCPSocketAction};

use super::hook::{go_handler, go_list};
use super::*;

fn container() -> Container {
    Container {
        name: "c".to_string(),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: 8080,
            ..Default::default()
        }]),
        env: Some(vec![
            EnvVar {
                name: "A".to_string(),
                value: Some("x".to_string()),
                ..Default::default()
            },
            EnvVar {
                name: "FROM".to_string(),
                value: None,
                value_from: Some(Default::default()),
            },
        ]),
        ..Default::default()
    }
}

#[test]
fn ports_resolve_by_number_and_by_name() {
    let c = container();
    assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
    assert_eq!(resolve_port(&IntOrString::String("http".into()), &c), Ok(8080));
    assert_eq!(
        resolve_port(&IntOrString::String("admin".into()), &c).map_err(|e| e.to_string()),
        Err("port \"admin\" not found".to_string())
    );
    assert_eq!(
        resolve_port(&IntOrString::String("8080".into()), &c).map_err(|e| e.to_string()),
        Err("port \"8080\" not found".to_string()),
        "the kubelet no longer parses numeric names"
    );
    assert_eq!(
        resolve_port(&IntOrString::Int(0), &c).map_err(|e| e.to_string()),
        Err("invalid port number: 0".to_string())
    );
    assert_eq!(
        resolve_port(&IntOrString::Int(70000), &c).map_err(|e| e.to_string()),
        Err("invalid port number: 70000".to_string())
    );
}

#[test]
fn port_errors_keep_the_kubelet_wording() {
    let cases = [
        (
            PortError::NotFound { name: "admin".into() },
            "port \"admin\" not found",
        ),
        (PortError::Invalid { number: -1 }, "invalid port number: -1"),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
}

#[test]
fn exec_probe_commands_expand_only_static_env() {
    let cmd = ["echo", "$(A)", "$(FROM)", "$(NONE)", "$$(A)"].map(String::from);
    assert_eq!(
        static_command(&cmd, &container()),
        ["echo", "x", "", "$(NONE)", "$(A)"]
    );
}

#[test]
fn hosts_default_to_pod_ip_then_loopback() {
    assert_eq!(default_host(Some("h"), Some("10.0.0.1")), "h");
    assert_eq!(default_host(Some(""), Some("10.0.0.1")), "10.0.0.1");
    assert_eq!(default_host(None, None), "127.0.0.1");
}

#[test]
fn go_formatting() {
    assert_eq!(go_quote("a \"b\"\n\t\\"), r#""a \"b\"\n\t\\""#);
    assert_eq!(go_quote("\u{1}"), r#""\x01""#);
    assert_eq!(go_duration(Duration::from_secs(1)), "1s");
    assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    assert_eq!(join_host_port("::1", 80), "[::1]:80");
    assert_eq!(
        go_list(&["sh".into(), "-c".into(), "exit 1".into()]),
        "[sh -c exit 1]"
    );
    assert_eq!(
        exec::timed_out(&["sleep".into(), "10".into()]),
        "command \"sleep 10\" timed out"
    );
}

#[test]
fn tcp_socket_hooks_are_invalid_handlers() {
    let tcp = TCPSocketAction {
        port: IntOrString::Int(8080),
        host: None,
    };
    assert_eq!(
        go_handler(Some(&tcp)),
        "&LifecycleHandler{Exec:nil,HTTPGet:nil,TCPSocket:&TCPSocketAction{Port:{0 8080 },Host:,},Sleep:nil,}"
    );
    let named = TCPSocketAction {
        port: IntOrString::String("http".into()),
        host: Some("h".into()),
    };
    assert!(go_handler(Some(&named)).contains("TCPSocket:&TCPSocketAction{Port:{1 0 http},Host:h,}"));
}

#[test]
fn runc_errors_are_reduced_to_their_message() {
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::ExitStatus::from_raw(1 << 8);
    let line = "time=\"2026-01-01T00:00:00Z\" level=error msg=\"container does not exist\"\n";
    assert_eq!(exec::runtime_message(line, status), "container does not exist");
    let quoted = "level=error msg=\"exec failed: \\\"foo\\\": not found\"";
    assert_eq!(
        exec::runtime_message(quoted, status),
        "exec failed: \"foo\": not found"
    );
    assert_eq!(exec::runtime_message("plain failure\n", status), "plain failure");
}

#[test]
fn probe_and_hook_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cfg = RuntimeConfig::new("/s".into(), "/r".into(), "runc".into(), "peapod".into());
    let c = container();
    let t = Target {
        cfg: &cfg,
        container_id: "id",
        container: &c,
        pod: "p_ns(u)",
        netns: None,
        pod_ip: None,
    };
    let p = Probe::default();
    assert_send(&probe(&t, &p));
    let h = LifecycleHandler::default();
    assert_send(&hook(&t, &h, None));
}

#[test]
fn hook_errors_keep_the_kubelet_wording() {
    let pod = || "web_default(1234)".to_string();
    let container = || "c".to_string();
    let cases = [
        (
            HookError::Exec {
                command: vec!["sh".into(), "-c".into(), "exit 1".into()],
                container: container(),
                pod: pod(),
                error: "command 'sh -c exit 1' exited with 1: ".into(),
                output: "hi\n".into(),
            },
            "Exec lifecycle hook ([sh -c exit 1]) for Container \"c\" in Pod \"web_default(1234)\" failed - error: command 'sh -c exit 1' exited with 1: , message: \"hi\\n\"",
        ),
        (
            HookError::Http {
                path: "/x".into(),
                container: container(),
                pod: pod(),
                error: "context deadline exceeded".into(),
            },
            "HTTP lifecycle hook (/x) for Container \"c\" in Pod \"web_default(1234)\" failed - error: context deadline exceeded",
        ),
        (
            HookError::SleepCut {
                seconds: 30,
                container: container(),
                pod: pod(),
            },
            "Sleep lifecycle hook (30) for Container \"c\" in Pod \"web_default(1234)\" failed - error: container terminated before sleep hook finished",
        ),
        (
            HookError::InvalidHandler {
                handler: "&LifecycleHandler{}".into(),
            },
            "Cannot run handler: invalid handler: &LifecycleHandler{}",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
}
