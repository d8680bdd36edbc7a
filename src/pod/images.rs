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
    /// `Some` when it was pulled now: bytes and time taken.
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

/// Source of images for containers. The pull policy is applied by the worker (the kubelet's image manager).
pub trait Images: Send + Sync {
    /// The image if it is in the local store; an error for a reference that cannot be valid.
    fn local(&self, image: &str) -> Result<Option<ImageInfo>, ImageError>;

    /// Whether the reference names a local-only image (`localhost/...`), which is never pulled.
    fn local_only(&self, image: &str) -> bool;

    /// Pulls `image` from its registry.
    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Ensured, ImageError>>;
}
