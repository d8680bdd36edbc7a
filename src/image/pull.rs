//! Pulling images from OCI registries with oci-client: anonymous, HTTPS except for loopback and
//! explicitly insecure registries, manifest lists resolved to linux/<host arch>, blobs streamed into the
//! store and verified, layers unpacked on the blocking pool.
//!
//! Failures are sorted into not found / unauthorized / unreachable / bad digest so the runtime can write
//! the kubelet's `ErrImagePull` messages. This module must not follow foreign layer URLs (descriptors are
//! rebuilt without `urls`), pull `localhost/...` names, or pick a registry for short names by itself.

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use std::io::Write;
use std::time::Duration;

use super::digest::Digest;
use super::error::{write_err, Error};
use super::media::{self, Descriptor, Document, Manifest};
use super::reference::Reference;
use super::{Image, ImageStore, PullOptions};

/// Give up on a registry that does not accept the connection within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Give up on a transfer that stalls (no bytes) for this long.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The registry and repository a pull talks to, and how to name the result.
struct Target {
    reference: Reference,
    registry: String,
    oci: oci_client::Reference,
    shown: String,
}

impl ImageStore {
    /// Pulls `name` into the store and returns it under its fully qualified name.
    pub async fn pull(&self, name: &str, options: &PullOptions) -> Result<Image, Error> {
        let target = pull_target(name, options)?;
        let client = Client::try_from(ClientConfig {
            protocol: protocol_for(&target.registry, options),
            platform_resolver: None,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        })
        .map_err(|e| Error::PullFailed {
            reference: target.shown.clone(),
            message: e.to_string(),
        })?;
        let store = self.clone();
        let shared = blocking(move || store.shared()).await?;
        tracing::info!(image = %target.shown, registry = %target.registry, "pulling image");
        let (manifest_bytes, manifest, top_digest) = fetch_image_manifest(&client, &target).await?;
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !self.has_blob(&descriptor.digest()?) {
                self.fetch_blob(&client, &target, descriptor).await?;
            }
        }
        let repo_digest = format!("{}@{top_digest}", target.reference.repository());
        let (store, names) = (self.clone(), vec![target.shown.clone()]);
        let image = blocking(move || store.commit_image(&manifest_bytes, &names, Some(repo_digest))).await?;
        drop(shared);
        Ok(image)
    }

    /// Streams one blob into the store through a blocking writer, verifying size and digest.
    async fn fetch_blob(
        &self,
        client: &Client,
        target: &Target,
        descriptor: &Descriptor,
    ) -> Result<(), Error> {
        let digest = descriptor.digest()?;
        let expected_size = descriptor.size;
        let request = OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: digest.to_string(),
            size: i64::try_from(expected_size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        };
        let mut stream = client
            .pull_blob_stream(&target.oci, &request)
            .await
            .map_err(|e| classify(e, target))?;
        let (sender, writer) = spawn_blob_writer(self.clone(), digest.clone(), expected_size);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::PullFailed {
                reference: target.shown.clone(),
                message: format!("reading blob {digest}: {e}"),
            })?;
            if sender.send(chunk).await.is_err() {
                break; // the writer stopped early; its error is reported below
            }
        }
        drop(sender);
        let (_, size) = writer.await.map_err(|source| Error::Task { source })??;
        if size != expected_size {
            return Err(Error::SizeMismatch {
                what: format!("blob {digest}"),
                expected: expected_size,
                actual: size,
            });
        }
        Ok(())
    }
}

/// The blocking task writing one blob; yields its digest and size.
type BlobTask = tokio::task::JoinHandle<Result<(Digest, u64), Error>>;

/// A blocking task writing the chunks sent to it into a new blob, stopping past `expected_size`.
fn spawn_blob_writer<C: AsRef<[u8]> + Send + 'static>(
    store: ImageStore,
    want: Digest,
    expected_size: u64,
) -> (tokio::sync::mpsc::Sender<C>, BlobTask) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<C>(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut blob = store.blob_writer()?;
        while let Some(chunk) = receiver.blocking_recv() {
            blob.write_all(chunk.as_ref()).map_err(write_err(store.root()))?;
            if blob.written() > expected_size {
                let what = format!("blob {want}");
                return Err(Error::SizeMismatch {
                    what,
                    expected: expected_size,
                    actual: blob.written(),
                });
            }
        }
        blob.commit(Some(&want))
    });
    (sender, writer)
}

/// Works out the fully qualified reference to pull, refusing local-only and unqualifiable names.
fn pull_target(name: &str, options: &PullOptions) -> Result<Target, Error> {
    let parsed = Reference::parse(name)?;
    if parsed.is_local_only() {
        return Err(Error::LocalOnlyImage {
            name: name.to_owned(),
        });
    }
    let reference = match (parsed.domain(), &options.default_registry) {
        (Some(_), _) => parsed,
        (None, Some(registry)) => parsed.with_domain(registry),
        (None, None) => {
            return Err(Error::ShortNameNeedsRegistry {
                name: name.to_owned(),
            })
        }
    }
    .with_default_tag();
    let registry = reference.domain().unwrap_or_default().to_owned();
    let repository = reference.path().to_owned();
    let oci = match (reference.digest(), reference.tag()) {
        (Some(digest), _) => {
            oci_client::Reference::with_digest(registry.clone(), repository, digest.to_owned())
        }
        (None, tag) => {
            oci_client::Reference::with_tag(registry.clone(), repository, tag.unwrap_or("latest").to_owned())
        }
    };
    Ok(Target {
        shown: reference.to_string(),
        reference,
        registry,
        oci,
    })
}

