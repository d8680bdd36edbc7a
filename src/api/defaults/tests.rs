use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, HostPathVolumeSource, ObjectFieldSelector,
    PodSpec, Probe, ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;
use crate::api::{PodGroup, PodGroupSpec};

fn pod(spec: PodSpec) -> PodGroup {
    PodGroup::new("web", PodGroupSpec { pod: spec })
}

fn container(image: &str) -> Container {
    Container {
        name: "c".into(),
        image: Some(image.into()),
        ..Default::default()
    }
}

fn defaulted(spec: PodSpec) -> PodGroup {
    let mut pg = pod(spec);
    apply_defaults(&mut pg);
    pg
}

#[test]
fn fills_pod_spec_defaults() {
    let pg = defaulted(PodSpec {
        containers: vec![container("busybox")],
        ..Default::default()
    });
    let got = serde_json::to_value(&pg.spec.pod).unwrap_or_default();
    assert_eq!(
        got,
        json!({
            "containers": [{
                "name": "c",
                "image": "busybox",
                "imagePullPolicy": "Always",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        })
    );
    assert_eq!(pg.metadata.namespace.as_deref(), Some("default"));
}

#[test]
fn keeps_what_is_set_and_fills_zero_values() {
    let mut spec = PodSpec {
        containers: vec![Container {
            image_pull_policy: Some("Never".into()),
            ..container("busybox")
        }],
        restart_policy: Some("Never".into()),
        dns_policy: Some(String::new()),
        termination_grace_period_seconds: Some(0),
        enable_service_links: Some(false),
        ..Default::default()
    };
    spec.containers[0].termination_message_policy = Some(String::new());
    let mut pg = pod(spec);
    pg.metadata.namespace = Some("team".into());
    apply_defaults(&mut pg);
    let spec = &pg.spec.pod;
    assert_eq!(spec.containers[0].image_pull_policy.as_deref(), Some("Never"));
    assert_eq!(
        spec.containers[0].termination_message_policy.as_deref(),
        Some("File")
    );
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.termination_grace_period_seconds, Some(0));
    assert_eq!(spec.enable_service_links, Some(false));
    assert_eq!(pg.metadata.namespace.as_deref(), Some("team"));
}

#[test]
fn image_pull_policy_follows_the_tag() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let cases = [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("library/busybox", "Always"),
        ("127.0.0.1:5000/busybox", "Always"),
        ("127.0.0.1:5000/busybox:1", "IfNotPresent"),
        ("localhost:5000/team/img:latest", "Always"),
        ("registry.example:443/a/b/c", "Always"),
        ("[::1]:5000/img:v1", "IfNotPresent"),
        ("[::1]/img", "Always"),
        (&format!("busybox@{digest}"), "IfNotPresent"),
        (&format!("busybox:latest@{digest}"), "Always"),
        (&format!("busybox:1.0@{digest}"), "IfNotPresent"),
        ("busybox@sha256:short", "IfNotPresent"),
        ("Busybox", "IfNotPresent"),
        ("", "IfNotPresent"),
        ("busybox:", "IfNotPresent"),
        ("busy--box_x.y__z", "Always"),
        ("busy..box", "IfNotPresent"),
        (" busybox", "IfNotPresent"),
    ];
    for (image, want) in cases {
        let pg = defaulted(PodSpec {
            containers: vec![container(image)],
            ..Default::default()
        });
        assert_eq!(
            pg.spec.pod.containers[0].image_pull_policy.as_deref(),
            Some(want),
            "{image:?}"
        );
    }
}

#[test]
fn requests_default_to_limits() {
    let q = |s: &str| Quantity(s.into());
    let resources = ResourceRequirements {
        limits: Some(BTreeMap::from([
            ("cpu".into(), q("1")),
            ("memory".into(), q("64Mi")),
        ])),
        requests: Some(BTreeMap::from([("cpu".into(), q("500m"))])),
        ..Default::default()
    };
    let init = Container {
        resources: Some(resources.clone()),
        ..container("busybox")
    };
    let pg = defaulted(PodSpec {
        containers: vec![Container {
            resources: Some(resources),
            ..container("busybox")
        }],
        init_containers: Some(vec![Container {
            name: "i".into(),
            ..init
        }]),
        ..Default::default()
    });
    let want = BTreeMap::from([("cpu".to_string(), q("500m")), ("memory".to_string(), q("64Mi"))]);
    for c in pg
        .spec
        .pod
        .containers
        .iter()
        .chain(pg.spec.pod.init_containers.iter().flatten())
    {
        assert_eq!(
            c.resources.as_ref().and_then(|r| r.requests.clone()),
            Some(want.clone())
        );
    }
}

