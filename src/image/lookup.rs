//! Finding stored images by name, digest or ID; listing and removing names.
//!
//! A short name matches its exact stored name, then `localhost/<name>` (podman's rule), then, when the
//! caller has a default registry, `<registry>/<name>` (where a pull of that short name stored it). This
//! module must not pull and must not delete content: `remove` only drops the name.

use super::digest::Digest;
use super::error::Error;
use super::reference::{is_hex_identifier, Reference};
use super::refs::{RefEntry, RefIndex};
use super::{Image, ImageStore, ImageSummary};

impl ImageStore {
    /// Looks `name` up locally (exact name, then `localhost/<name>` for short names), unpacking any layer
    /// that has gone missing. `Ok(None)` when no stored name matches.
    pub fn lookup(&self, name: &str) -> Result<Option<Image>, Error> {
        self.lookup_with(name, None)
    }

    /// Like [`lookup`](Self::lookup), also trying `<default_registry>/<name>` for short names.
    pub fn lookup_with(&self, name: &str, default_registry: Option<&str>) -> Result<Option<Image>, Error> {
        let _shared = self.shared()?;
        let index = self.load_refs()?;
        match resolve(&index, name, default_registry)? {
            Some((stored, entry)) => self.load_image(&stored, &entry).map(Some),
            None => Ok(None),
        }
    }

    /// [`lookup_with`](Self::lookup_with) for starting a container: also renews the image's lease, under
    /// the same shared lock, so garbage collection cannot remove it before the container is recorded.
    pub fn lookup_for_use(&self, name: &str, default_registry: Option<&str>) -> Result<Option<Image>, Error> {
        let _shared = self.shared()?;
        let index = self.load_refs()?;
        let Some((stored, entry)) = resolve(&index, name, default_registry)? else {
            return Ok(None);
        };
        let image = self.load_image(&stored, &entry)?;
        self.touch_lease(&image.id)?;
        Ok(Some(image))
    }

    /// Every stored name with its image ID, size and creation time, sorted by name.
    pub fn list(&self) -> Result<Vec<ImageSummary>, Error> {
        let index = self.load_refs()?;
        Ok(index
            .images
            .into_iter()
            .map(|(name, entry)| ImageSummary {
                name,
                id: entry.config,
                size: entry.size,
                created: entry.created,
            })
            .collect())
    }

    /// Removes the stored name `name` resolves to and returns it. Blobs and layers stay until garbage
    /// collection.
    pub fn remove(&self, name: &str) -> Result<String, Error> {
        let index = self.load_refs()?;
        let (stored, _) = resolve(&index, name, None)?.ok_or_else(|| Error::ImageNotFound {
            name: name.to_owned(),
        })?;
        let removed = self.update_refs(|index| index.images.remove(&stored).is_some())?;
        if !removed {
            return Err(Error::ImageNotFound {
                name: name.to_owned(),
            });
        }
        tracing::info!(image = %stored, "removed image name");
        Ok(stored)
    }
}

/// The stored name and entry `name` refers to.
fn resolve(
    index: &RefIndex,
    name: &str,
    default_registry: Option<&str>,
) -> Result<Option<(String, RefEntry)>, Error> {
    if let Some(id) = image_id(name) {
        let found = index
            .images
            .iter()
            .find(|(_, entry)| entry.config == id.to_string());
        return Ok(found.map(|(stored, entry)| (stored.clone(), entry.clone())));
    }
    let reference = Reference::parse(name)?;
    let mut candidates = reference.local_candidates();
    if let (true, Some(registry)) = (reference.is_short(), default_registry) {
        candidates.push(reference.with_domain(registry).with_default_tag());
    }
    for candidate in &candidates {
        if let Some(entry) = index.images.get(&candidate.to_string()) {
            return Ok(Some((candidate.to_string(), entry.clone())));
        }
    }
    let Some(digest) = reference.digest() else {
        return Ok(None);
    };
    // `repo@digest` also matches any stored name of that repository whose manifest (or pulled list) is it.
    let pinned_suffix = format!("@{digest}");
    for candidate in &candidates {
        let repository = candidate.repository();
        let found = index.images.iter().find(|(stored, entry)| {
            let same_repo = Reference::parse(stored).is_ok_and(|r| r.repository() == repository);
            let same_content = entry.manifest == digest
                || entry
                    .repo_digest
                    .as_deref()
                    .is_some_and(|r| r.ends_with(&pinned_suffix));
            same_repo && same_content
        });
        if let Some((stored, entry)) = found {
            return Ok(Some((stored.clone(), entry.clone())));
        }
    }
    Ok(None)
}

/// `sha256:<64 hex>` or bare 64 hex: an image ID rather than a name.
fn image_id(name: &str) -> Option<Digest> {
    if is_hex_identifier(name) {
        return Digest::from_hex(name);
    }
    name.strip_prefix("sha256:")
        .filter(|hex| is_hex_identifier(hex))
        .and_then(Digest::from_hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[(&str, &str, Option<&str>)]) -> RefIndex {
        let mut index = RefIndex::default();
        for (name, manifest, repo_digest) in names {
            index.images.insert(
                (*name).to_owned(),
                RefEntry {
                    manifest: (*manifest).to_owned(),
                    config: format!("sha256:{}", "c".repeat(64)),
                    repo_digest: repo_digest.map(str::to_owned),
                    size: 0,
                    created: None,
                    added: 0,
                },
            );
        }
        index
    }

    #[test]
    fn resolve_follows_the_candidate_order() {
        let m = format!("sha256:{}", "a".repeat(64));
        let l = format!("sha256:{}", "b".repeat(64));
        let idx = index(&[
            ("localhost/busybox:latest", &m, None),
            ("busybox:1", &m, None),
            (
                "reg.io:5000/app:latest",
                &m,
                Some(&format!("reg.io:5000/app@{l}")),
            ),
        ]);
        let found = |name: &str, registry: Option<&str>| {
            resolve(&idx, name, registry)
                .expect("valid")
                .map(|(stored, _)| stored)
        };
        assert_eq!(
            found("busybox", None).as_deref(),
            Some("localhost/busybox:latest")
        );
        assert_eq!(found("busybox:1", None).as_deref(), Some("busybox:1"));
        assert_eq!(found("busybox:2", None), None);
        assert_eq!(
            found("app", Some("reg.io:5000")).as_deref(),
            Some("reg.io:5000/app:latest")
        );
        assert_eq!(found("app", None), None);
        assert_eq!(
            found(&format!("reg.io:5000/app@{l}"), None).as_deref(),
            Some("reg.io:5000/app:latest")
        );
        assert_eq!(
            found(&format!("localhost/busybox@{m}"), None).as_deref(),
            Some("localhost/busybox:latest")
        );
        assert_eq!(
            found(&format!("sha256:{}", "c".repeat(64)), None).as_deref(),
            Some("busybox:1")
        );
        assert!(matches!(
            resolve(&idx, "Bad Name", None),
            Err(Error::InvalidReference(_))
        ));
    }
}
