//! Fine-grained reconcile cases against a mocked API server (tower-test): which requests a reconcile makes,
//! in which order, with which bodies. The real API server is exercised by tests/cluster.rs.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::Client;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::health::Metrics;
use super::reconcile::reconcile;
use super::Agent;
use crate::api::PodGroup;
use crate::cluster::status::{apply_status, StatusUpdate};
use crate::pod::events::{Event, Recorder};
use crate::pod::images::{ImageError, Images, PullOutcome, PullSecrets};
use crate::pod::worker::Context;
use crate::pod::workers::PodWorkers;
use crate::runtime::container::ImageInfo;
use crate::runtime::layout::RuntimeConfig;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

struct NoImages;

impl Images for NoImages {
    fn local(&self, _: &str) -> Result<Option<ImageInfo>, ImageError> {
        Ok(None)
    }
    fn local_only(&self, _: &str) -> bool {
        false
    }
    fn pull<'a>(&'a self, _: &'a str, _: &'a PullSecrets) -> BoxFuture<'a, PullOutcome> {
        Box::pin(async {
            PullOutcome {
                result: Err(ImageError {
                    reason: "ErrImagePull".into(),
                    message: "no images in tests".into(),
                }),
                secrets_warning: None,
            }
        })
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl Recorder for Events {
    fn record(&self, _: &PodGroup, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

struct Fixture {
    agent: Arc<Agent>,
    events: Arc<Events>,
    status: mpsc::UnboundedReceiver<StatusUpdate>,
    _dir: tempfile::TempDir,
}

fn fixture() -> (Fixture, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let dir = tempfile::tempdir().unwrap();
    let runtime = RuntimeConfig::under(dir.path());
    let events = Arc::new(Events::default());
    let ctx = Arc::new(Context {
        runtime: runtime.clone(),
        images: Arc::new(NoImages),
        recorder: events.clone(),
    });
    let (updates, _) = mpsc::unbounded_channel();
    let (status_tx, status) = mpsc::unbounded_channel();
    let agent = Arc::new(Agent {
        client,
        node: "node-a".into(),
        workers: Mutex::new(PodWorkers::new(ctx, updates)),
        specs: Mutex::new(HashMap::new()),
        refused: Mutex::new(HashMap::new()),
        statuses: Mutex::new(HashMap::new()),
        status: status_tx,
        recorder: events.clone(),
        metrics: Metrics::default(),
        ready: AtomicBool::new(true),
        admission: Default::default(),
        runtime,
    });
    (
        Fixture {
            agent,
            events,
            status,
            _dir: dir,
        },
        handle,
    )
}

fn podgroup(extra: Value) -> PodGroup {
    let mut v = json!({
        "apiVersion": "peapod.dev/v1alpha1",
        "kind": "PodGroup",
        "metadata": {"name": "web", "namespace": "default", "uid": "7c6f1b0e-2d4a-4e8b-9c3d-5a1e2f3b4c5d", "resourceVersion": "7",
                     "labels": {"peapod.dev/node": "node-a"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "localhost/img:1"}]},
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// Answers one request after checking it; returns the request body.
async fn expect(handle: &mut Handle, method: &str, path_and_query: &str, reply: Value) -> Value {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method().as_str(), method);
    assert_eq!(
        request.uri().path_and_query().map(|p| p.as_str()),
        Some(path_and_query)
    );
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    body
}

#[tokio::test]
async fn missing_finalizer_is_added_first() {
    let (f, mut handle) = fixture();
    let pg = podgroup(json!({}));
    let reply = serde_json::to_value(podgroup(
        json!({"metadata": {"finalizers": ["peapod.dev/sandbox"]}}),
    ))
    .unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            "PATCH",
            "/apis/peapod.dev/v1alpha1/namespaces/default/podgroups/web?",
            reply,
        )
        .await
    });
    let action = reconcile(Arc::new(pg), f.agent.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    let patch = server.await.unwrap();
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/metadata/uid", "value": "7c6f1b0e-2d4a-4e8b-9c3d-5a1e2f3b4c5d"},
            {"op": "add", "path": "/metadata/finalizers", "value": ["peapod.dev/sandbox"]},
        ])
    );
    assert!(
        f.agent.workers.lock().unwrap().is_empty(),
        "no worker before the finalizer is in place"
    );
}

