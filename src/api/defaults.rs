//! The defaults the API server applies to a core/v1 Pod (k8s pkg/apis/core/v1/defaults.go and the
//! v1 conversion of `serviceAccount`), applied by peapod to a `PodGroup` because custom resources get
//! no core defaulting.
//!
//! `apply_defaults` only fills what is unset (Go's zero value counts as unset, so `""` and `0` are
//! filled too); it never rejects anything and is idempotent. Validation comes after it.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, ObjectFieldSelector, PodSecurityContext,
    PodSpec, Probe, Volume,
};

use super::PodGroup;

/// `v1.DefaultTerminationGracePeriodSeconds`.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// `v1.TerminationMessagePathDefault`.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// `v1.DefaultSchedulerName`.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// The namespace of objects that name none.
pub const DEFAULT_NAMESPACE: &str = "default";
/// `0644`, the default mode of files projected from secrets, config maps and the downward API.
const DEFAULT_FILE_MODE: i32 = 0o644;

/// Fills every Pod default in place.
pub fn apply_defaults(pg: &mut PodGroup) {
    if is_unset(&pg.metadata.namespace) {
        pg.metadata.namespace = Some(DEFAULT_NAMESPACE.to_string());
    }
    defaults_pod_spec(&mut pg.spec.pod);
}