#[test]
fn host_network_ports_and_protocols() {
    let port = |container_port: i32, host_port: Option<i32>| ContainerPort {
        container_port,
        host_port,
        ..Default::default()
    };
    let spec = |host_network| PodSpec {
        host_network: Some(host_network),
        containers: vec![Container {
            ports: Some(vec![port(80, None), port(81, Some(0)), port(82, Some(9082))]),
            ..container("b")
        }],
        ..Default::default()
    };
    let pg = defaulted(spec(true));
    let ports = pg.spec.pod.containers[0].ports.clone().unwrap_or_default();
    let host_ports: Vec<Option<i32>> = ports.iter().map(|p| p.host_port).collect();
    assert_eq!(host_ports, vec![Some(80), Some(81), Some(9082)]);
    assert!(ports.iter().all(|p| p.protocol.as_deref() == Some("TCP")));
    let pg = defaulted(spec(false));
    let host_ports: Vec<Option<i32>> = pg.spec.pod.containers[0]
        .ports
        .iter()
        .flatten()
        .map(|p| p.host_port)
        .collect();
    assert_eq!(host_ports, vec![None, Some(0), Some(9082)]);
}

#[test]
fn probes_env_and_volumes() {
    let probe = Probe {
        http_get: Some(HTTPGetAction {
            port: IntOrString::Int(8080),
            ..Default::default()
        }),
        timeout_seconds: Some(0),
        period_seconds: Some(5),
        ..Default::default()
    };
    let env = EnvVar {
        name: "NODE".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: "spec.nodeName".into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pg = defaulted(PodSpec {
        containers: vec![Container {
            liveness_probe: Some(probe),
            env: Some(vec![env]),
            ..container("b")
        }],
        volumes: Some(vec![
            Volume {
                name: "scratch".into(),
                ..Default::default()
            },
            Volume {
                name: "host".into(),
                host_path: Some(HostPathVolumeSource {
                    path: "/srv".into(),
                    type_: None,
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    });
    let c = &pg.spec.pod.containers[0];
    let probe = serde_json::to_value(&c.liveness_probe).unwrap_or_default();
    assert_eq!(
        probe,
        json!({"httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3})
    );
    let field_ref = c
        .env
        .as_ref()
        .and_then(|e| e[0].value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref());
    assert_eq!(field_ref.and_then(|f| f.api_version.as_deref()), Some("v1"));
    let volumes = serde_json::to_value(&pg.spec.pod.volumes).unwrap_or_default();
    assert_eq!(
        volumes,
        json!([{"name": "scratch", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/srv", "type": ""}}])
    );
}

#[test]
fn service_account_names_are_kept_in_step() {
    let pg = defaulted(PodSpec {
        service_account: Some("robot".into()),
        ..Default::default()
    });
    assert_eq!(pg.spec.pod.service_account_name.as_deref(), Some("robot"));
    let pg = defaulted(PodSpec {
        service_account_name: Some("bot".into()),
        service_account: Some("x".into()),
        ..Default::default()
    });
    assert_eq!(pg.spec.pod.service_account.as_deref(), Some("bot"));
}

#[test]
fn is_idempotent() {
    let mut pg = defaulted(PodSpec {
        containers: vec![Container {
            liveness_probe: Some(Probe::default()),
            ports: Some(vec![ContainerPort {
                container_port: 80,
                ..Default::default()
            }]),
            ..container("busybox:1")
        }],
        host_network: Some(true),
        volumes: Some(vec![Volume {
            name: "v".into(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let once = pg.clone();
    apply_defaults(&mut pg);
    assert_eq!(serde_json::to_value(&pg).ok(), serde_json::to_value(&once).ok());
}

#[test]
fn hooks_and_sidecar_probes() {
    let spec: PodSpec = serde_json::from_value(json!({
        "initContainers": [{"name": "proxy", "image": "b:1", "restartPolicy": "Always",
            "readinessProbe": {"httpGet": {"port": 15021, "scheme": "HTTPS"}, "failureThreshold": 0},
            "startupProbe": {"tcpSocket": {"port": 15021}, "successThreshold": 0}}],
        "containers": [{"name": "web", "image": "b:1", "lifecycle": {
            "postStart": {"httpGet": {"port": 80, "path": ""}},
            "preStop": {"httpGet": {"port": 80, "path": "/quit"}}}}]
    }))
    .unwrap_or_default();
    let pg = defaulted(spec);
    let proxy = &pg.spec.pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(
        serde_json::to_value(&proxy.readiness_probe).unwrap_or_default(),
        json!({"httpGet": {"path": "/", "port": 15021, "scheme": "HTTPS"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        serde_json::to_value(&proxy.startup_probe).unwrap_or_default(),
        json!({"tcpSocket": {"port": 15021}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    let lifecycle = serde_json::to_value(&pg.spec.pod.containers[0].lifecycle).unwrap_or_default();
    assert_eq!(
        lifecycle,
        json!({"postStart": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}},
               "preStop": {"httpGet": {"path": "/quit", "port": 80, "scheme": "HTTP"}}})
    );
}