#[tokio::test]
async fn deleted_podgroup_without_a_worker_loses_its_finalizer() {
    let (f, mut handle) = fixture();
    let pg = podgroup(
        json!({"metadata": {"finalizers": ["other/keep", "peapod.dev/sandbox"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
    );
    let current = serde_json::to_value(&pg).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            "GET",
            "/apis/peapod.dev/v1alpha1/namespaces/default/podgroups/web",
            current.clone(),
        )
        .await;
        expect(
            &mut handle,
            "PATCH",
            "/apis/peapod.dev/v1alpha1/namespaces/default/podgroups/web?",
            current,
        )
        .await
    });
    reconcile(Arc::new(pg), f.agent.clone()).await.unwrap();
    let patch = server.await.unwrap();
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "peapod.dev/sandbox"},
            {"op": "remove", "path": "/metadata/finalizers/1"},
        ]),
        "only peapod's finalizer goes, guarded by a test of its position"
    );
}

#[tokio::test]
async fn invalid_spec_gets_a_failed_status_and_an_event_and_no_worker() {
    let (mut f, _handle) = fixture();
    let pg = podgroup(json!({
        "metadata": {"finalizers": ["peapod.dev/sandbox"]},
        "spec": {"containers": [{"name": "c", "image": "localhost/img:1"}, {"name": "c", "image": "localhost/img:1"}]},
    }));
    reconcile(Arc::new(pg), f.agent.clone()).await.unwrap();
    let update = f.status.try_recv().expect("a status update");
    assert_eq!(update.status.pod.phase.as_deref(), Some("Failed"));
    assert_eq!(update.status.pod.reason.as_deref(), Some("InvalidSpec"));
    assert!(update
        .status
        .pod
        .message
        .unwrap()
        .contains("spec.containers[1].name: Duplicate value: \"c\""));
    let events = f.events.0.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].warning && events[0].reason == "InvalidSpec");
    assert!(f.agent.workers.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_podgroup_bound_elsewhere_is_left_alone() {
    let (f, _handle) = fixture();
    let pg = podgroup(json!({"spec": {"nodeName": "node-b"}}));
    // No request may be made: the mock would hang waiting for an answer.
    let action = reconcile(Arc::new(pg), f.agent.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn status_is_applied_whole_with_the_peapod_field_manager() {
    let (f, mut handle) = fixture();
    let reply = serde_json::to_value(podgroup(json!({}))).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut handle, "PATCH", "/apis/peapod.dev/v1alpha1/namespaces/default/podgroups/web/status?&force=true&fieldManager=peapod", reply).await
    });
    let mut status = crate::api::PodGroupStatus::default();
    status.pod.phase = Some("Running".into());
    let update = StatusUpdate {
        namespace: "default".into(),
        name: "web".into(),
        uid: "7c6f1b0e-2d4a-4e8b-9c3d-5a1e2f3b4c5d".into(),
        status,
        release: false,
    };
    apply_status(&f.agent.client, &update).await.unwrap();
    let body = server.await.unwrap();
    assert_eq!(body["apiVersion"], "peapod.dev/v1alpha1");
    assert_eq!(body["kind"], "PodGroup");
    assert_eq!(
        body["metadata"]["uid"], "7c6f1b0e-2d4a-4e8b-9c3d-5a1e2f3b4c5d",
        "the uid pins the status to this incarnation"
    );
    assert_eq!(body["status"]["phase"], "Running");
}

#[tokio::test]
async fn pod_security_is_enforced_at_the_namespace_level_before_the_pod_runs() {
    let (mut f, mut handle) = fixture();
    let pg = podgroup(json!({"metadata": {"finalizers": ["peapod.dev/sandbox"]}}));
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "default", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}});
    let server = tokio::spawn(async move {
        expect(&mut handle, "GET", "/api/v1/namespaces/default", namespace).await;
    });
    let action = reconcile(Arc::new(pg), f.agent.clone()).await.unwrap();
    server.await.unwrap();
    assert_eq!(action, Action::await_change());
    let update = f.status.try_recv().expect("a status update");
    assert_eq!(update.status.pod.phase.as_deref(), Some("Failed"));
    assert_eq!(update.status.pod.reason.as_deref(), Some("PodSecurityViolation"));
    let message = update.status.pod.message.unwrap();
    assert!(
        message.starts_with(r#"Pod was rejected: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false)"#),
        "{message}"
    );
    let events = f.events.0.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].warning && events[0].reason == "PodSecurityViolation");
    assert!(events[0].message.starts_with("violates PodSecurity"));
    assert!(f.agent.workers.lock().unwrap().is_empty(), "nothing runs");
}

