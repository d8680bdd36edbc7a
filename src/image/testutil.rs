//! Test fixtures: tar streams with arbitrary (hostile) names, layers and whole image archives built in
//! memory with the `tar` crate. Test-only; nothing here is compiled into peapod.

use std::io::Write;

use tar::{EntryType, Header};

use super::digest::Digest;

/// Builds a tar stream entry by entry, writing names byte for byte (no `..` or absolute-path checks).
pub(crate) struct Tar {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Tar {
    fn default() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }
}

impl Tar {
    fn header(kind: EntryType, name: &str, link: Option<&str>, mode: u32, size: u64) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_600_000_000);
        header.set_size(size);
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        header
    }

    pub(crate) fn entry(
        mut self,
        kind: EntryType,
        name: &str,
        link: Option<&str>,
        mode: u32,
        data: &[u8],
    ) -> Self {
        let header = Self::header(kind, name, link, mode, data.len() as u64);
        self.builder
            .append(&header, data)
            .expect("append to in-memory tar");
        self
    }

    pub(crate) fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(EntryType::Regular, name, None, 0o644, data)
    }

    pub(crate) fn dir(self, name: &str) -> Self {
        self.entry(EntryType::Directory, name, None, 0o755, b"")
    }

    pub(crate) fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(EntryType::Symlink, name, Some(target), 0o777, b"")
    }

    pub(crate) fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(EntryType::Link, name, Some(target), 0o644, b"")
    }

    /// A PAX extended header applying `records` to the next entry.
    pub(crate) fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.entry(EntryType::XHeader, "PaxHeaders/x", None, 0o644, &data)
    }

    /// A device node entry.
    pub(crate) fn device(mut self, kind: EntryType, name: &str, major: u32, minor: u32, mode: u32) -> Self {
        let mut header = Self::header(kind, name, None, mode, 0);
        header
            .set_device_major(major)
            .expect("gnu header has device fields");
        header
            .set_device_minor(minor)
            .expect("gnu header has device fields");
        header.set_cksum();
        self.builder.append(&header, &b""[..]).expect("append device");
        self
    }

    /// A GNU sparse file of `real_size` bytes holding `blocks` (offset, data of a 512-byte multiple except
    /// the last) and zeros elsewhere; at most four blocks.
    pub(crate) fn sparse(mut self, name: &str, real_size: u64, blocks: &[(u64, &[u8])]) -> Self {
        let data: Vec<u8> = blocks.iter().flat_map(|(_, d)| d.iter().copied()).collect();
        let mut header = Self::header(EntryType::GNUSparse, name, None, 0o644, data.len() as u64);
        let gnu = header.as_gnu_mut().expect("gnu header");
        let terminator = (real_size, &b""[..]);
        for (slot, (offset, bytes)) in gnu.sparse.iter_mut().zip(blocks.iter().chain([&terminator])) {
            slot.set_offset(*offset);
            slot.set_length(bytes.len() as u64);
        }
        gnu.set_real_size(real_size);
        header.set_cksum();
        self.builder.append(&header, &data[..]).expect("append sparse");
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish in-memory tar")
    }
}

/// Gzip-compresses `data`.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip finish")
}

/// A minimal image: config JSON for `diff_ids`, with a Cmd.
pub(crate) fn config_json(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(ToString::to_string).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": super::media::host_platform().1,
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .expect("serialize config")
}

/// An OCI image manifest for a config and layers (`(blob bytes, media type)`).
pub(crate) fn manifest_json(config: &[u8], layers: &[(Vec<u8>, &str)]) -> Vec<u8> {
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|(blob, media_type)| {
            serde_json::json!({"mediaType": media_type, "digest": Digest::of_bytes(blob).to_string(), "size": blob.len()})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": super::media::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::of_bytes(config).to_string(), "size": config.len()},
        "layers": layer_descs,
    }))
    .expect("serialize manifest")
}

/// A one-layer test image: (layer tar, gzip blob, config, manifest).
pub(crate) fn sample_image(content: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let layer = Tar::default().dir("bin").file("bin/hello", content).finish();
    let blob = gzip(&layer);
    let config = config_json(&[Digest::of_bytes(&layer)]);
    let manifest = manifest_json(
        &config,
        &[(blob.clone(), "application/vnd.oci.image.layer.v1.tar+gzip")],
    );
    (layer, blob, config, manifest)
}

/// Stores `layers` (uncompressed tars, bottom first) with a config and manifest, and commits the image as
/// `name`.
pub(crate) fn commit_layers(
    store: &super::ImageStore,
    name: &str,
    layers: &[Vec<u8>],
) -> Result<super::Image, super::Error> {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of_bytes(l)).collect();
    let config = config_json(&diff_ids);
    let blobs: Vec<(Vec<u8>, &str)> = layers
        .iter()
        .map(|l| (l.clone(), "application/vnd.oci.image.layer.v1.tar"))
        .collect();
    let manifest = manifest_json(&config, &blobs);
    for blob in layers.iter().chain([&config]) {
        store.write_blob_bytes(blob)?;
    }
    let _shared = store.shared()?;
    store.commit_image(&manifest, &[name.to_owned()], None)
}

/// Name of a blob inside an OCI layout.
pub(crate) fn blob_name(bytes: &[u8]) -> String {
    format!("blobs/sha256/{}", Digest::of_bytes(bytes).hex())
}

/// True when running as root (unpacking needs chown, mknod and trusted xattrs).
pub(crate) fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping: unpacking layers needs root (chown, mknod, trusted.* xattrs)");
    }
    root
}
