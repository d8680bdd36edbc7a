//! Lifecycle hooks, probes and container restart policies: where they may be set and the values they
//! may take, with the API server's messages and paths.

use serde_json::{json, Value};

use super::{c, check};

const PORT_NAME_CHARS: &str = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";
const HEADER_MSG: &str = "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')";

fn app(extra: Value) -> Value {
    json!({"containers": [c(extra)]})
}

fn sidecar(extra: Value) -> Value {
    let mut s = c(json!({"name": "proxy", "restartPolicy": "Always"}));
    if let (Some(s), Value::Object(extra)) = (s.as_object_mut(), extra) {
        s.extend(extra);
    }
    json!({"initContainers": [s], "containers": [c(json!({}))]})
}

#[test]
fn hooks_and_probes_rules() {
    let p = "spec.containers[0]";
    let cases: Vec<(Value, Vec<String>)> = vec![
        (
            app(json!({"livenessProbe": {}, "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}})),
            vec![
                format!("{p}.livenessProbe: Required value: must specify a handler type"),
                format!("{p}.readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"),
            ],
        ),
        (
            app(json!({"lifecycle": {"postStart": {}, "preStop": {"exec": {}, "sleep": {"seconds": 1}}}})),
            vec![
                format!("{p}.lifecycle.postStart: Required value: must specify a handler type"),
                format!("{p}.lifecycle.preStop.exec.command: Required value"),
                format!("{p}.lifecycle.preStop.sleep: Forbidden: may not specify more than 1 handler type"),
            ],
        ),
        (
            app(json!({
                "livenessProbe": {"httpGet": {"port": 0, "path": "", "scheme": "FTP", "httpHeaders": [{"name": "X Bad", "value": "1"}, {"name": "Ok-1", "value": ""}]}},
                "readinessProbe": {"tcpSocket": {"port": "HTTP"}},
                "startupProbe": {"grpc": {"port": 70000}}
            })),
            vec![
                format!("{p}.livenessProbe.httpGet.port: Invalid value: 0: {PORT_RANGE}"),
                format!(r#"{p}.livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS""#),
                format!(r#"{p}.livenessProbe.httpGet.httpHeaders: Invalid value: "X Bad": {HEADER_MSG}"#),
                format!(r#"{p}.readinessProbe.tcpSocket.port: Invalid value: "HTTP": {PORT_NAME_CHARS}"#),
                format!(r#"{p}.readinessProbe.tcpSocket.port: Invalid value: "HTTP": must contain at least one letter (a-z)"#),
                format!("{p}.startupProbe.grpc.port: Invalid value: 70000: {PORT_RANGE}"),
            ],
        ),
        (
            app(json!({
                "livenessProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": -1, "timeoutSeconds": -2,
                                  "successThreshold": 2, "terminationGracePeriodSeconds": 0},
                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": -1, "failureThreshold": -1,
                                   "successThreshold": 3, "terminationGracePeriodSeconds": 5},
                "startupProbe": {"exec": {"command": ["true"]}, "successThreshold": -1}
            })),
            vec![
                format!("{p}.livenessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0"),
                format!("{p}.livenessProbe.timeoutSeconds: Invalid value: -2: must be greater than or equal to 0"),
                format!("{p}.livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"),
                format!("{p}.livenessProbe.successThreshold: Invalid value: 2: must be 1"),
                format!("{p}.readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"),
                format!("{p}.readinessProbe.failureThreshold: Invalid value: -1: must be greater than or equal to 0"),
                format!("{p}.readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes"),
                format!("{p}.startupProbe.successThreshold: Invalid value: -1: must be greater than or equal to 0"),
                format!("{p}.startupProbe.successThreshold: Invalid value: -1: must be 1"),
            ],
        ),
        (
            // Zero is a valid sleep (PodLifecycleSleepActionAllowZero, GA in 1.34); the pod's grace
            // period bounds it.
            json!({"terminationGracePeriodSeconds": 5, "containers": [
                c(json!({"lifecycle": {"postStart": {"sleep": {"seconds": 0}}, "preStop": {"sleep": {"seconds": 6}}}})),
                c(json!({"name": "b", "lifecycle": {"preStop": {"sleep": {"seconds": -1}}}}))]}),
            vec![
                format!("{p}.lifecycle.preStop.sleep: Invalid value: 6: must be non-negative and less than terminationGracePeriodSeconds (5)"),
                "spec.containers[1].lifecycle.preStop.sleep: Invalid value: -1: must be non-negative and less than terminationGracePeriodSeconds (5)".into(),
            ],
        ),
        (
            sidecar(json!({"livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
                           "lifecycle": {"preStop": {"httpGet": {"port": 99999}}}})),
            vec![
                "spec.initContainers[0].lifecycle.preStop.httpGet.port: Invalid value: 99999: must be between 1 and 65535, inclusive".into(),
                "spec.initContainers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1".into(),
            ],
        ),
    ];
    for (spec, want) in cases {
        let shown = spec.to_string();
        assert_eq!(check(spec), want, "{shown}");
    }
}

#[test]
fn container_restart_policy_rules() {
    let probe = json!({"exec": {"command": ["true"]}});
    let cases: Vec<(Value, Vec<String>)> = vec![
        // A sidecar takes hooks and probes; a regular init container does not.
        (
            json!({"initContainers": [
                    c(json!({"name": "proxy", "restartPolicy": "Always", "readinessProbe": probe, "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}})),
                    c(json!({"name": "init", "startupProbe": probe, "readinessProbe": probe}))],
                   "containers": [c(json!({}))]}),
            vec![
                "spec.initContainers[1].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always".into(),
                "spec.initContainers[1].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always".into(),
            ],
        ),
        (
            json!({"initContainers": [c(json!({"name": "init", "restartPolicy": "OnFailure", "livenessProbe": probe}))],
                   "containers": [c(json!({"restartPolicy": "Always"}))]}),
            vec![
                "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers".into(),
                r#"spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always""#.into(),
                "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always".into(),
            ],
        ),
    ];
    for (spec, want) in cases {
        let shown = spec.to_string();
        assert_eq!(check(spec), want, "{shown}");
    }
}
