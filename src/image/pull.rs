//! Pulling images from OCI registries with oci-client: HTTPS (trusting the system roots plus the CA
//! certificates of `<certs-dir>/<host:port>/*.crt`) except for loopback registries without such a
//! directory and explicitly insecure ones; credentials from the keyring, tried most specific first;
//! manifest lists resolved to linux/<host arch>; blobs streamed into the store and verified; layers
//! unpacked on the blocking pool.
//!
//! Failures are worded as containerd words them (`failed to pull and unpack image "R": failed to resolve
//! reference "R": R: not found`) and sorted into not found / unauthorized / unreachable / bad digest so the
//! runtime can give the kubelet's reasons. This module must not follow foreign layer URLs (descriptors are
//! rebuilt without `urls`), pull `localhost/...` names, pick a registry for short names by itself, or log
//! a secret.

mod registry;
#[cfg(test)]
mod tests;
mod token;

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use super::auth::Credential;
use super::digest::Digest;
use super::error::{write_err, Error};
use super::media::{self, Descriptor, Document, Manifest};
use super::reference::Reference;
use super::{Image, ImageStore, PullOptions};
use registry::{classify, stream_error, Fetch};

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

/// One attempt's connection: the client and the authentication it sends.
struct Session {
    client: Client,
    auth: RegistryAuth,
    /// Where the credential came from (`None`: anonymous), for messages.
    source: Option<String>,
}

impl ImageStore {
    /// Pulls `name` into the store and returns it under its fully qualified name. Every credential the
    /// keyring matches is tried in turn (anonymous when none does) while the registry refuses access.
    pub async fn pull(&self, name: &str, options: &PullOptions) -> Result<Image, Error> {
        let target = pull_target(name, options)?;
        let wrap = |source| Error::PullImage {
            reference: target.shown.clone(),
            source: Box::new(source),
        };
        let config = registry::client_config(&target.registry, options).map_err(wrap)?;
        let credentials = options.keyring.lookup(&target.reference.repository());
        let attempts: Vec<Option<Credential>> = if credentials.is_empty() {
            vec![None]
        } else {
            credentials.into_iter().map(Some).collect()
        };
        let mut first_error = None;
        for credential in attempts {
            let result = self.pull_with(&target, &config, credential.as_ref()).await;
            let error = match result {
                Ok(image) => return Ok(image),
                Err(error) => error,
            };
            let source = credential.as_ref().map_or("anonymous", |c| c.source.as_str());
            tracing::debug!(image = %target.shown, credentials = source, error = %crate::sys::chain(&error), "pull attempt failed");
            // Another credential can only help when this one was refused (registries answer 404 for
            // private repositories too); a dead registry or bad content will not change.
            let retry = matches!(
                error.kind(),
                super::ErrorKind::Unauthorized | super::ErrorKind::NotFound
            );
            first_error.get_or_insert(error);
            if !retry {
                break;
            }
        }
        let error = first_error.unwrap_or_else(|| Error::RegistryFailed {
            registry: target.registry.clone(),
            message: "no pull attempt was made".into(),
        });
        Err(wrap(error))
    }

    /// One pull with one credential.
    async fn pull_with(
        &self,
        target: &Target,
        config: &registry::Config,
        credential: Option<&Credential>,
    ) -> Result<Image, Error> {
        let session = registry::session(target, config, credential).await?;
        let store = self.clone();
        let shared = blocking(move || store.shared()).await?;
        tracing::info!(
            image = %target.shown,
            registry = %target.registry,
            credentials = session.source.as_deref().unwrap_or("anonymous"),
            "pulling image"
        );
        let (manifest_bytes, manifest, top_digest) = fetch_image_manifest(&session, target).await?;
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !self.has_blob(&descriptor.digest()?) {
                self.fetch_blob(&session, target, descriptor).await?;
            }
        }
        let repo_digest = format!("{}@{top_digest}", target.reference.repository());
        let (store, names) = (self.clone(), vec![target.shown.clone()]);
        let image = blocking(move || {
            let image = store.commit_image(&manifest_bytes, &names, Some(repo_digest))?;
            store.touch_lease(&image.id).map(|()| image)
        })
        .await?;
        drop(shared);
        Ok(image)
    }

    /// Streams one blob into the store through a blocking writer, verifying size and digest.
    async fn fetch_blob(
        &self,
        session: &Session,
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
        let mut stream = session
            .client
            .pull_blob_stream(&target.oci, &request)
            .await
            .map_err(|e| classify(e, target, session, Fetch::Blob(&digest)))?;
        let (sender, writer) = spawn_blob_writer(self.clone(), digest.clone(), expected_size);
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // Let the writer finish (its partial blob fails verification and is removed) before
                    // reporting, so no temporary outlives the pull.
                    drop(sender);
                    let _ = writer.await;
                    return Err(stream_error(&e, target, &digest));
                }
            };
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

/// Plain HTTP only for loopback registries without CA certificates of their own, and for those the
/// operator listed as insecure.
fn protocol_for(registry: &str, options: &PullOptions, has_certs: bool) -> ClientProtocol {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()));
    let loopback = matches!(host.map(|(h, _)| h), Some("localhost" | "127.0.0.1" | "[::1]"));
    if (loopback && !has_certs) || options.insecure_registries.iter().any(|r| r == registry) {
        ClientProtocol::HttpsExcept(vec![registry.to_owned()])
    } else {
        ClientProtocol::Https
    }
}

/// Fetches the image manifest for the host platform (through an index if the registry serves one) and
/// the digest of what the tag points to.
async fn fetch_image_manifest(
    session: &Session,
    target: &Target,
) -> Result<(Vec<u8>, Manifest, Digest), Error> {
    let (top, top_digest) = fetch_manifest(session, target, &target.oci).await?;
    let bytes = match media::parse_document(&top, "", &target.shown)? {
        Document::Manifest(_) => top,
        Document::Index(index) => {
            let chosen = media::choose_platform(&index, &target.shown)?;
            let reference = target.oci.clone_with_digest(chosen.digest.clone());
            let (bytes, digest) = fetch_manifest(session, target, &reference).await?;
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
    session: &Session,
    target: &Target,
    reference: &oci_client::Reference,
) -> Result<(Vec<u8>, Digest), Error> {
    let (bytes, _) = session
        .client
        .pull_manifest_raw(reference, &session.auth, media::ACCEPTED_MANIFESTS)
        .await
        .map_err(|e| classify(e, target, session, Fetch::Manifest))?;
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

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| Error::Task { source })?
}

/// `ClientConfig` is not `Clone`; each attempt builds its own from these parts.
fn oci_config(protocol: ClientProtocol, certs: &[oci_client::client::Certificate]) -> ClientConfig {
    ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        extra_root_certificates: certs.to_vec(),
        ..ClientConfig::default()
    }
}
