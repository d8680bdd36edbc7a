//! [`Images`] over the node's image store: local lookups (renewing the image's lease), registry pulls with
//! the node's credentials joined with a Pod's `imagePullSecrets`, one pull at a time per image and set of
//! credentials however many PodGroups ask, and the store's errors mapped to the kubelet's waiting reasons
//! (`InvalidImageName`, `ErrImagePull`). Also the node's image garbage collection task.
//!
//! A pulled image is reused by any Pod whose policy allows a cached image (`IfNotPresent`, `Never`),
//! whatever its secrets, as kubelets up to 1.32 do (the `KubeletEnsureSecretPulledImages` alpha is not
//! implemented); `Always` pulls again with the Pod's own credentials. This module must not log a secret.

mod gc;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt, Shared};

use super::images::{Ensured, ImageError, Images, PullOutcome, PullSecrets};
use crate::image::auth::Keyring;
use crate::image::{Error, ErrorKind, Image, ImageStore, PullOptions, Reference};
use crate::runtime::container::ImageInfo;

pub use gc::{images_in_use, GC_PERIOD};

/// One secret as the API holds it: its type and data (values decoded). `Debug` shows no data.
#[derive(Clone)]
pub struct SecretData {
    /// `kubernetes.io/dockerconfigjson`, `kubernetes.io/dockercfg`, ...
    pub secret_type: String,
    /// Key to decoded value.
    pub data: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("secret_type", &self.secret_type)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A pull secret that could not be read (logged; the pull goes on without it). The message is the cause's.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ReadSecretError {
    /// The secret's namespace.
    pub namespace: String,
    /// The secret's name.
    pub name: String,
    /// What the source reported.
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

/// Where `imagePullSecrets` are read from at pull time (the API server in cluster mode).
pub trait PullSecretSource: Send + Sync {
    /// Secret `name` of `namespace`; `Ok(None)` when it does not exist.
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, ReadSecretError>>;
}

/// Identifies a pull others may join: the image and exactly the Pod credentials it uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    image: String,
    /// Namespace and secret names; `None` for pulls with the node's credentials only.
    secrets: Option<(String, Vec<String>)>,
}

type Flight = Shared<BoxFuture<'static, Result<Ensured, ImageError>>>;
type Flights = Arc<Mutex<HashMap<FlightKey, (u64, Flight)>>>;

/// Removes a finished (or panicked) pull from the table, unless a newer one took its key.
struct Landing {
    flights: Flights,
    key: FlightKey,
    id: u64,
}

impl Drop for Landing {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            flights.remove(&self.key);
        }
    }
}

/// Images from an [`ImageStore`].
pub struct StoreImages {
    store: Arc<ImageStore>,
    options: PullOptions,
    secrets: Option<Arc<dyn PullSecretSource>>,
    flights: Flights,
    next_flight: std::sync::atomic::AtomicU64,
}

