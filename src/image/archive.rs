//! Importing image archives: OCI image layouts (`skopeo copy ... oci-archive:`) and `docker save` /
//! `skopeo copy ... docker-archive:` tarballs, optionally gzip- or zstd-compressed as a whole.
//!
//! The archive is read once, as a stream: its metadata files (`oci-layout`, `index.json`,
//! `manifest.json`) are kept in memory up to 4 MiB each, every other regular file goes straight into the
//! blob store (files named `blobs/sha256/<hex>` must hash to that name). Then layout.rs works out which
//! images the archive holds and commit.rs checks and unpacks them. This module must not trust any path or
//! digest in the archive: names are only map keys, never file system paths.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Component, Path};

use super::digest::{read_bounded, Digest};
use super::error::Error;
use super::layout::{self, PendingImage};
use super::media;
use super::reference::Reference;
use super::{ImageStore, ImportOptions};

/// Archive files read into memory instead of the blob store.
const METADATA_FILES: &[&str] = &["oci-layout", "index.json", "manifest.json", "repositories"];

/// What one pass over an archive found.
#[derive(Debug, Default)]
pub(crate) struct ArchiveContents {
    /// Metadata file name to bytes.
    pub metadata: HashMap<String, Vec<u8>>,
    /// Archive path (cleaned, `/`-separated) to the blob it was stored as, with its size.
    pub blobs: HashMap<String, (Digest, u64)>,
    /// Symlinks (docker save links identical layers), resolved to archive paths.
    pub symlinks: HashMap<String, String>,
}

impl ArchiveContents {
    /// The blob stored for archive path `name`, following up to a few symlinks.
    pub(crate) fn blob(&self, name: &str) -> Option<&(Digest, u64)> {
        let mut name = clean_name(Path::new(name))?;
        for _ in 0..8 {
            if let Some(blob) = self.blobs.get(&name) {
                return Some(blob);
            }
            name = self.symlinks.get(&name)?.clone();
        }
        None
    }
}

impl ImageStore {
    /// Imports every image in the archive at `path` and returns the names stored.
    pub fn import(&self, path: &Path) -> Result<Vec<String>, Error> {
        self.import_with(path, &ImportOptions::default())
    }

    /// [`import`](Self::import) with options.
    pub fn import_with(&self, path: &Path, options: &ImportOptions) -> Result<Vec<String>, Error> {
        let _shared = self.shared()?;
        let contents = self.ingest_archive(path)?;
        let base = base_name(options, path)?;
        let images: Vec<PendingImage> = if contents.metadata.contains_key("oci-layout") {
            layout::oci_images(self, &contents, path, &base)?
        } else if contents.metadata.contains_key("manifest.json") {
            layout::docker_images(self, &contents, path, &base)?
        } else {
            return Err(Error::UnrecognizedArchive {
                path: path.to_owned(),
            });
        };
        let mut names = Vec::new();
        for image in images {
            self.commit_image(&image.manifest, &image.names, None)?;
            names.extend(image.names);
        }
        tracing::info!(archive = %path.display(), images = names.len(), "imported image archive");
        Ok(names)
    }

    fn ingest_archive(&self, path: &Path) -> Result<ArchiveContents, Error> {
        let archive_err = |source| Error::ReadArchive {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(archive_err)?;
        let mut buffered = BufReader::with_capacity(128 * 1024, file);
        let mut tar = tar::Archive::new(media::decompress(&mut buffered).map_err(archive_err)?);
        let mut contents = ArchiveContents::default();
        for entry in tar.entries().map_err(archive_err)? {
            let mut entry = entry.map_err(archive_err)?;
            let Some(name) = clean_name(&entry.path().map_err(archive_err)?) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Symlink => {
                    if let Some(target) = entry.link_name().map_err(archive_err)? {
                        let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                        if let Some(resolved) = clean_name(&parent.join(target)) {
                            contents.symlinks.insert(name, resolved);
                        }
                    }
                    continue;
                }
                _ => continue,
            }
            if METADATA_FILES.contains(&name.as_str()) {
                let what = format!("{}: {name}", path.display());
                let bytes = read_bounded(&mut entry, media::MAX_METADATA_BYTES, &what)?;
                contents.metadata.insert(name, bytes);
                continue;
            }
            let expected = name.strip_prefix("blobs/sha256/").and_then(Digest::from_hex);
            let mut writer = self.blob_writer()?;
            io::copy(&mut entry, &mut writer).map_err(archive_err)?;
            let committed = writer.commit(expected.as_ref()).map_err(|error| match error {
                Error::DigestMismatch { expected, actual, .. } => Error::DigestMismatch {
                    what: format!("archive {}: {name}", path.display()),
                    expected,
                    actual,
                },
                other => other,
            })?;
            contents.blobs.insert(name, committed);
        }
        Ok(contents)
    }
}

/// An archive path without `./`, leading `/` or `..` games; `None` for the archive root or escapes.
pub(crate) fn clean_name(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The repository for images the archive names by tag only or not at all.
fn base_name(options: &ImportOptions, path: &Path) -> Result<String, Error> {
    if let Some(base) = &options.base_name {
        let reference = Reference::parse(base)?;
        if reference.tag().is_some() || reference.digest().is_some() {
            return Err(Error::InvalidArchive {
                path: path.to_owned(),
                reason: format!("base name {base:?} must not have a tag or digest"),
            });
        }
        return Ok(reference.repository());
    }
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let stem = [".tar.gz", ".tar.zst", ".tgz", ".tar", ".oci", ".docker"]
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))
        .unwrap_or(&file_name);
    let sanitized: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let candidate = format!(
        "localhost/{}",
        sanitized.trim_matches(|c: char| !c.is_ascii_alphanumeric())
    );
    Ok(match Reference::parse(&candidate) {
        Ok(reference) if reference.tag().is_none() => candidate,
        _ => "localhost/image".to_owned(),
    })
}

#[cfg(test)]
mod tests;
