use serde_json::{json, Value};

use super::*;
use crate::api::defaults::apply_defaults;
use crate::api::PodGroup;

mod containers;
mod probes;
mod uid;

/// A defaulted PodGroup named `web` in `default` with the given spec.
fn pod(spec: Value) -> PodGroup {
    let doc = json!({"apiVersion": "peapod.dev/v1alpha1", "kind": "PodGroup", "metadata": {"name": "web"}, "spec": spec});
    let mut pg: PodGroup = match serde_json::from_value(doc) {
        Ok(pg) => pg,
        Err(e) => panic!("test spec does not decode: {e}"),
    };
    apply_defaults(&mut pg);
    pg
}

fn messages(pg: &PodGroup) -> Vec<String> {
    errors(pg).iter().map(ToString::to_string).collect()
}

fn check(spec: Value) -> Vec<String> {
    messages(&pod(spec))
}

fn c(extra: Value) -> Value {
    let mut base = json!({"name": "web", "image": "busybox:1.36"});
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn accepts_everything_peapod_implements() {
    let env = json!([{"name": "A", "value": "1"},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}]);
    let security = json!({"runAsUser": 0, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
        "privileged": false, "procMount": "Default", "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}});
    let main = c(json!({
        "args": ["-v"], "workingDir": "/work", "imagePullPolicy": "Never",
            "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}],
            "env": env,
            "resources": {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "500m", "ephemeral-storage": "1Gi"}},
            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/s", "subPath": "a/b", "readOnly": true, "mountPropagation": "None"},
                             {"name": "host", "mountPath": "/data", "subPathExpr": "$(NODE)"}],
            "terminationMessagePath": "/dev/msg", "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": security,
            "stdin": false, "tty": false,
            "lifecycle": {"postStart": {"httpGet": {"port": "http", "httpHeaders": [{"name": "X-Hook", "value": "1"}]}},
                          "preStop": {"sleep": {"seconds": 0}}},
            "livenessProbe": {"httpGet": {"port": 8080, "path": "/healthz", "scheme": "HTTPS"}, "initialDelaySeconds": 3,
                              "terminationGracePeriodSeconds": 2},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1, "successThreshold": 2},
            "startupProbe": {"grpc": {"port": 9000, "service": "health"}, "failureThreshold": 30}
    }));
    let sidecar = c(json!({
        "name": "proxy", "restartPolicy": "Always",
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
        "startupProbe": {"exec": {"command": ["true"]}},
        "readinessProbe": {"httpGet": {"port": 15021}}
    }));
    let spec = json!({
        "activeDeadlineSeconds": 600,
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
        "automountServiceAccountToken": false,
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["10.0.0.10"], "searches": ["svc.cluster.local."], "options": [{"name": "ndots", "value": "2"}]},
        "enableServiceLinks": false,
        "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["db.local"]}],
        "hostIPC": true, "hostNetwork": true, "hostPID": true, "hostUsers": true,
        "hostname": "web-0", "subdomain": "svc", "setHostnameAsFQDN": true,
        "nodeName": "node-a.example", "nodeSelector": {"disk": "ssd"},
        "os": {"name": "linux"},
        "preemptionPolicy": "Never", "priority": 10, "priorityClassName": "high",
        "readinessGates": [{"conditionType": "example.com/ready"}],
        "restartPolicy": "OnFailure",
        "schedulerName": "default-scheduler",
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": true, "supplementalGroups": [5]},
        "serviceAccountName": "robot",
        "terminationGracePeriodSeconds": 5,
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}, {"operator": "Exists"}],
        "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                    {"name": "host", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}}],
        "initContainers": [c(json!({"name": "init", "command": ["sh", "-c", "true"]})), sidecar],
        "containers": [main, c(json!({"name": "helper"}))]
    });
    assert_eq!(check(spec), Vec::<String>::new());
}

