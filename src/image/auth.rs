//! Registry credentials: docker `config.json` / `.dockercfg` documents (a node's `--registry-config`, a
//! Pod's `imagePullSecrets`) turned into a [`Keyring`] that answers "which credentials may I try for this
//! repository", the way the kubelet's `pkg/credentialprovider` keyring does.
//!
//! Matching follows the kubelet: each entry's key is its URL without scheme, with a leading `/v1/` or
//! `/v2/` path element dropped; a key matches a repository (`host[:port]/path`) when the ports are equal,
//! the host names have as many dot-separated labels and each label matches as a glob (`*.example.com`),
//! and the key's path is a string prefix of the repository's path. Keys are tried most specific first
//! (reverse lexical order), every matching credential in turn; keyrings joined with [`Keyring::union`]
//! are tried in order (a Pod's secrets before the node's file).
//!
//! Secrets never reach a log or an error message: [`Credential`]'s `Debug` is redacted and JSON errors are
//! reported by position only (serde's messages quote the offending value). This module must not do I/O
//! beyond reading a config file it is given, nor talk to registries.

mod keyring;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

pub use keyring::Keyring;

/// Secret type of `imagePullSecrets` holding a `config.json` document under `.dockerconfigjson`.
pub const SECRET_TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Secret type of the legacy `.dockercfg` form (the `auths` map alone) under `.dockercfg`.
pub const SECRET_TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
const KEY_DOCKER_CONFIG_JSON: &str = ".dockerconfigjson";
const KEY_DOCKERCFG: &str = ".dockercfg";
/// Largest credentials document read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// What a credential proves, in the forms a docker config entry can hold.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Secret {
    /// `auth` (base64 of `user:password`) or `username` + `password`; both empty means anonymous.
    Basic { username: String, password: String },
    /// `identitytoken`: an OAuth2 refresh token exchanged at the registry's token endpoint.
    IdentityToken(String),
    /// `registrytoken`: a bearer token sent to the registry as is.
    RegistryToken(String),
}

/// One credential and where it came from.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credential {
    /// The secret itself.
    pub secret: Secret,
    /// Where it was read, for logs and messages: `--registry-config /root/.docker/config.json`,
    /// `secret default/regcred`.
    pub source: String,
}

impl Secret {
    fn kind(&self) -> &'static str {
        match self {
            Secret::Basic { username, .. } if username.is_empty() => "anonymous",
            Secret::Basic { .. } => "basic",
            Secret::IdentityToken(_) => "identitytoken",
            Secret::RegistryToken(_) => "registrytoken",
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(<redacted>)", self.kind())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("secret", &self.secret)
            .field("source", &self.source)
            .finish()
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("failed to read registry config {path}")]
    ReadConfig { path: PathBuf, source: std::io::Error },
    #[error("registry config {path} is larger than {MAX_CONFIG_BYTES} bytes")]
    ConfigTooLarge { path: PathBuf },
    #[error("failed to parse {what}: invalid JSON at line {line} column {column}")]
    ParseConfig {
        what: String,
        line: usize,
        column: usize,
    },
    #[error("{what}: entry {registry:?}: auth is not base64 of username:password")]
    InvalidAuthField { what: String, registry: String },
    #[error("{what}: no {key} key in a secret of type {secret_type}")]
    MissingSecretKey {
        what: String,
        key: &'static str,
        secret_type: String,
    },
}

/// A parser of one credentials document form.
type ParseFn = fn(&[u8], &str) -> Result<Keyring, AuthError>;

/// One entry of an `auths` map, as docker and the kubelet write it.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Entry {
    auth: String,
    username: String,
    password: String,
    identitytoken: String,
    registrytoken: String,
}

/// A `config.json` document (only `auths` is used; credential helpers are not run).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ConfigJson {
    auths: BTreeMap<String, Entry>,
    creds_store: Option<String>,
    cred_helpers: Option<BTreeMap<String, String>>,
}

impl Keyring {
    /// Reads a docker `config.json` (`{"auths": {...}}`) from `path`, as `--registry-config` names it.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let read_err = |source| AuthError::ReadConfig {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1), &mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(AuthError::ConfigTooLarge {
                path: path.to_owned(),
            });
        }
        Self::from_config_json(&bytes, &format!("--registry-config {}", path.display()))
    }

    /// Parses a `config.json` document; `source` names it in logs and errors.
    pub fn from_config_json(bytes: &[u8], source: &str) -> Result<Self, AuthError> {
        let config: ConfigJson = parse(bytes, source)?;
        if config.creds_store.is_some() || config.cred_helpers.is_some() {
            tracing::warn!(
                source,
                "credential helpers (credsStore, credHelpers) are not supported; using auths only"
            );
        }
        Self::from_entries(config.auths, source)
    }

    /// Parses the legacy `.dockercfg` form: the `auths` map alone.
    pub fn from_dockercfg(bytes: &[u8], source: &str) -> Result<Self, AuthError> {
        let auths: BTreeMap<String, Entry> = parse(bytes, source)?;
        Self::from_entries(auths, source)
    }

    /// The credentials of an image pull secret: type `kubernetes.io/dockerconfigjson` or
    /// `kubernetes.io/dockercfg` with their data key; `None` for any other type (the kubelet skips those).
    pub fn from_secret(
        secret_type: &str,
        data: &BTreeMap<String, Vec<u8>>,
        source: &str,
    ) -> Result<Option<Self>, AuthError> {
        let (key, parse): (_, ParseFn) = match secret_type {
            SECRET_TYPE_DOCKER_CONFIG_JSON => (KEY_DOCKER_CONFIG_JSON, Self::from_config_json),
            SECRET_TYPE_DOCKERCFG => (KEY_DOCKERCFG, Self::from_dockercfg),
            _ => return Ok(None),
        };
        match data.get(key).filter(|bytes| !bytes.is_empty()) {
            Some(bytes) => parse(bytes, source).map(Some),
            None => Err(AuthError::MissingSecretKey {
                what: source.to_owned(),
                key,
                secret_type: secret_type.to_owned(),
            }),
        }
    }

    fn from_entries(auths: BTreeMap<String, Entry>, source: &str) -> Result<Self, AuthError> {
        let mut keyring = Keyring::default();
        for (registry, entry) in auths {
            let secret = entry_secret(entry).ok_or_else(|| AuthError::InvalidAuthField {
                what: source.to_owned(),
                registry: registry.clone(),
            })?;
            let credential = Credential {
                secret,
                source: source.to_owned(),
            };
            keyring.add(&registry, credential);
        }
        Ok(keyring)
    }
}

/// The secret an entry holds: a token wins over a username; `auth` wins over `username`/`password` (it is
/// what docker writes). `None` when `auth` is not base64 of `user:password`.
fn entry_secret(entry: Entry) -> Option<Secret> {
    if !entry.identitytoken.is_empty() {
        return Some(Secret::IdentityToken(entry.identitytoken));
    }
    if !entry.registrytoken.is_empty() {
        return Some(Secret::RegistryToken(entry.registrytoken));
    }
    if entry.auth.is_empty() {
        return Some(Secret::Basic {
            username: entry.username,
            password: entry.password,
        });
    }
    // Go's base64 decoder skips line breaks; nothing else is forgiven.
    let compact: String = entry.auth.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let decoded = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Secret::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Parses JSON, reporting only the position of an error (serde's messages quote the offending value).
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, AuthError> {
    serde_json::from_slice(bytes).map_err(|e| AuthError::ParseConfig {
        what: what.to_owned(),
        line: e.line(),
        column: e.column(),
    })
}

#[cfg(test)]
mod tests;
