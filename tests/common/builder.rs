//! Typed builders for the Pods and PodGroups the tests run, so that a test states its spec as a spec:
//!
//! ```ignore
//! pod("web").grace(2).restart_never().container(c("app").sh("sleep 3600"))
//! ```
//!
//! The builders hold JSON (the API's own field names), so a test can still write an odd or invalid spec
//! through the `set` escape hatches: `set` never validates, the code under test does. `manifest()` gives a
//! `kind: Pod` document for `peapod run` (JSON is YAML), `podgroup_manifest()` a `PodGroup` for `peapod run`
//! or `kubectl apply`, `build()` the `PodGroup` value.

use serde_json::{json, Map, Value};

use peapod::api::PodGroup;

use super::BUSYBOX;

/// A Pod named `name`, with no containers yet.
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder {
        metadata: json!({ "name": name }).as_object().cloned().unwrap_or_default(),
        spec: Map::new(),
    }
}

/// A container named `name` running the busybox test image.
pub fn c(name: &str) -> ContainerBuilder {
    ContainerBuilder(
        json!({ "name": name, "image": BUSYBOX })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
}

/// The script of a container that runs until SIGTERM and then exits 0 at once.
pub const SLEEP_SCRIPT: &str = "trap \"exit 0\" TERM; while true; do sleep 0.2; done";

/// A busybox container that runs until SIGTERM and then exits 0 at once.
pub fn sleeper(name: &str) -> ContainerBuilder {
    c(name).sh(SLEEP_SCRIPT)
}

/// A probe whose handler runs `command` in the container.
pub fn exec_probe<const N: usize>(command: [&str; N]) -> Probe {
    Probe(json!({ "exec": { "command": command.to_vec() } }))
}

/// A probe whose handler is an HTTP GET of `path` on `port`.
pub fn http_probe(path: &str, port: u16) -> Probe {
    Probe(json!({ "httpGet": { "path": path, "port": port } }))
}

/// A probe whose handler opens a TCP connection to `port` (a number or a port name).
pub fn tcp_probe(port: Value) -> Probe {
    Probe(json!({ "tcpSocket": { "port": port } }))
}

/// A probe under construction; the unset timings are the API's defaults.
#[derive(Clone, Debug)]
pub struct Probe(Value);

impl Probe {
    /// `initialDelaySeconds`.
    pub fn delay(self, seconds: i64) -> Self {
        self.set("initialDelaySeconds", json!(seconds))
    }

    /// `periodSeconds`.
    pub fn period(self, seconds: i64) -> Self {
        self.set("periodSeconds", json!(seconds))
    }

    /// `timeoutSeconds`.
    pub fn timeout(self, seconds: i64) -> Self {
        self.set("timeoutSeconds", json!(seconds))
    }

    /// `failureThreshold`.
    pub fn failures(self, threshold: i64) -> Self {
        self.set("failureThreshold", json!(threshold))
    }

    /// Any probe field, as written.
    pub fn set(mut self, field: &str, value: Value) -> Self {
        self.0[field] = value;
        self
    }
}

impl From<Probe> for Value {
    fn from(p: Probe) -> Value {
        p.0
    }
}

/// A Pod under construction.
#[derive(Clone, Debug)]
pub struct PodBuilder {
    metadata: Map<String, Value>,
    spec: Map<String, Value>,
}

impl PodBuilder {
    /// `metadata.namespace`.
    pub fn namespace(self, ns: &str) -> Self {
        self.meta("namespace", json!(ns))
    }

    /// `metadata.uid`.
    pub fn uid(self, uid: &str) -> Self {
        self.meta("uid", json!(uid))
    }

    /// One `metadata.labels` entry.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        entry(&mut self.metadata, "labels").insert(key.into(), json!(value));
        self
    }

    /// One `metadata.annotations` entry.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        entry(&mut self.metadata, "annotations").insert(key.into(), json!(value));
        self
    }

    /// Every field of the object `fields` into `metadata`, as written.
    pub fn metadata(mut self, fields: Value) -> Self {
        if let Value::Object(fields) = fields {
            self.metadata.extend(fields);
        }
        self
    }

    /// Any `metadata` field, as written.
    pub fn meta(mut self, field: &str, value: Value) -> Self {
        self.metadata.insert(field.into(), value);
        self
    }

    /// Appends a container to `spec.containers`.
    pub fn container(self, c: ContainerBuilder) -> Self {
        self.append("containers", Value::Object(c.0))
    }

    /// Appends a container to `spec.initContainers`.
    pub fn init(self, c: ContainerBuilder) -> Self {
        self.append("initContainers", Value::Object(c.0))
    }

    /// Appends a sidecar: an init container with `restartPolicy: Always`.
    pub fn sidecar(self, c: ContainerBuilder) -> Self {
        self.init(c.set("restartPolicy", json!("Always")))
    }

    /// `spec.restartPolicy`.
    pub fn restart(self, policy: &str) -> Self {
        self.set("restartPolicy", json!(policy))
    }

    /// `spec.restartPolicy: Never`.
    pub fn restart_never(self) -> Self {
        self.restart("Never")
    }

    /// `spec.restartPolicy: OnFailure`.
    pub fn restart_on_failure(self) -> Self {
        self.restart("OnFailure")
    }

    /// `spec.restartPolicy: Always`.
    pub fn restart_always(self) -> Self {
        self.restart("Always")
    }

    /// `spec.terminationGracePeriodSeconds`.
    pub fn grace(self, seconds: i64) -> Self {
        self.set("terminationGracePeriodSeconds", json!(seconds))
    }

    /// Appends `{name, <source>}` to `spec.volumes`; `source` is an object such as `{"emptyDir": {}}`.
    pub fn volume(self, name: &str, source: Value) -> Self {
        let mut v = json!({ "name": name });
        merge(&mut v, source);
        self.append("volumes", v)
    }

    /// Appends an `emptyDir` volume.
    pub fn empty_dir(self, name: &str) -> Self {
        self.volume(name, json!({ "emptyDir": {} }))
    }

    /// `spec.securityContext`.
    pub fn security(self, context: Value) -> Self {
        self.set("securityContext", context)
    }

    /// `spec.shareProcessNamespace: true`.
    pub fn share_process_namespace(self) -> Self {
        self.set("shareProcessNamespace", json!(true))
    }

    /// Any `spec` field, as written (merged into an object already there).
    pub fn set(mut self, field: &str, value: Value) -> Self {
        match (self.spec.get_mut(field), value) {
            (Some(old @ Value::Object(_)), value @ Value::Object(_)) => merge(old, value),
            (_, value) => {
                self.spec.insert(field.into(), value);
            }
        }
        self
    }

    /// Appends `item` to the list `field`, as written (`env` or `volumeMounts` entries of any shape).
    pub fn append(mut self, field: &str, item: Value) -> Self {
        match self.spec.entry(field).or_insert_with(|| json!([])) {
            Value::Array(items) => items.push(item),
            other => *other = json!([item]),
        }
        self
    }

    /// The object with this `apiVersion` and `kind`.
    fn object(&self, api_version: &str, kind: &str) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": self.metadata,
            "spec": self.spec,
        })
    }

    /// A `v1` `Pod` document, as a user writes one for `peapod run`.
    pub fn manifest(&self) -> String {
        to_text(&self.object("v1", "Pod"))
    }

    /// The `PodGroup` object as JSON.
    pub fn json(&self) -> Value {
        self.object("peapod.dev/v1alpha1", "PodGroup")
    }

    /// A `PodGroup` document for `peapod run` or `kubectl apply`.
    pub fn podgroup_manifest(&self) -> String {
        to_text(&self.json())
    }

    /// The `PodGroup` value (panics if a `set` made it undecodable).
    pub fn build(&self) -> PodGroup {
        serde_json::from_value(self.json()).unwrap_or_else(|e| panic!("{}: {e}", self.podgroup_manifest()))
    }
}

