//! Talking to one registry: its TLS trust (`<certs-dir>/<host:port>/*.crt`), the authentication one
//! credential becomes, and oci-client's errors sorted into containerd's wording.

use std::path::{Path, PathBuf};

use oci_client::client::{Certificate, CertificateEncoding, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use super::{oci_config, protocol_for, Session, Target};
use crate::image::auth::{Credential, Secret};
use crate::image::digest::Digest;
use crate::image::{Error, PullOptions};

/// Largest CA bundle file read from a certs directory.
const MAX_CERT_BYTES: u64 = 1024 * 1024;

/// How every attempt against one registry connects.
pub(super) struct Config {
    protocol: ClientProtocol,
    plain_http: bool,
    certs: Vec<Certificate>,
}

impl Config {
    /// `http` or `https`.
    pub(super) fn scheme(&self) -> &'static str {
        if self.plain_http {
            "http"
        } else {
            "https"
        }
    }

    /// The registry's own CA certificates (PEM).
    pub(super) fn certs(&self) -> &[Certificate] {
        &self.certs
    }
}

/// The protocol and extra CA certificates for `registry`.
pub(super) fn client_config(registry: &str, options: &PullOptions) -> Result<Config, Error> {
    let certs = match &options.certs_dir {
        Some(dir) => registry_certs(dir, registry)?,
        None => Vec::new(),
    };
    let protocol = protocol_for(registry, options, !certs.is_empty());
    Ok(Config {
        plain_http: protocol != ClientProtocol::Https,
        protocol,
        certs,
    })
}

/// Every `*.crt` in `<dir>/<registry>/`, as docker and podman read `certs.d`. No directory: none.
fn registry_certs(dir: &Path, registry: &str) -> Result<Vec<Certificate>, Error> {
    // The registry name comes from a parsed reference (host chars, port, brackets): never a path, but
    // refuse anything that could climb anyway.
    if registry.is_empty() || registry.contains('/') || registry.starts_with('.') {
        return Ok(Vec::new());
    }
    let host_dir = dir.join(registry);
    let certs_err = |path: PathBuf| {
        let registry = registry.to_owned();
        move |source| Error::ReadRegistryCerts {
            registry,
            path,
            source,
        }
    };
    let entries = match std::fs::read_dir(&host_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(certs_err(host_dir)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(certs_err(host_dir.clone()))?.path();
        if path.extension().is_some_and(|ext| ext == "crt") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut certs = Vec::with_capacity(paths.len());
    for path in paths {
        let file = std::fs::File::open(&path).map_err(certs_err(path.clone()))?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CERT_BYTES), &mut data)
            .map_err(certs_err(path.clone()))?;
        tracing::debug!(registry, path = %path.display(), "trusting registry CA certificates");
        certs.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    Ok(certs)
}

/// A client for one attempt with `credential` (anonymous when `None`).
pub(super) async fn session(
    target: &Target,
    config: &Config,
    credential: Option<&Credential>,
) -> Result<Session, Error> {
    let client = Client::try_from(oci_config(config.protocol.clone(), &config.certs)).map_err(|e| {
        Error::RegistryFailed {
            registry: target.registry.clone(),
            message: format!("failed to set up the HTTP client: {e}"),
        }
    })?;
    let auth = match credential.map(|c| &c.secret) {
        None => RegistryAuth::Anonymous,
        Some(Secret::Basic { username, password }) if username.is_empty() && password.is_empty() => {
            RegistryAuth::Anonymous
        }
        Some(Secret::Basic { username, password }) => RegistryAuth::Basic(username.clone(), password.clone()),
        Some(Secret::RegistryToken(token)) => RegistryAuth::Bearer(token.clone()),
        Some(Secret::IdentityToken(token)) => {
            RegistryAuth::Bearer(super::token::exchange(target, config, token).await?)
        }
    };
    Ok(Session {
        client,
        auth,
        source: credential.map(|c| c.source.clone()),
    })
}

/// What was being fetched when a request failed.
#[derive(Clone, Copy)]
pub(super) enum Fetch<'a> {
    Manifest,
    Blob(&'a Digest),
}

/// Sorts an oci-client error into the kinds the kubelet distinguishes, in containerd's words.
pub(super) fn classify(
    error: OciDistributionError,
    target: &Target,
    session: &Session,
    fetch: Fetch<'_>,
) -> Error {
    let reference = target.shown.clone();
    let registry = target.registry.clone();
    let not_found = || match fetch {
        Fetch::Manifest => Error::ManifestNotFound {
            reference: reference.clone(),
        },
        Fetch::Blob(digest) => Error::RegistryFailed {
            registry: registry.clone(),
            message: format!("blob {digest}: not found"),
        },
    };
    let denied = || Error::AccessDenied {
        reference: reference.clone(),
        message: match &session.source {
            None => "authorization failed: no basic auth credentials".to_owned(),
            Some(source) => {
                format!("authorization failed: the registry refused the credentials from {source}")
            }
        },
    };
    match &error {
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                denied()
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found()
            } else {
                let messages: Vec<String> = envelope.errors.iter().map(|e| e.message.clone()).collect();
                Error::RegistryFailed {
                    registry,
                    message: messages.join("; "),
                }
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::ServerError { code: 401 | 403, .. }
        | OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => denied(),
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
            Error::RegistryUnreachable {
                registry,
                message: crate::sys::chain(e),
            }
        }
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            Error::DigestMismatch {
                what: reference,
                expected: expected.clone(),
                actual: actual.clone(),
            }
        }
        _ => Error::RegistryFailed {
            registry,
            message: error.to_string(),
        },
    }
}

/// An error in the middle of a blob stream: oci-client's own digest check, or the transfer breaking.
pub(super) fn stream_error(error: &std::io::Error, target: &Target, digest: &Digest) -> Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<DigestError>())
    {
        Some(DigestError::VerificationError { expected, actual }) => Error::DigestMismatch {
            what: format!("blob {digest}"),
            expected: expected.clone(),
            actual: actual.clone(),
        },
        _ => Error::RegistryFailed {
            registry: target.registry.clone(),
            message: format!("reading blob {digest}: {}", crate::sys::chain(error)),
        },
    }
}
