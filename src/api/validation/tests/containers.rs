//! Container rules: names, images, ports, mounts, policies and resources, with the API server's messages
//! and paths.

use serde_json::{json, Value};

use super::{c, check, LABEL_MSG};

/// Pods with container errors, and the errors validation lists for them.
fn container_cases() -> Vec<(Value, Vec<String>)> {
    vec![
        (
            json!({"containers": [c(json!({})), c(json!({"image": ""}))], "initContainers": [c(json!({"image": " x"}))]}),
            vec![
                "spec.containers[1].image: Required value".into(),
                r#"spec.containers[1].name: Duplicate value: "web""#.into(),
                r#"spec.initContainers[0].image: Invalid value: " x": must not have leading or trailing whitespace"#.into(),
                r#"spec.initContainers[0].name: Duplicate value: "web""#.into(),
            ],
        ),
        (json!({"containers": []}), vec!["spec.containers: Required value".into()]),
        (json!({"containers": [c(json!({"name": "A_b"}))]}), vec![format!(r#"spec.containers[0].name: Invalid value: "A_b": {LABEL_MSG}"#)]),
        (
            json!({"containers": [c(json!({"ports": [{"containerPort": 0}, {"containerPort": 70000, "protocol": "ICMP", "name": "HTTP"},
                                                       {"containerPort": 1, "name": "a"}, {"containerPort": 2, "name": "a"}]}))]}),
            vec![
                "spec.containers[0].ports[0].containerPort: Required value".into(),
                r#"spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#.into(),
                r#"spec.containers[0].ports[1].name: Invalid value: "HTTP": must contain at least one letter (a-z)"#.into(),
                "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
                r#"spec.containers[0].ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#.into(),
                r#"spec.containers[0].ports[3].name: Duplicate value: "a""#.into(),
            ],
        ),
        (
            json!({"hostNetwork": true, "containers": [c(json!({"ports": [{"containerPort": 80, "hostPort": 81}]})),
                                                       c(json!({"name": "b", "ports": [{"containerPort": 81}]}))]}),
            vec![
                "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true".into(),
                r#"spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//81""#.into(),
            ],
        ),
        (
            json!({"volumes": [{"name": "v"}], "containers": [c(json!({"volumeMounts": [
                {"name": "nope", "mountPath": "/a"}, {"name": "v", "mountPath": "rel"}, {"name": "v", "mountPath": "/a"},
                {"name": "v", "mountPath": "/b", "subPath": "../x"}, {"name": "v", "mountPath": "/c", "subPath": "/abs", "subPathExpr": "x"}]}))]}),
            vec![
                r#"spec.containers[0].volumeMounts[0].name: Not found: "nope""#.into(),
                r#"spec.containers[0].volumeMounts[1].mountPath: Invalid value: "rel": must be an absolute path"#.into(),
                r#"spec.containers[0].volumeMounts[2].mountPath: Invalid value: "/a": must be unique"#.into(),
                r#"spec.containers[0].volumeMounts[3].subPath: Invalid value: "../x": must not contain '..'"#.into(),
                r#"spec.containers[0].volumeMounts[4].subPath: Invalid value: "/abs": must be a relative path"#.into(),
                r#"spec.containers[0].volumeMounts[4].subPathExpr: Invalid value: "x": subPathExpr and subPath are mutually exclusive"#.into(),
            ],
        ),
        (
            json!({"containers": [c(json!({"resources": {"limits": {"cpu": "500m", "memory": "abc"}, "requests": {"cpu": "1", "ephemeral-storage": "-1"}}}))]}),
            vec![
                r#"spec.containers[0].resources.limits[memory]: Invalid value: "abc": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"#.into(),
                r#"spec.containers[0].resources.requests[ephemeral-storage]: Invalid value: "-1": must be greater than or equal to 0"#.into(),
                // Defaulted from the limit, so reported twice, as the API server does.
                r#"spec.containers[0].resources.requests[memory]: Invalid value: "abc": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"#.into(),
                r#"spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m"#.into(),
            ],
        ),
        (
            json!({"containers": [c(json!({"terminationMessagePolicy": "Sometimes", "terminationMessagePath": "log", "imagePullPolicy": "Maybe"}))]}),
            vec![
                r#"spec.containers[0].terminationMessagePolicy: Unsupported value: "Sometimes": supported values: "File", "FallbackToLogsOnError""#.into(),
                r#"spec.containers[0].terminationMessagePath: Invalid value: "log": must be an absolute path"#.into(),
                r#"spec.containers[0].imagePullPolicy: Unsupported value: "Maybe": supported values: "Always", "IfNotPresent", "Never""#.into(),
            ],
        ),
        (
            json!({"containers": [c(json!({"securityContext": {"runAsUser": -1, "privileged": true, "allowPrivilegeEscalation": false,
                                                                "capabilities": {"add": ["CAP_NET_RAW"]}}}))]}),
            vec![
                "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 4294967295, inclusive".into(),
                r#"spec.containers[0].securityContext: Invalid value: {"allowPrivilegeEscalation":false,"capabilities":{"add":["CAP_NET_RAW"]},"privileged":true,"runAsUser":-1}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true"#.into(),
                r#"spec.containers[0].securityContext.capabilities.add[0]: Invalid value: "CAP_NET_RAW": capability names are upper case without the CAP_ prefix (use "NET_RAW")"#.into(),
            ],
        ),
        (
            json!({"initContainers": [c(json!({"name": "i", "livenessProbe": {"exec": {"command": ["true"]}}, "lifecycle": {}}))], "containers": [c(json!({}))]}),
            vec![
                "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always".into(),
                "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always".into(),
            ],
        ),
    ]
}

#[test]
fn container_rules() {
    let cases = container_cases();
    for (spec, want) in cases {
        let shown = spec.to_string();
        assert_eq!(check(spec), want, "{shown}");
    }
}
