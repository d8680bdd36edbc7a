//! Errors of the image store, with a coarse [`ErrorKind`] the runtime maps to the kubelet's reasons
//! (`InvalidImageName`, `ErrImagePull`, ...).
//!
//! Owns error wording only; it must not decide retry or back-off policy.

use std::io;
use std::path::PathBuf;

use super::auth::AuthError;
use super::reference::ReferenceError;
use super::unpack::UnpackError;

/// What kind of failure an [`Error`] is, for callers that map errors to Pod status reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The name is not a valid reference (`InvalidImageName`); retrying cannot help.
    InvalidName,
    /// The name is valid but cannot be pulled as written (a short name without a default registry, or a
    /// local-only `localhost/...` name). Importing the image makes it available, so callers retry.
    NotPullable,
    /// No such image locally, or the registry has no such repository, tag or manifest.
    NotFound,
    /// The registry refused access with the credentials tried (or anonymously), or they could not be read.
    Unauthorized,
    /// The registry could not be reached (DNS, connect, TLS, timeout).
    Unreachable,
    /// Content did not match its digest, size or the config's diffIDs.
    BadDigest,
    /// The image or archive is malformed or uses something peapod does not support.
    BadImage,
    /// Local I/O or store trouble.
    Store,
}

/// An image store error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    #[error("short name {name:?} needs a registry; use a fully qualified name or set --default-registry")]
    ShortNameNeedsRegistry { name: String },
    #[error("image {name:?} is local-only (localhost without a port) and is never pulled; import it first")]
    LocalOnlyImage { name: String },
    #[error("image {name:?} not found in the local store")]
    ImageNotFound { name: String },
    #[error("invalid digest {value:?}: want sha256:<64 lowercase hex>")]
    InvalidDigest { value: String },

    #[error("failed to create image store directory {path}")]
    CreateStoreDir { path: PathBuf, source: io::Error },
    #[error("failed to lock image store {path}")]
    LockStore { path: PathBuf, source: io::Error },
    #[error("failed to read {path}")]
    ReadFile { path: PathBuf, source: io::Error },
    #[error("failed to write {path}")]
    WriteFile { path: PathBuf, source: io::Error },
    #[error("failed to remove {path}")]
    RemoveFile { path: PathBuf, source: io::Error },
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge { what: String, limit: u64 },
    #[error("failed to parse {what}")]
    ParseJson { what: String, source: serde_json::Error },
    #[error("failed to write image index {path}")]
    WriteRefs { path: PathBuf, source: io::Error },

    #[error("blob {digest} is missing from the store")]
    BlobMissing { digest: String },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer {layer}: diffID mismatch: config says {expected}, layer content is {actual}")]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("manifest {manifest} lists {layers} layers but its config has {diff_ids} diff_ids")]
    LayerCountMismatch {
        manifest: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("{what}: no manifest for platform {platform}")]
    NoMatchingPlatform { what: String, platform: String },
    #[error("failed to unpack layer {digest}")]
    UnpackLayer { digest: String, source: UnpackError },
    #[error("failed to read layer {digest}")]
    ReadLayer { digest: String, source: io::Error },

    #[error("failed to read archive {path}")]
    ReadArchive { path: PathBuf, source: io::Error },
    #[error("archive {path} is neither an OCI image layout nor a docker save archive")]
    UnrecognizedArchive { path: PathBuf },
    #[error("archive {path}: {entry} is referenced but not in the archive")]
    ArchiveEntryMissing { path: PathBuf, entry: String },
    #[error("archive {path}: {reason}")]
    InvalidArchive { path: PathBuf, reason: String },

    /// Any pull failure, worded as containerd's CRI plugin words it (the kubelet shows it verbatim).
    #[error("failed to pull and unpack image {reference:?}")]
    PullImage { reference: String, source: Box<Error> },
    #[error("failed to resolve reference {reference:?}: {reference}: not found")]
    ManifestNotFound { reference: String },
    #[error(
        "failed to resolve reference {reference:?}: pull access denied, repository does not exist or may \
         require authorization: {message}"
    )]
    AccessDenied { reference: String, message: String },
    #[error("failed to do request to registry {registry}: {message}")]
    RegistryUnreachable { registry: String, message: String },
    #[error("registry {registry}: {message}")]
    RegistryFailed { registry: String, message: String },
    #[error("failed to read image pull credentials")]
    ReadCredentials { source: AuthError },
    #[error("failed to read CA certificates for registry {registry} in {path}")]
    ReadRegistryCerts {
        registry: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("image store task failed")]
    Task { source: tokio::task::JoinError },
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidReference(_) => ErrorKind::InvalidName,
            Self::ShortNameNeedsRegistry { .. } | Self::LocalOnlyImage { .. } => ErrorKind::NotPullable,
            Self::PullImage { source, .. } => source.kind(),
            Self::ImageNotFound { .. } | Self::ManifestNotFound { .. } => ErrorKind::NotFound,
            Self::AccessDenied { .. } | Self::ReadCredentials { .. } => ErrorKind::Unauthorized,
            Self::RegistryUnreachable { .. } | Self::ReadRegistryCerts { .. } => ErrorKind::Unreachable,
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. } | Self::DiffIdMismatch { .. } => {
                ErrorKind::BadDigest
            }
            Self::TooLarge { .. }
            | Self::InvalidDigest { .. }
            | Self::ParseJson { .. }
            | Self::LayerCountMismatch { .. }
            | Self::UnsupportedMediaType { .. }
            | Self::NoMatchingPlatform { .. }
            | Self::UnpackLayer { .. }
            | Self::UnrecognizedArchive { .. }
            | Self::ArchiveEntryMissing { .. }
            | Self::InvalidArchive { .. }
            | Self::RegistryFailed { .. } => ErrorKind::BadImage,
            Self::CreateStoreDir { .. }
            | Self::LockStore { .. }
            | Self::ReadFile { .. }
            | Self::WriteFile { .. }
            | Self::RemoveFile { .. }
            | Self::WriteRefs { .. }
            | Self::BlobMissing { .. }
            | Self::ReadLayer { .. }
            | Self::ReadArchive { .. }
            | Self::Task { .. } => ErrorKind::Store,
        }
    }
}

/// `map_err` helper: an I/O failure reading `path`.
pub(crate) fn read_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::ReadFile { path, source }
}

/// `map_err` helper: an I/O failure writing `path`.
pub(crate) fn write_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::WriteFile { path, source }
}
