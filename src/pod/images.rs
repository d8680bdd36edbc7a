//! The image side of starting a container, as the pod worker needs it: make the image available under its
//! pull policy and describe it for the runtime. Implemented over the image store by the front ends; the
//! worker only sees this interface, so it can be tested without registries.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::runtime::container::ImageInfo;

/// An image made available for a container.
#[derive(Debug, Clone)]
pub struct Ensured {
    /// What the runtime needs.
    pub info: ImageInfo,
    /// `Some` when it was pulled now: bytes and the time the pull itself took.
    pub pulled: Option<(u64, Duration)>,
}

/// Why an image is not available, with the kubelet's waiting reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    /// `ErrImagePull`, `ErrImageNeverPull` or `InvalidImageName`.
    pub reason: String,
    /// Detail.
    pub message: String,
}

/// The credentials a Pod names for its pulls: its namespace and `imagePullSecrets`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullSecrets {
    /// The Pod's namespace, where its secrets live.
    pub namespace: String,
    /// Secret names, in spec order.
    pub names: Vec<String>,
}

impl PullSecrets {
    /// The pull secrets of `pod`.
    pub fn of(pod: &crate::api::PodGroup) -> Self {
        let names = pod
            .spec
            .pod
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        PullSecrets {
            namespace: pod.namespace_or_default().to_string(),
            names,
        }
    }
}

/// What a pull produced.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The image, or why it could not be pulled.
    pub result: Result<Ensured, ImageError>,
    /// The `FailedToRetrieveImagePullSecret` warning when some of the Pod's secrets could not be read.
    pub secrets_warning: Option<String>,
}

/// Source of images for containers. The pull policy is applied by the worker (the kubelet's image manager).
pub trait Images: Send + Sync {
    /// The image if it is in the local store; an error for a reference that cannot be valid.
    fn local(&self, image: &str) -> Result<Option<ImageInfo>, ImageError>;

    /// Whether the reference names a local-only image (`localhost/...`), which is never pulled.
    fn local_only(&self, image: &str) -> bool;

    /// Pulls `image` from its registry with the credentials `secrets` name (and the node's).
    fn pull<'a>(&'a self, image: &'a str, secrets: &'a PullSecrets) -> BoxFuture<'a, PullOutcome>;
}

/// The kubelet's `Pulled` message: the pull's own duration, then the time including waiting for it.
pub fn pulled_message(image: &str, pull: Duration, total: Duration, size: u64) -> String {
    format!(
        "Successfully pulled image {image:?} in {} ({} including waiting). Image size: {size} bytes.",
        go_duration_ms(pull),
        go_duration_ms(total.max(pull))
    )
}

/// A duration truncated to milliseconds in Go's `time.Duration` format: `512ms`, `1.234s`, `2m3.5s`.
pub fn go_duration_ms(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        for (ms, want) in [
            (0, "0s"),
            (512, "512ms"),
            (1000, "1s"),
            (1234, "1.234s"),
            (1500, "1.5s"),
            (123_500, "2m3.5s"),
            (3_600_000, "1h0m0s"),
        ] {
            assert_eq!(go_duration_ms(Duration::from_millis(ms)), want, "{ms}");
        }
        assert_eq!(
            pulled_message(
                "busybox",
                Duration::from_millis(1234),
                Duration::from_millis(2000),
                42
            ),
            "Successfully pulled image \"busybox\" in 1.234s (2s including waiting). Image size: 42 bytes."
        );
    }
}
