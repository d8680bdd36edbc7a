//! [`Images`] over the node's image store: local lookups and registry pulls, with the store's errors mapped
//! to the kubelet's waiting reasons (`InvalidImageName`, `ErrImagePull`).

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;

use super::images::{Ensured, ImageError, Images};
use crate::image::{Error, ErrorKind, Image, ImageStore, PullOptions, Reference};
use crate::runtime::container::ImageInfo;

/// Images from an [`ImageStore`].
pub struct StoreImages {
    store: Arc<ImageStore>,
    options: PullOptions,
}

impl StoreImages {
    /// Images from `store`, pulled with `options`.
    pub fn new(store: Arc<ImageStore>, options: PullOptions) -> Self {
        StoreImages { store, options }
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

impl Images for StoreImages {
    fn local(&self, image: &str) -> Result<Option<ImageInfo>, ImageError> {
        match self
            .store
            .lookup_with(image, self.options.default_registry.as_deref())
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

    fn pull<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Ensured, ImageError>> {
        Box::pin(async move {
            let started = Instant::now();
            let pulled = self
                .store
                .pull(image, &self.options)
                .await
                .map_err(|e| error(&e))?;
            let size = self
                .store
                .list()
                .ok()
                .and_then(|l| l.into_iter().find(|s| s.id == pulled.id))
                .map(|s| s.size)
                .unwrap_or(0);
            Ok(Ensured {
                info: image_info(image, &pulled),
                pulled: Some((size, started.elapsed())),
            })
        })
    }
}