/// Plain HTTP only for loopback registries and those the operator listed as insecure.
fn protocol_for(registry: &str, options: &PullOptions) -> ClientProtocol {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()));
    let loopback = matches!(host.map(|(h, _)| h), Some("localhost" | "127.0.0.1" | "[::1]"));
    if loopback || options.insecure_registries.iter().any(|r| r == registry) {
        ClientProtocol::HttpsExcept(vec![registry.to_owned()])
    } else {
        ClientProtocol::Https
    }
}

/// Fetches the image manifest for the host platform (through an index if the registry serves one) and
/// the digest of what the tag points to.
async fn fetch_image_manifest(
    client: &Client,
    target: &Target,
) -> Result<(Vec<u8>, Manifest, Digest), Error> {
    let (top, top_digest) = fetch_manifest(client, target, &target.oci).await?;
    let bytes = match media::parse_document(&top, "", &target.shown)? {
        Document::Manifest(_) => top,
        Document::Index(index) => {
            let chosen = media::choose_platform(&index, &target.shown)?;
            let reference = target.oci.clone_with_digest(chosen.digest.clone());
            let (bytes, digest) = fetch_manifest(client, target, &reference).await?;
            check_descriptor(chosen, &digest, bytes.len() as u64, &target.shown)?;
            bytes
        }
    };
    let Document::Manifest(manifest) = media::parse_document(&bytes, "", &target.shown)? else {
        let media_type = media::OCI_INDEX.to_owned();
        return Err(Error::UnsupportedMediaType {
            what: target.shown.clone(),
            media_type,
        });
    };
    if manifest.config.size > media::MAX_METADATA_BYTES {
        let what = format!("config of {}", target.shown);
        return Err(Error::TooLarge {
            what,
            limit: media::MAX_METADATA_BYTES,
        });
    }
    Ok((bytes, manifest, top_digest))
}

/// Fetches a manifest or index, bounds its size and computes its digest ourselves.
async fn fetch_manifest(
    client: &Client,
    target: &Target,
    reference: &oci_client::Reference,
) -> Result<(Vec<u8>, Digest), Error> {
    let (bytes, _) = client
        .pull_manifest_raw(reference, &RegistryAuth::Anonymous, media::ACCEPTED_MANIFESTS)
        .await
        .map_err(|e| classify(e, target))?;
    if bytes.len() as u64 > media::MAX_METADATA_BYTES {
        return Err(Error::TooLarge {
            what: format!("manifest of {}", target.shown),
            limit: media::MAX_METADATA_BYTES,
        });
    }
    let digest = Digest::of_bytes(&bytes);
    if let Some(pinned) = reference.digest().filter(|d| *d != digest.to_string()) {
        return Err(Error::DigestMismatch {
            what: target.shown.clone(),
            expected: pinned.to_owned(),
            actual: digest.to_string(),
        });
    }
    Ok((bytes.to_vec(), digest))
}

fn check_descriptor(descriptor: &Descriptor, digest: &Digest, size: u64, what: &str) -> Result<(), Error> {
    if descriptor.digest != digest.to_string() {
        let (expected, actual) = (descriptor.digest.clone(), digest.to_string());
        return Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected,
            actual,
        });
    }
    if descriptor.size != size {
        return Err(Error::SizeMismatch {
            what: what.to_owned(),
            expected: descriptor.size,
            actual: size,
        });
    }
    Ok(())
}

/// Sorts an oci-client error into the kinds the kubelet distinguishes.
fn classify(error: OciDistributionError, target: &Target) -> Error {
    let reference = target.shown.clone();
    let message = error.to_string();
    match &error {
        OciDistributionError::ImageManifestNotFoundError(_) => Error::PullNotFound { reference, message },
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                Error::PullUnauthorized { reference, message }
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                Error::PullNotFound { reference, message }
            } else {
                Error::PullFailed { reference, message }
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => Error::PullNotFound { reference, message },
        OciDistributionError::ServerError { code: 401 | 403, .. }
        | OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Error::PullUnauthorized { reference, message },
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
            let message = error_chain(e);
            Error::RegistryUnreachable {
                reference,
                registry: target.registry.clone(),
                message,
            }
        }
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => Error::DigestMismatch {
            what: reference,
            expected: expected.clone(),
            actual: actual.clone(),
        },
        _ => Error::PullFailed { reference, message },
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| Error::Task { source })?
}

#[cfg(test)]
mod tests;