fn is_unset(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

fn set_str(field: &mut Option<String>, value: &str) {
    if is_unset(field) {
        *field = Some(value.to_string());
    }
}

fn set_i32(field: &mut Option<i32>, value: i32) {
    if field.is_none_or(|v| v == 0) {
        *field = Some(value);
    }
}

/// `SetDefaults_PodSpec` and `SetDefaults_Pod`.
fn defaults_pod_spec(spec: &mut PodSpec) {
    set_str(&mut spec.dns_policy, "ClusterFirst");
    set_str(&mut spec.restart_policy, "Always");
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds
        .get_or_insert(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    set_str(&mut spec.scheduler_name, DEFAULT_SCHEDULER_NAME);
    spec.enable_service_links.get_or_insert(true);
    // The v1 conversion keeps the deprecated serviceAccount and serviceAccountName in step.
    if is_unset(&spec.service_account_name) && !is_unset(&spec.service_account) {
        spec.service_account_name.clone_from(&spec.service_account);
    }
    if !is_unset(&spec.service_account_name) {
        spec.service_account.clone_from(&spec.service_account_name);
    }
    let host_network = spec.host_network == Some(true);
    let init = spec.init_containers.iter_mut().flatten();
    for container in spec.containers.iter_mut().chain(init) {
        defaults_container(container, host_network);
    }
    for volume in spec.volumes.iter_mut().flatten() {
        defaults_volume(volume);
    }
}

/// `SetDefaults_Container` and the per-container parts of `SetDefaults_Pod`.
fn defaults_container(c: &mut Container, host_network: bool) {
    if is_unset(&c.image_pull_policy) {
        let policy = if image_tag(c.image.as_deref().unwrap_or("")) == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.image_pull_policy = Some(policy.to_string());
    }
    set_str(&mut c.termination_message_path, DEFAULT_TERMINATION_MESSAGE_PATH);
    set_str(&mut c.termination_message_policy, "File");
    for port in c.ports.iter_mut().flatten() {
        defaults_port(port, host_network);
    }
    if let Some(resources) = c.resources.as_mut() {
        if let Some(limits) = &resources.limits {
            let requests = resources.requests.get_or_insert_with(Default::default);
            for (name, quantity) in limits {
                requests.entry(name.clone()).or_insert_with(|| quantity.clone());
            }
        }
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        defaults_probe(probe);
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        let handlers = [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
            .into_iter()
            .flatten();
        for http in handlers.filter_map(|h| h.http_get.as_mut()) {
            defaults_http_get(http);
        }
    }
    let env_sources = c.env.iter_mut().flatten().filter_map(|e| e.value_from.as_mut());
    for field_ref in env_sources.filter_map(|s| s.field_ref.as_mut()) {
        defaults_field_ref(field_ref);
    }
}

fn defaults_port(port: &mut ContainerPort, host_network: bool) {
    set_str(&mut port.protocol, "TCP");
    if host_network && port.host_port.is_none_or(|p| p == 0) {
        port.host_port = Some(port.container_port);
    }
}

/// `SetDefaults_Probe` and `SetDefaults_HTTPGetAction`.
fn defaults_probe(probe: &mut Probe) {
    set_i32(&mut probe.timeout_seconds, 1);
    set_i32(&mut probe.period_seconds, 10);
    set_i32(&mut probe.success_threshold, 1);
    set_i32(&mut probe.failure_threshold, 3);
    if let Some(http) = probe.http_get.as_mut() {
        defaults_http_get(http);
    }
}

fn defaults_http_get(http: &mut HTTPGetAction) {
    set_str(&mut http.path, "/");
    set_str(&mut http.scheme, "HTTP");
}

fn defaults_field_ref(selector: &mut ObjectFieldSelector) {
    set_str(&mut selector.api_version, "v1");
}

/// `SetDefaults_Volume` and the defaults of the volume sources.
fn defaults_volume(v: &mut Volume) {
    let mut probe = v.clone();
    probe.name = String::new();
    if probe == Volume::default() {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    if let Some(host_path) = v.host_path.as_mut() {
        host_path.type_.get_or_insert_with(String::new);
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(c) = v.config_map.as_mut() {
        c.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for field_ref in d.items.iter_mut().flatten().filter_map(|i| i.field_ref.as_mut()) {
            defaults_field_ref(field_ref);
        }
    }
    if let Some(p) = v.projected.as_mut() {
        p.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for token in p
            .sources
            .iter_mut()
            .flatten()
            .filter_map(|s| s.service_account_token.as_mut())
        {
            token.expiration_seconds.get_or_insert(3600);
        }
    }
}

/// The tag of an image reference as `parsers.ParseImageName` reports it: the explicit tag, `latest`
/// when there is neither tag nor digest, `None` for a digest-only or malformed reference. A registry
/// port (`host:5000/img`) is not a tag.
pub fn image_tag(image: &str) -> Option<&str> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if digest.is_some_and(|d| !is_digest(d)) {
        return None;
    }
    let (directory, last) = match name.rsplit_once('/') {
        Some((directory, last)) => (Some(directory), last),
        None => (None, name),
    };
    let (last_name, tag) = match last.rsplit_once(':') {
        Some((last_name, tag)) => (last_name, Some(tag)),
        None => (last, None),
    };
    let repository = match directory {
        Some(directory) => format!("{directory}/{last_name}"),
        None => last_name.to_string(),
    };
    if !is_repository(&repository) || tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    match (tag, digest) {
        (Some(tag), _) => Some(tag),
        (None, Some(_)) => None,
        (None, None) => Some("latest"),
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    bytes.first().is_some_and(|&b| word(b))
        && bytes.len() <= 128
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex` with an encoded part of at least 32 characters.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    algorithm_ok
        && encoded.len() >= 32
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
}

/// An optional `host[:port]/` followed by lower-case path components separated by `/`.
fn is_repository(repository: &str) -> bool {
    let mut parts: Vec<&str> = repository.split('/').collect();
    let first = parts.first().copied().unwrap_or("");
    let is_domain = parts.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase()));
    if is_domain {
        if !is_domain_part(first) {
            return false;
        }
        parts.remove(0);
    }
    !parts.is_empty() && parts.iter().all(|p| is_path_component(p))
}

fn is_domain_part(domain: &str) -> bool {
    let (host_ok, port) = if let Some(bracketed) = domain.strip_prefix('[') {
        let Some((inner, rest)) = bracketed.split_once(']') else {
            return false;
        };
        let port = if rest.is_empty() {
            None
        } else {
            rest.strip_prefix(':').or(Some(""))
        };
        (inner.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        (host.split('.').all(is_domain_label), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(&b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__") && !separator.bytes().all(|s| s == b'-') {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(char::from(b));
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
