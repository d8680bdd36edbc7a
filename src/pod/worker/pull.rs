//! The kubelet's image manager for a container about to start (pkg/kubelet/images): the pull policy,
//! `Pulling`/`Pulled`/`BackOff`/`Failed` events and the pull backoff by image. The image source itself is
//! the [`crate::pod::images::Images`] the front end provides.

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::jiff::Timestamp;

use super::act::Outcome;
use super::Worker;
use crate::pod::events::Event;
use crate::pod::images::{pulled_message, ImageError, PullSecrets};
use crate::pod::status::Waiting;
use crate::runtime::container::ImageInfo;

impl Worker {
    /// Makes `c`'s image available under its pull policy; `Err` carries what the start comes to instead.
    pub(super) async fn ensure_image(
        &mut self,
        c: &Container,
        field_path: &str,
    ) -> Result<ImageInfo, Outcome> {
        let image = c.image.clone().unwrap_or_default();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let images = self.ctx.images.clone();
        let local = match images.local(&image) {
            Ok(l) => l,
            Err(e) => return Err(self.image_failed(field_path, e, None)),
        };
        match (local, policy.as_str()) {
            (Some(_), "Always") if !images.local_only(&image) => {}
            (Some(info), _) => {
                let event = Event::normal(
                    "Pulled",
                    format!("Container image {image:?} already present on machine"),
                );
                self.record(event.on(field_path.to_string()));
                return Ok(info);
            }
            (None, "Never") => {
                let e = ImageError {
                    reason: "ErrImageNeverPull".into(),
                    message: format!("Container image {image:?} is not present with pull policy of Never"),
                };
                return Err(self.image_failed(field_path, e, None));
            }
            (None, _) => {}
        }
        self.pull(&image, field_path).await
    }

    /// Pulls `image` unless it is in pull backoff.
    async fn pull(&mut self, image: &str, field_path: &str) -> Result<ImageInfo, Outcome> {
        let now = Timestamp::now();
        if self.pull_backoff.in_backoff(image, now) {
            let message = format!("Back-off pulling image {image:?}");
            self.record(Event::normal("BackOff", message.clone()).on(field_path.to_string()));
            return Err(Outcome::Waiting(Waiting {
                reason: "ImagePullBackOff".into(),
                message,
            }));
        }
        self.record(Event::normal("Pulling", format!("Pulling image {image:?}")).on(field_path.to_string()));
        let started = std::time::Instant::now();
        let outcome = self.ctx.images.pull(image, &PullSecrets::of(&self.pod)).await;
        if let Some(warning) = outcome.secrets_warning {
            self.record(Event::warning("FailedToRetrieveImagePullSecret", warning));
        }
        match outcome.result {
            Ok(ensured) => {
                self.pull_backoff.succeeded(image);
                let (size, took) = ensured.pulled.unwrap_or((0, started.elapsed()));
                let message = pulled_message(image, took, started.elapsed(), size);
                self.record(Event::normal("Pulled", message).on(field_path.to_string()));
                Ok(ensured.info)
            }
            Err(e) => {
                self.pull_backoff.failed(image, now);
                Err(self.image_failed(field_path, e, Some(image)))
            }
        }
    }

    /// The events of an image that is not available (`pulled`: the image a pull of failed), and the
    /// start's outcome: waiting with the image's reason. The worker syncs again after the retry period:
    /// inside the image's pull back-off window (from the second failure on) that sync shows
    /// `ImagePullBackOff`, as the kubelet's does.
    fn image_failed(&self, field_path: &str, e: ImageError, pulled: Option<&str>) -> Outcome {
        let ImageError { reason, message } = e;
        match pulled {
            Some(image) => {
                let event = Event::warning("Failed", format!("Failed to pull image {image:?}: {message}"));
                self.record(event.on(field_path.to_string()));
                self.record(Event::warning("Failed", format!("Error: {reason}")).on(field_path.to_string()));
            }
            None => self.record(Event::warning(&reason, message.clone()).on(field_path.to_string())),
        }
        Outcome::Retry(Waiting { reason, message })
    }
}
