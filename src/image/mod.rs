//! The image store: content-addressed blobs, unpacked layers, import of archives and pulls from registries.
//!
//! Owns everything under the store root the caller passes (normally `<state-dir>/images`): blobs by digest,
//! layers unpacked once per diffID (shared by every image that has them, ready to be overlayfs lower dirs),
//! and the ref index naming images. It reads image references, archives and registry bytes as hostile input.
//!
//! It must not: mount anything (the runtime builds the overlay rootfs from [`Image::layers`]), know about
//! Pods or pull policies, read credentials from anywhere but what the caller hands it, or delete content
//! outside gc.rs (which does it under the store's exclusive lock; `remove` only drops a name). Which
//! images are in use is the caller's knowledge, passed in.
//!
//! Everything is synchronous except [`ImageStore::pull`]; async callers wrap the rest in `spawn_blocking`.

mod archive;
pub mod auth;
mod commit;
mod config;
mod digest;
mod error;
mod gc;
mod layout;
mod lock;
mod lookup;
mod media;
mod pull;
pub mod reference;
mod refs;
mod store;
#[cfg(test)]
mod testutil;
pub mod unpack;

use std::path::PathBuf;

pub use config::{parse_signal, ExposedPort, InvalidSignal, Protocol};
pub use digest::Digest;
pub use error::{Error, ErrorKind};
pub use gc::{bytes_to_free, FsUsage, GcPolicy, GcReport, LEASE};
pub use reference::{Reference, ReferenceError};
pub use store::ImageStore;

/// An image in the local store, resolved and ready to run.
#[derive(Debug, Clone)]
pub struct Image {
    /// The stored name that matched, e.g. `localhost/busybox:latest`.
    pub name: String,
    /// The image ID: `sha256:<hex of the config blob>`, what `crictl images` and `podman images` show.
    pub id: String,
    /// Digest of the image manifest the name points to.
    pub manifest_digest: String,
    /// `repository@digest` when the image was pulled from a registry (the manifest list digest when the
    /// registry served one), as the kubelet reports in `imageID`.
    pub repo_digest: Option<String>,
    /// The image configuration (entrypoint, env, user, ...).
    pub config: oci_spec::image::ImageConfiguration,
    /// Unpacked layer directories, bottom to top; whiteouts are in overlayfs format.
    pub layers: Vec<PathBuf>,
}

/// One line of `peapod image list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Stored name, e.g. `localhost/busybox:latest`.
    pub name: String,
    /// `sha256:<config digest>`.
    pub id: String,
    /// Bytes of config and layer blobs as stored (compressed sizes, as registries report them).
    pub size: u64,
    /// The config's `created` timestamp (RFC 3339), if the image has one.
    pub created: Option<String>,
}

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Registry (`host[:port]`) that short names such as `busybox` are pulled from. Without it a short
    /// name cannot be pulled.
    pub default_registry: Option<String>,
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback registries (`localhost:<port>`,
    /// `127.0.0.1:<port>`, `[::1]:<port>`) always are.
    pub insecure_registries: Vec<String>,
    /// Credentials tried for the image's repository (the node's `--registry-config`, joined with a Pod's
    /// pull secrets by the caller); none matching means an anonymous pull.
    pub keyring: auth::Keyring,
    /// `certs.d`-style directory: `<dir>/<host:port>/*.crt` are CA certificates trusted for that registry
    /// (besides the system's), and a loopback registry with such a directory is spoken to over HTTPS.
    pub certs_dir: Option<PathBuf>,
}

/// How to import an archive.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Repository used when the archive names an image by tag only (the OCI `ref.name` annotation `1.0`
    /// as umoci writes it) or not at all. Defaults to `localhost/<archive file stem>`.
    pub base_name: Option<String>,
}
