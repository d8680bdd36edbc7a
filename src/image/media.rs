//! Media types, manifest and index documents, platform choice and layer decompression.
//!
//! Owns the small, bounded JSON documents of an image (manifests, indexes) as peapod reads them and the
//! choice of decoder for a layer stream. It must not touch the store or the network.

use std::io::{self, BufRead, Read};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::Error;

/// Largest manifest, index, config or archive metadata file peapod reads into memory.
pub(crate) const MAX_METADATA_BYTES: u64 = 4 * 1024 * 1024;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub(crate) const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Manifest media types a registry may answer with, in preference order.
pub(crate) const ACCEPTED_MANIFESTS: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// A content descriptor as it appears in manifests and indexes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Descriptor {
    pub(crate) fn digest(&self) -> Result<Digest, Error> {
        Digest::parse(&self.digest)
    }

    pub(crate) fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// `os`/`architecture`/`variant` of an index entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema 2; they share this shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    pub manifests: Vec<Descriptor>,
}

/// What a manifest-ish document turned out to be.
pub(crate) enum Document {
    Manifest(Manifest),
    Index(Index),
}

/// Parses `bytes` as a manifest or an index, using the declared media type or, when absent, the shape.
pub(crate) fn parse_document(bytes: &[u8], declared: &str, what: &str) -> Result<Document, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let parse_err = |source| Error::ParseJson {
        what: what.to_owned(),
        source,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(parse_err)?;
    let media_type = probe
        .media_type
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(declared);
    let is_index = match media_type {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        "" => probe.manifests.is_some(),
        other => {
            return Err(Error::UnsupportedMediaType {
                what: what.to_owned(),
                media_type: other.to_owned(),
            })
        }
    };
    if is_index {
        serde_json::from_slice(bytes)
            .map(Document::Index)
            .map_err(parse_err)
    } else {
        serde_json::from_slice(bytes)
            .map(Document::Manifest)
            .map_err(parse_err)
    }
}

/// The running platform in Go's names (`linux`, `amd64`), as image indexes spell it.
pub(crate) fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

/// Picks the index entry for the running platform (variant ignored, as on single-variant hosts).
pub(crate) fn choose_platform<'a>(index: &'a Index, what: &str) -> Result<&'a Descriptor, Error> {
    let (os, arch) = host_platform();
    index
        .manifests
        .iter()
        .filter(|d| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | ""))
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == arch)
        })
        .ok_or_else(|| Error::NoMatchingPlatform {
            what: what.to_owned(),
            platform: format!("{os}/{arch}"),
        })
}

/// True for the layer media types peapod can unpack (compression is sniffed from the bytes).
pub(crate) fn is_layer_media_type(media_type: &str) -> bool {
    let base = media_type
        .trim_end_matches("+gzip")
        .trim_end_matches("+zstd")
        .trim_end_matches(".gzip")
        .trim_end_matches(".zstd");
    matches!(
        base,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar"
    )
}

/// Wraps a buffered layer stream in the decoder its magic bytes call for (gzip, zstd or none).
pub(crate) fn decompress<'a, R: BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(reader)?))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn decompress_sniffs_gzip_zstd_and_plain() {
        let data = b"plain tar bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).expect("gzip");
        let gz = gz.finish().expect("gzip finish");
        let zst = zstd::encode_all(&data[..], 3).expect("zstd");
        for input in [gz, zst, data.clone()] {
            let mut out = Vec::new();
            decompress(&input[..])
                .expect("decoder")
                .read_to_end(&mut out)
                .expect("read");
            assert_eq!(out, data);
        }
    }

    #[test]
    fn documents_are_told_apart_by_media_type_or_shape() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse_document(index, "", "x"), Ok(Document::Index(_))));
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"d","size":1},"layers":[]}"#;
        assert!(matches!(
            parse_document(manifest, "", "x"),
            Ok(Document::Manifest(_))
        ));
        let schema1 =
            br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}"#;
        assert!(matches!(
            parse_document(schema1, "", "x"),
            Err(Error::UnsupportedMediaType { .. })
        ));
    }

    #[test]
    fn platform_choice_picks_the_host_entry() {
        let (os, arch) = host_platform();
        let entry = |arch: &str, digest: &str| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
            annotations: None,
        };
        let index = Index {
            manifests: vec![entry("mips", "a"), entry(arch, "b")],
        };
        assert_eq!(
            choose_platform(&index, "x").map(|d| d.digest.as_str()).ok(),
            Some("b")
        );
        let other = Index {
            manifests: vec![entry("mips", "a")],
        };
        assert!(matches!(
            choose_platform(&other, "x"),
            Err(Error::NoMatchingPlatform { .. })
        ));
    }
}