#[tokio::test]
async fn an_unlabelled_namespace_gets_the_agents_level() {
    let (mut f, mut handle) = fixture();
    let pg = podgroup(json!({"metadata": {"finalizers": ["peapod.dev/sandbox"]}, "spec": {"hostPID": true}}));
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
    let server = tokio::spawn(async move {
        expect(&mut handle, "GET", "/api/v1/namespaces/default", namespace).await;
    });
    reconcile(Arc::new(pg), f.agent.clone()).await.unwrap();
    server.await.unwrap();
    let update = f.status.try_recv().expect("a status update");
    assert_eq!(
        update.status.pod.message.as_deref(),
        Some(r#"Pod was rejected: violates PodSecurity "baseline:latest": host namespaces (hostPID=true)"#)
    );
}

#[tokio::test]
async fn an_edit_is_judged_against_the_admitted_spec_on_disk() {
    let (mut f, _handle) = fixture();
    let fin = json!({"metadata": {"finalizers": ["peapod.dev/sandbox"]}});
    let admitted = podgroup(fin.clone());
    // What an earlier agent admitted, as a restarted agent finds it on disk.
    let mut defaulted = admitted.clone();
    crate::api::defaults::apply_defaults(&mut defaulted);
    crate::pod::admitted::write_admitted(&f.agent.runtime, &defaulted).unwrap();
    let loaded =
        crate::pod::admitted::load_admitted(&f.agent.runtime, "7c6f1b0e-2d4a-4e8b-9c3d-5a1e2f3b4c5d")
            .unwrap();
    f.agent
        .specs
        .lock()
        .unwrap()
        .insert("7c6f1b0e-2d4a-4e8b-9c3d-5a1e2f3b4c5d".into(), loaded);
    let mut running = crate::api::PodGroupStatus::default();
    running.pod.phase = Some("Running".into());
    f.agent
        .statuses
        .lock()
        .unwrap()
        .insert("7c6f1b0e-2d4a-4e8b-9c3d-5a1e2f3b4c5d".into(), running);

    let mut edited = podgroup(fin.clone());
    edited.spec.pod.containers[0].security_context =
        serde_json::from_value(json!({"privileged": true})).unwrap();
    reconcile(Arc::new(edited.clone()), f.agent.clone())
        .await
        .unwrap();
    let update = f.status.try_recv().expect("the refusal in the status");
    assert_eq!(update.status.pod.phase.as_deref(), Some("Running"));
    let message = update.status.pod.message.clone().unwrap_or_default();
    assert!(
        message.starts_with(
            "PodGroup \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than"
        ),
        "{message}"
    );
    assert!(
        message.contains("spec.containers[0].securityContext"),
        "{message}"
    );
    {
        let events = f.events.0.lock().unwrap();
        assert_eq!(events.len(), 1);
        assert!(events[0].warning && events[0].reason == "InvalidUpdate");
        assert_eq!(events[0].message, message);
    }
    assert!(
        f.agent.workers.lock().unwrap().is_empty(),
        "the edit reached no worker"
    );

    // Seen again (its status written): no second Event, no second write.
    edited.status = Some(update.status.clone());
    reconcile(Arc::new(edited), f.agent.clone()).await.unwrap();
    assert_eq!(f.events.0.lock().unwrap().len(), 1);
    assert!(f.status.try_recv().is_err());

    // Reverted: the status goes back to the worker's, without the refusal.
    let mut reverted = admitted;
    reverted.status = Some(update.status);
    reconcile(Arc::new(reverted), f.agent.clone()).await.unwrap();
    let cleared = f.status.try_recv().expect("the refusal cleared");
    assert_eq!(cleared.status.pod.message, None);
    assert_eq!(cleared.status.pod.phase.as_deref(), Some("Running"));
    assert!(f.agent.refused.lock().unwrap().is_empty());
    f.agent.workers.lock().unwrap().detach();
}
