//! Image references: `[host[:port]/]path[:tag][@digest]`, parsed the way containerd's and podman's
//! distribution `reference` package does, with the same error strings.
//!
//! Owns the grammar, the host-versus-path split and the local lookup candidates. It must not qualify short
//! names with any registry of its own choosing (peapod names no public registry): a short name stays short
//! until the caller supplies a default registry.

use std::fmt;

const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;
const DEFAULT_TAG: &str = "latest";
const LOCAL_HOST: &str = "localhost";

/// Why an image name did not parse. Every variant means the kubelet's `InvalidImageName`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceReason {
    #[error("repository name must have at least one component")]
    Empty,
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    #[error("unsupported digest algorithm")]
    UnsupportedDigest,
    #[error("invalid checksum digest length")]
    DigestLength,
    #[error("invalid checksum digest format")]
    DigestFormat,
}

/// An image name that is not a valid reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("couldn't parse image name {input:?}: {reason}")]
pub struct ReferenceError {
    /// The name as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: ReferenceReason,
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: Option<String>,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `s`, keeping a short name (no host) short.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        parse(s).map_err(|reason| ReferenceError {
            input: s.to_owned(),
            reason,
        })
    }

    /// `host[:port]`, if the name has one.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The repository path without host, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`algo:hex`), if given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// True when the name has no host part (`busybox`, `team/app:1`).
    pub fn is_short(&self) -> bool {
        self.domain.is_none()
    }

    /// True for `localhost/...` without a port: such images exist only locally and are never pulled.
    pub fn is_local_only(&self) -> bool {
        self.domain.as_deref() == Some(LOCAL_HOST)
    }

    /// `[host/]path`, the name without tag and digest.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The same reference with tag `latest` when it has neither tag nor digest (the kubelet's
    /// "apply default image tag").
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// The same reference under another host.
    pub fn with_domain(&self, domain: &str) -> Self {
        Self {
            domain: Some(domain.to_owned()),
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest`, without tag: `repo@digest`.
    pub fn with_digest_only(&self, digest: &str) -> Self {
        Self {
            tag: None,
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// Names to try, in order, when looking `self` up in the local store: the name itself (with the
    /// default tag), then for a short name `localhost/<name>` as podman does.
    pub fn local_candidates(&self) -> Vec<Reference> {
        let exact = self.clone().with_default_tag();
        if exact.is_short() {
            let local = exact.with_domain(LOCAL_HOST);
            vec![exact, local]
        } else {
            vec![exact]
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// True for a bare 64-hex image ID, which is never a repository name.
pub fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn parse(s: &str) -> Result<Reference, ReferenceReason> {
    if s.is_empty() {
        return Err(ReferenceReason::Empty);
    }
    if is_hex_identifier(s) {
        return Err(ReferenceReason::HexIdentifier(s.to_owned()));
    }
    let (named, digest) = match s.split_once('@') {
        Some((named, digest)) => (named, Some(parse_digest(digest)?)),
        None => (s, None),
    };
    let (domain, remainder) = split_domain(named);
    let (path, tag) = split_tag(remainder);
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceReason::Uppercase(path.to_owned()));
    }
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    check_path(path)?;
    let name_len = domain.map_or(0, |d| d.len() + 1) + path.len();
    if name_len > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceReason::NameTooLong);
    }
    Ok(Reference {
        domain: domain.map(str::to_owned),
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest,
    })
}

/// The docker/containerd rule: the first component is a host when it contains `.` or `:`, is
/// `localhost`, or has uppercase letters (which a path may not).
fn split_domain(named: &str) -> (Option<&str>, &str) {
    match named.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == LOCAL_HOST
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, named),
    }
}

/// Splits `path[:tag]`; the domain is already gone, so any `:` introduces the tag.
fn split_tag(remainder: &str) -> (&str, Option<&str>) {
    match remainder.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (remainder, None),
    }
}

fn check_tag(tag: &str) -> Result<(), ReferenceReason> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(word);
    let rest_ok = chars.all(|c| word(c) || c == '.' || c == '-');
    if first_ok && rest_ok && tag.len() <= TAG_LENGTH_MAX {
        Ok(())
    } else {
        Err(ReferenceReason::InvalidFormat)
    }
}

fn check_domain(domain: &str) -> Result<(), ReferenceReason> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(ReferenceReason::InvalidFormat)?;
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(ReferenceReason::InvalidFormat);
        }
        match after {
            "" => ("v6", None),
            _ => (
                "v6",
                Some(after.strip_prefix(':').ok_or(ReferenceReason::InvalidFormat)?),
            ),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReferenceReason::InvalidFormat);
        }
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    if host.split('.').all(component_ok) {
        Ok(())
    } else {
        Err(ReferenceReason::InvalidFormat)
    }
}

/// Path components: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, joined by `/`.
fn check_path(path: &str) -> Result<(), ReferenceReason> {
    if path.split('/').all(path_component_ok) {
        Ok(())
    } else {
        Err(ReferenceReason::InvalidFormat)
    }
}

fn path_component_ok(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes_ok = component
        .chars()
        .all(|c| alnum(c) || matches!(c, '.' | '_' | '-'));
    let ends_ok = component.starts_with(alnum) && component.ends_with(alnum);
    if !bytes_ok || !ends_ok {
        return false;
    }
    component
        .split(alnum)
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, "." | "_" | "__") || sep.chars().all(|c| c == '-'))
}

fn parse_digest(digest: &str) -> Result<String, ReferenceReason> {
    let (algorithm, hex) = digest.split_once(':').ok_or(ReferenceReason::InvalidFormat)?;
    let algorithm_ok = algorithm.starts_with(|c: char| c.is_ascii_alphabetic())
        && algorithm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'));
    if !algorithm_ok || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ReferenceReason::InvalidFormat);
    }
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceReason::UnsupportedDigest),
    };
    if hex.len() != expected_len {
        return Err(ReferenceReason::DigestLength);
    }
    if hex.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceReason::DigestFormat);
    }
    Ok(digest.to_owned())
}

#[cfg(test)]
mod tests;