impl StoreImages {
    /// Images from `store`, pulled with `options` (whose keyring holds the node's credentials).
    pub fn new(store: Arc<ImageStore>, options: PullOptions) -> Self {
        StoreImages {
            store,
            options,
            secrets: None,
            flights: Arc::default(),
            next_flight: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Reads Pods' `imagePullSecrets` from `source` (cluster mode). Without one they cannot be read, and
    /// pulls use the node's credentials only.
    pub fn with_pull_secrets(mut self, source: Arc<dyn PullSecretSource>) -> Self {
        self.secrets = Some(source);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }

    /// The Pod's secrets as a keyring, and the names that could not be read.
    async fn pod_keyring(&self, secrets: &PullSecrets) -> Result<(Keyring, Vec<String>), ImageError> {
        let mut keyring = Keyring::default();
        let mut missing = Vec::new();
        for name in &secrets.names {
            let found = match &self.secrets {
                Some(source) => source.get(&secrets.namespace, name).await,
                None => Ok(None),
            };
            let data = match found {
                Ok(Some(data)) => data,
                Ok(None) => {
                    missing.push(name.clone());
                    continue;
                }
                Err(error) => {
                    tracing::info!(namespace = %secrets.namespace, secret = %name, %error, "unable to retrieve pull secret, the image pull may not succeed");
                    missing.push(name.clone());
                    continue;
                }
            };
            let source = format!("secret {}/{name}", secrets.namespace);
            match Keyring::from_secret(&data.secret_type, &data.data, &source) {
                Ok(Some(found)) => keyring = Keyring::union(&keyring, &found),
                Ok(None) => {}
                Err(e) => return Err(error(&Error::ReadCredentials { source: e })),
            }
        }
        Ok((keyring, missing))
    }

    /// The shared pull for `key`, starting it if nobody else has.
    fn flight(&self, key: FlightKey, options: PullOptions) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, flight)) = flights.get(&key) {
            tracing::debug!(image = %key.image, "joining an image pull in progress");
            return flight.clone();
        }
        let id = self
            .next_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let landing = Landing {
            flights: self.flights.clone(),
            key: key.clone(),
            id,
        };
        let store = self.store.clone();
        let image = key.image.clone();
        let task = tokio::spawn(async move {
            let _landing = landing;
            let started = Instant::now();
            let pulled = store.pull(&image, &options).await.map_err(|e| error(&e))?;
            let size = store
                .list()
                .ok()
                .and_then(|l| l.into_iter().find(|s| s.id == pulled.id))
                .map_or(0, |s| s.size);
            Ok(Ensured {
                info: image_info(&image, &pulled),
                pulled: Some((size, started.elapsed())),
            })
        });
        let flight = async move {
            task.await.unwrap_or_else(|e| {
                Err(ImageError {
                    reason: "ErrImagePull".into(),
                    message: format!("image pull task failed: {e}"),
                })
            })
        }
        .boxed()
        .shared();
        flights.insert(key, (id, flight.clone()));
        flight
    }
}

fn error(e: &Error) -> ImageError {
    let reason = match e.kind() {
        ErrorKind::InvalidName => "InvalidImageName",
        _ => "ErrImagePull",
    };
    ImageError {
        reason: reason.to_string(),
        message: crate::runtime::chain(e),
    }
}

/// What the runtime needs from a stored image; `spec_name` is the reference as the pod spec wrote it.
pub fn image_info(spec_name: &str, image: &Image) -> ImageInfo {
    ImageInfo {
        name: spec_name.to_string(),
        id: image.id.clone(),
        repo_digest: image.repo_digest.clone(),
        layers: image.layers.clone(),
        entrypoint: image.entrypoint().to_vec(),
        cmd: image.cmd().to_vec(),
        env: image.env().to_vec(),
        working_dir: image.working_dir().unwrap_or_default().to_string(),
        user: image.user().unwrap_or_default().to_string(),
        stop_signal: image.stop_signal().ok().flatten().map(|s| s.to_string()),
    }
}

/// The kubelet's `FailedToRetrieveImagePullSecret` message.
fn secrets_warning(missing: &[String]) -> Option<String> {
    (!missing.is_empty()).then(|| {
        format!(
            "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
            missing.join(", ")
        )
    })
}

impl Images for StoreImages {
    fn local(&self, image: &str) -> Result<Option<ImageInfo>, ImageError> {
        match self
            .store
            .lookup_for_use(image, self.options.default_registry.as_deref())
        {
            Ok(found) => Ok(found.map(|i| image_info(image, &i))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(error(&e)),
        }
    }

    fn local_only(&self, image: &str) -> bool {
        Reference::parse(image)
            .map(|r| r.is_local_only())
            .unwrap_or(false)
    }

    fn pull<'a>(&'a self, image: &'a str, secrets: &'a PullSecrets) -> BoxFuture<'a, PullOutcome> {
        Box::pin(async move {
            let (pod_keyring, missing) = match self.pod_keyring(secrets).await {
                Ok(found) => found,
                Err(e) => {
                    return PullOutcome {
                        result: Err(e),
                        secrets_warning: None,
                    }
                }
            };
            let key = FlightKey {
                image: image.to_owned(),
                secrets: (!secrets.names.is_empty())
                    .then(|| (secrets.namespace.clone(), secrets.names.clone())),
            };
            let options = PullOptions {
                keyring: Keyring::union(&pod_keyring, &self.options.keyring),
                ..self.options.clone()
            };
            PullOutcome {
                result: self.flight(key, options).await,
                secrets_warning: secrets_warning(&missing),
            }
        })
    }
}

#[cfg(test)]
mod tests;
