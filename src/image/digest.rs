//! SHA-256 content digests and the streaming helpers that compute them while bytes pass through.
//!
//! Owns the `sha256:<hex>` form the store files blobs and layers under. It must not accept any other
//! algorithm for storage: a digest that is not canonical SHA-256 is rejected before it becomes a path.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use super::error::Error;

const PREFIX: &str = "sha256:";

/// A canonical SHA-256 digest: 64 lowercase hex characters, safe to use as a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        s.strip_prefix(PREFIX)
            .and_then(Self::from_hex)
            .ok_or_else(|| Error::InvalidDigest {
                value: s.chars().take(200).collect(),
            })
    }

    /// Builds a digest from its 64 hex characters, if they are canonical.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let canonical = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        canonical.then(|| Self { hex: hex.to_owned() })
    }

    /// Digest of a byte slice.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex)
    }
}

/// Reads through to `inner`, hashing and counting every byte read.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and byte count of everything read so far.
    pub(crate) fn finish(self) -> (Digest, u64) {
        (
            Digest {
                hex: hex::encode(self.hasher.finalize()),
            },
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or_default();
        self.hasher.update(read);
        self.count += n as u64;
        Ok(n)
    }
}

/// Writes through to `inner`, hashing and counting every byte written.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest {
                hex: hex::encode(self.hasher.finalize()),
            },
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads all of `reader` into memory, failing with `TooLarge` past `limit` bytes.
pub(crate) fn read_bounded(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    let mut limited = reader.take(limit.saturating_add(1));
    limited
        .read_to_end(&mut bytes)
        .map_err(|source| Error::ReadFile {
            path: what.into(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: what.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_canonical_sha256() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Digest::parse(&good).map(|d| d.to_string()).ok(), Some(good));
        for bad in [
            "sha256:",
            "sha512:abcd",
            &format!("sha256:{}", "AB".repeat(32)),
            &format!("sha256:{}", "ab".repeat(33)),
            &format!("sha256:../{}", "a".repeat(61)),
            "",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashing_reader_and_writer_agree_with_of_bytes() {
        let data = b"hello layer".repeat(1000);
        let mut reader = HashingReader::new(&data[..]);
        io::copy(&mut reader, &mut io::sink()).expect("copy");
        let (read_digest, n) = reader.finish();
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(&data).expect("write");
        let (_, written_digest, m) = writer.finish();
        assert_eq!(read_digest, Digest::of_bytes(&data));
        assert_eq!(written_digest, read_digest);
        assert_eq!((n, m), (data.len() as u64, data.len() as u64));
    }

    #[test]
    fn read_bounded_refuses_oversize_input() {
        assert!(read_bounded(&[0u8; 10][..], 10, "x").is_ok());
        assert!(matches!(
            read_bounded(&[0u8; 11][..], 10, "x"),
            Err(Error::TooLarge { .. })
        ));
    }
}