/// A container under construction.
#[derive(Clone, Debug)]
pub struct ContainerBuilder(Map<String, Value>);

impl ContainerBuilder {
    /// `image`.
    pub fn image(self, image: &str) -> Self {
        self.set("image", json!(image))
    }

    /// `command`.
    pub fn command<const N: usize>(self, argv: [&str; N]) -> Self {
        self.set("command", json!(argv.to_vec()))
    }

    /// `command: [sh, -c, script]`.
    pub fn sh(self, script: &str) -> Self {
        self.command(["sh", "-c", script])
    }

    /// `args`.
    pub fn args<const N: usize>(self, argv: [&str; N]) -> Self {
        self.set("args", json!(argv.to_vec()))
    }

    /// Appends `{name, value}` to `env`.
    pub fn env(self, name: &str, value: &str) -> Self {
        self.append("env", json!({ "name": name, "value": value }))
    }

    /// Appends a read-write `volumeMounts` entry.
    pub fn mount(self, volume: &str, path: &str) -> Self {
        self.append("volumeMounts", json!({ "name": volume, "mountPath": path }))
    }

    /// Appends a read-only `volumeMounts` entry.
    pub fn mount_ro(self, volume: &str, path: &str) -> Self {
        self.append(
            "volumeMounts",
            json!({ "name": volume, "mountPath": path, "readOnly": true }),
        )
    }

    /// `livenessProbe`.
    pub fn liveness(self, probe: impl Into<Value>) -> Self {
        self.set("livenessProbe", probe.into())
    }

    /// `readinessProbe`.
    pub fn readiness(self, probe: impl Into<Value>) -> Self {
        self.set("readinessProbe", probe.into())
    }

    /// `startupProbe`.
    pub fn startup(self, probe: impl Into<Value>) -> Self {
        self.set("startupProbe", probe.into())
    }

    /// `securityContext`.
    pub fn security(self, context: Value) -> Self {
        self.set("securityContext", context)
    }

    /// `imagePullPolicy`.
    pub fn pull_policy(self, policy: &str) -> Self {
        self.set("imagePullPolicy", json!(policy))
    }

    /// Any container field, as written (merged into an object already there).
    pub fn set(mut self, field: &str, value: Value) -> Self {
        match (self.0.get_mut(field), value) {
            (Some(old @ Value::Object(_)), value @ Value::Object(_)) => merge(old, value),
            (_, value) => {
                self.0.insert(field.into(), value);
            }
        }
        self
    }

    /// Removes a field (e.g. `image`, to test a spec without one).
    pub fn unset(mut self, field: &str) -> Self {
        self.0.remove(field);
        self
    }

    /// Appends `item` to the list `field`, as written (`env` or `volumeMounts` entries of any shape).
    pub fn append(mut self, field: &str, item: Value) -> Self {
        match self.0.entry(field).or_insert_with(|| json!([])) {
            Value::Array(items) => items.push(item),
            other => *other = json!([item]),
        }
        self
    }

    /// The container as JSON.
    pub fn json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// The object under `key`, created empty if missing.
fn entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// Merges the fields of object `extra` into object `base`, recursively; anything else replaces.
fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(&k) {
                    Some(old) => merge(old, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, e) => *b = e,
    }
}

/// Pretty JSON, which is YAML too: what `peapod run` and `kubectl apply` read.
fn to_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}