#[test]
fn rejects_what_peapod_does_not_implement() {
    let spec = json!({
        "containers": [c(json!({
            "envFrom": [{"configMapRef": {"name": "x"}}],
            "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "livenessProbe": {"grpc": {"port": 9000, "mode": "TLS"}},
            "readinessProbe": {"httpGet": {"port": 80, "protocol": "HTTP2"}},
            "lifecycle": {"preStop": {"exec": {"command": ["true"]}}, "stopSignal": "SIGUSR1"},
            "restartPolicyRules": [{"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}],
            "resources": {"limits": {"hugepages-2Mi": "2Mi", "memory": "1Gi", "ephemeral-storage": "1Gi"}, "claims": [{"name": "gpu"}]},
            "restartPolicy": "Always",
            "securityContext": {"seLinuxOptions": {"type": "spc_t"}, "procMount": "Unmasked"},
            "stdin": true,
            "volumeMounts": [{"name": "cfg", "mountPath": "/cfg", "mountPropagation": "HostToContainer", "recursiveReadOnly": "Enabled"}],
            "ports": [{"containerPort": 80, "hostPort": 8080}]
        }))],
        "imagePullSecrets": [{"name": "creds"}],
        "runtimeClassName": "kata",
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
        "affinity": {"podAffinity": {}},
        "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}, "supplementalGroupsPolicy": "Strict"},
        "schedulerName": "custom",
        "os": {"name": "windows"},
        "automountServiceAccountToken": true,
        "hostUsers": false,
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}]
    });
    let got = check(spec);
    let s = "spec.containers[0]";
    let want = [
        "spec.affinity.podAffinity: Forbidden: not supported by peapod".to_string(),
        "spec.automountServiceAccountToken: Forbidden: not supported by peapod: no service account token is mounted; set it to false or leave it unset".into(),
        "spec.hostUsers: Forbidden: not supported by peapod: user namespaces are not implemented".into(),
        r#"spec.os.name: Unsupported value: "windows": supported values: "linux""#.into(),
        "spec.runtimeClassName: Forbidden: not supported by peapod".into(),
        r#"spec.schedulerName: Unsupported value: "custom": supported values: "default-scheduler""#.into(),
        "spec.securityContext.appArmorProfile: Forbidden: not supported by peapod".into(),
        "spec.securityContext.supplementalGroupsPolicy: Forbidden: not supported by peapod".into(),
        "spec.topologySpreadConstraints: Forbidden: not supported by peapod".into(),
        "spec.volumes[0].configMap: Forbidden: not supported by peapod".into(),
        "spec.volumes[1].emptyDir.sizeLimit: Forbidden: not supported by peapod: sizeLimit is enforced only for medium Memory".into(),
        format!("{s}.resources.limits[ephemeral-storage]: Forbidden: not supported by peapod: ephemeral-storage limits are not enforced"),
        format!("{s}.env[0].valueFrom.secretKeyRef: Forbidden: not supported by peapod"),
        format!("{s}.envFrom: Forbidden: not supported by peapod"),
        format!("{s}.lifecycle.stopSignal: Forbidden: not supported by peapod"),
        format!("{s}.livenessProbe.grpc.mode: Forbidden: not supported by peapod"),
        format!("{s}.readinessProbe.httpGet.protocol: Forbidden: not supported by peapod"),
        format!("{s}.ports[0].hostPort: Forbidden: not supported by peapod: port mapping is not implemented; hostPort needs hostNetwork: true"),
        format!("{s}.resources.claims: Forbidden: not supported by peapod"),
        format!("{s}.resources.limits[hugepages-2Mi]: Forbidden: not supported by peapod"),
        // Defaulting copied the limit into requests, as the API server does.
        format!("{s}.resources.requests[hugepages-2Mi]: Forbidden: not supported by peapod"),
        format!("{s}.restartPolicy: Forbidden: may not be set for non-init containers"),
        format!("{s}.restartPolicyRules: Forbidden: not supported by peapod"),
        format!(r#"{s}.securityContext.procMount: Invalid value: "Unmasked": `hostUsers` must be false to use `Unmasked`"#),
        format!("{s}.securityContext.seLinuxOptions: Forbidden: not supported by peapod"),
        format!("{s}.stdin: Forbidden: not supported by peapod"),
        format!(r#"{s}.volumeMounts[0].mountPropagation: Unsupported value: "HostToContainer": supported values: "None""#),
        format!(r#"{s}.volumeMounts[0].recursiveReadOnly: Unsupported value: "Enabled": supported values: "Disabled""#),
    ];
    for w in &want {
        assert!(got.contains(w), "missing {w}\ngot {got:#?}");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

#[test]
fn pod_rules() {
    let ok = json!([c(json!({}))]);
    let cases: Vec<(Value, Vec<String>)> = vec![
        (
            json!({"containers": ok, "restartPolicy": "Sometimes", "terminationGracePeriodSeconds": -1, "activeDeadlineSeconds": 0}),
            vec![
                "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0".into(),
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#.into(),
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive".into(),
            ],
        ),
        (
            json!({"containers": ok, "volumes": [{"name": "A_b"}, {"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}},
                                                  {"name": "v"}, {"name": "v"}, {"name": "h", "hostPath": {"path": "rel/../x", "type": "Pipe"}},
                                                  {"name": "e", "emptyDir": {"medium": "HugePages", "sizeLimit": "0"}},
                                                  {"name": "f", "emptyDir": {"medium": "Memory", "sizeLimit": "-1Mi"}}]}),
            vec![
                format!(r#"spec.volumes[0].name: Invalid value: "A_b": {LABEL_MSG}"#),
                "spec.volumes[1].hostPath: Forbidden: may not specify more than 1 volume type".into(),
                // Only well-formed volumes count for duplicates, as in Kubernetes: [1] does not.
                r#"spec.volumes[3].name: Duplicate value: "v""#.into(),
                r#"spec.volumes[4].hostPath.path: Invalid value: "rel/../x": must not contain '..'"#.into(),
                r#"spec.volumes[4].hostPath.path: Invalid value: "rel/../x": must be an absolute path"#.into(),
                r#"spec.volumes[4].hostPath.type: Unsupported value: "Pipe": supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket""#.into(),
                r#"spec.volumes[5].emptyDir.medium: Unsupported value: "HugePages": supported values: "", "Memory""#.into(),
                r#"spec.volumes[5].emptyDir.sizeLimit: Invalid value: "0": must be greater than zero"#.into(),
                "spec.volumes[6].emptyDir.sizeLimit: Forbidden: SizeLimit field must be a valid resource quantity".into(),
            ],
        ),
        (json!({"containers": ok, "dnsPolicy": "None"}), vec!["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None".into()]),
        (
            json!({"containers": ok, "dnsConfig": {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "bad"], "options": [{"value": "1"}]},
                   "hostAliases": [{"ip": "999.1.1.1"}]}),
            vec![
                r#"spec.dnsConfig.nameservers: Invalid value: ["1.1.1.1","2.2.2.2","3.3.3.3","bad"]: must not have more than 3 nameservers"#.into(),
                r#"spec.dnsConfig.nameservers[3]: Invalid value: "bad": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#.into(),
                "spec.dnsConfig.options[0]: Required value: must not be empty".into(),
                r#"spec.hostAliases[0].ip: Invalid value: "999.1.1.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#.into(),
            ],
        ),
        (
            json!({"containers": ok, "hostname": "Web", "nodeName": "node_a", "shareProcessNamespace": true, "hostPID": true,
                   "securityContext": {"supplementalGroups": [-5]}}),
            vec![
                "spec.securityContext.supplementalGroups[0]: Invalid value: -5: must be between 0 and 4294967295, inclusive".into(),
                "spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled".into(),
                r#"spec.nodeName: Invalid value: "node_a": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#.into(),
                format!(r#"spec.hostname: Invalid value: "Web": {LABEL_MSG}"#),
            ],
        ),
    ];
    for (spec, want) in cases {
        let shown = spec.to_string();
        assert_eq!(check(spec), want, "{shown}");
    }
}

#[test]
fn metadata_rules() {
    let mut pg = pod(json!({"containers": [c(json!({}))]}));
    pg.metadata.name = None;
    pg.metadata.namespace = Some("Team".into());
    pg.metadata.labels = Some([("peapod.dev/node".to_string(), "-x".to_string())].into());
    let got = messages(&pg);
    assert_eq!(
        got[0],
        "metadata.name: Required value: name or generateName is required"
    );
    assert_eq!(
        got[1],
        format!(r#"metadata.namespace: Invalid value: "Team": {LABEL_MSG}"#)
    );
    assert!(
        got[2].starts_with(r#"metadata.labels: Invalid value: "-x": a valid label must be an empty string"#)
    );
    pg.metadata.name = Some("web.v1".into());
    pg.metadata.namespace = Some("default".into());
    pg.metadata.labels = None;
    pg.metadata.annotations = Some([("Example.com/Key".to_string(), "x".repeat(300 * 1024))].into());
    assert_eq!(
        messages(&pg),
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );
}

#[test]
fn errors_display_on_one_line_or_one_per_line() {
    let pg = pod(json!({"containers": [c(json!({"image": ""})), c(json!({"image": ""}))]}));
    let err = validate(&pg).err().unwrap_or_default();
    assert_eq!(
        err.to_string(),
        r#"spec.containers[0].image: Required value; spec.containers[1].image: Required value; spec.containers[1].name: Duplicate value: "web""#
    );
    assert_eq!(format!("{err:#}").lines().count(), 3);
    assert!(validate(&pod(json!({"containers": [c(json!({}))]}))).is_ok());
}

#[test]
fn update_rules() {
    let base = json!({"containers": [c(json!({}))], "activeDeadlineSeconds": 100,
                      "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]});
    let with = |patch: Value| {
        let mut spec = base.clone();
        if let (Some(spec), Value::Object(patch)) = (spec.as_object_mut(), patch) {
            spec.extend(patch);
        }
        pod(spec)
    };
    let old = pod(base.clone());
    let update = |new: &PodGroup| -> Vec<String> {
        validate_update(&old, new)
            .err()
            .map(|e| e.into_errors().iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    };
    let allowed = [
        json!({"containers": [c(json!({"image": "busybox:1.37"}))]}),
        json!({"activeDeadlineSeconds": 50}),
        json!({"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 9}, {"operator": "Exists"}]}),
    ];
    for patch in allowed {
        assert_eq!(update(&with(patch.clone())), Vec::<String>::new(), "{patch}");
    }
    let fields = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";
    let rejected = [
        (json!({"restartPolicy": "Never"}), format!("spec: Forbidden: pod updates may not change fields other than {fields} (changed: spec.restartPolicy)")),
        (json!({"containers": [c(json!({})), c(json!({"name": "b"}))]}), "spec.containers: Forbidden: pod updates may not add or remove containers".into()),
        (json!({"activeDeadlineSeconds": 200}), "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value".into()),
        (json!({"activeDeadlineSeconds": null}), "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value".into()),
        (json!({"tolerations": []}), "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds".into()),
    ];
    for (patch, want) in rejected {
        assert_eq!(update(&with(patch.clone())), vec![want], "{patch}");
    }
    let mut renamed = old.clone();
    renamed.metadata.name = Some("other".into());
    assert_eq!(
        update(&renamed),
        vec![r#"metadata.name: Invalid value: "other": field is immutable"#]
    );
}

#[test]
fn container_count_is_bounded_with_the_api_servers_wording() {
    let many = |prefix: &str, n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"name": format!("{prefix}{i}"), "image": "busybox:1.36"}))
            .collect()
    };
    assert!(check(json!({"containers": many("c", MAX_CONTAINERS)})).is_empty());
    assert_eq!(
        check(json!({"containers": many("c", MAX_CONTAINERS + 1)})),
        vec![format!(
            "spec.containers: Too many: {}: must have at most {MAX_CONTAINERS} items",
            MAX_CONTAINERS + 1
        )]
    );
    assert_eq!(
        check(json!({"containers": many("c", 60), "initContainers": many("i", 41)})),
        vec![format!(
            "spec.initContainers: Too many: 41: must have at most {} items",
            MAX_CONTAINERS - 60
        )]
    );
    assert!(check(json!({"containers": many("c", 60), "initContainers": many("i", 40)})).is_empty());
}

#[test]
fn termination_message_path_may_not_take_over_runtime_paths() {
    let with = |p: &str, privileged: bool| {
        check(json!({"containers": [c(json!({"terminationMessagePath": p,
                                             "securityContext": {"privileged": privileged}}))]}))
    };
    assert_eq!(
        with("/dev/null", false),
        vec![
            r#"spec.containers[0].terminationMessagePath: Invalid value: "/dev/null": must not cover /dev/null, which the runtime masks paths with, unless the container is privileged"#
        ]
    );
    let proc = r#"spec.containers[0].terminationMessagePath: Invalid value: "/proc/x": must not be /proc or a path under it: the runtime mounts procfs there"#;
    assert_eq!(with("/proc/x", false), vec![proc]);
    assert_eq!(with("/proc/x", true), vec![proc]);
    assert_eq!(
        with("/proc/kcore", false),
        vec![
            r#"spec.containers[0].terminationMessagePath: Invalid value: "/proc/kcore": must not be /proc or a path under it: the runtime mounts procfs there"#
        ]
    );
    assert_eq!(
        with("x", false),
        vec![r#"spec.containers[0].terminationMessagePath: Invalid value: "x": must be an absolute path"#]
    );
    assert!(with("/dev/termination-log", false).is_empty());
}
