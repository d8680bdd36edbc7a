//! The kubelet's keyring (`pkg/credentialprovider/keyring.go`): credentials indexed by registry URL key,
//! looked up by repository with glob host labels and path prefixes, most specific key first.

use std::collections::BTreeMap;

use super::Credential;

/// Credentials to try for a repository. Each part (one per [`Keyring::union`] operand) is searched in turn.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    parts: Vec<BTreeMap<String, Vec<Credential>>>,
}

impl Keyring {
    /// Adds a credential for the config key `location` (`host[:port][/path]`, optionally with a scheme).
    pub(super) fn add(&mut self, location: &str, credential: Credential) {
        let Some(key) = index_key(location) else {
            tracing::warn!(source = %credential.source, entry = location, "ignoring invalid registry entry");
            return;
        };
        if self.parts.is_empty() {
            self.parts.push(BTreeMap::new());
        }
        if let Some(part) = self.parts.last_mut() {
            part.entry(key).or_default().push(credential);
        }
    }

    /// `first`'s credentials, then `second`'s: a Pod's pull secrets before the node's config, as the
    /// kubelet's `UnionDockerKeyring` orders them.
    pub fn union(first: &Keyring, second: &Keyring) -> Keyring {
        let parts = first.parts.iter().chain(&second.parts).cloned().collect();
        Keyring { parts }
    }

    /// True when the keyring holds no credential at all.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(BTreeMap::is_empty)
    }

    /// Every credential whose key matches `repository` (`host[:port]/path`, no tag or digest), most
    /// specific key first within each part. Empty: pull anonymously.
    pub fn lookup(&self, repository: &str) -> Vec<Credential> {
        let mut found = Vec::new();
        for part in &self.parts {
            for (key, credentials) in part.iter().rev() {
                if urls_match(key, repository) {
                    found.extend(credentials.iter().cloned());
                }
            }
        }
        found
    }
}

/// The index key of a config entry: host and path without scheme, a leading `/v1/` or `/v2/` dropped
/// (`https://reg.example.com/v2/` is the same entry as `reg.example.com`). `None` when there is no host.
fn index_key(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))
        .unwrap_or(location);
    let (host, path) = split_url(rest);
    if host.is_empty() || host.contains(['@', ' ']) {
        return None;
    }
    let path = match path.get(..4) {
        Some("/v1/" | "/v2/") => path.get(3..).unwrap_or_default(),
        _ => path,
    };
    Some(if path.is_empty() || path == "/" {
        host.to_owned()
    } else {
        format!("{host}{path}")
    })
}

/// `host[:port]` and the path (with its leading `/`, or empty) of a schemeless URL; query and fragment
/// are dropped as `url.Parse` would separate them.
fn split_url(s: &str) -> (&str, &str) {
    let s = s.split(['?', '#']).next().unwrap_or_default();
    match s.find('/') {
        Some(slash) => (
            s.get(..slash).unwrap_or_default(),
            s.get(slash..).unwrap_or_default(),
        ),
        None => (s, ""),
    }
}

/// Host name and port (`""` without one); `[v6]:port` keeps its brackets off the name.
fn split_host_port(host: &str) -> (&str, &str) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((name, port)) => (name, port),
            None => (host, ""),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, port),
        _ => (host, ""),
    }
}

/// The kubelet's `URLsMatch`: equal ports, the same number of host labels each matching as a glob, and
/// the key's path a prefix of the target's.
fn urls_match(key: &str, target: &str) -> bool {
    let (key_host, key_path) = split_url(key);
    let (target_host, target_path) = split_url(target);
    let (key_name, key_port) = split_host_port(key_host);
    let (target_name, target_port) = split_host_port(target_host);
    if key_port != target_port || !target_path.starts_with(key_path) {
        return false;
    }
    let key_labels: Vec<&str> = key_name.split('.').collect();
    let target_labels: Vec<&str> = target_name.split('.').collect();
    key_labels.len() == target_labels.len()
        && key_labels
            .iter()
            .zip(&target_labels)
            .all(|(pattern, label)| glob_match(pattern.as_bytes(), label.as_bytes()))
}

/// Go's `filepath.Match` on one host label: `*`, `?`, `[...]` classes with ranges and `^` negation, `\`
/// escapes. A malformed pattern matches nothing. Backtracks only to the last `*`, so a hostile key with
/// many stars costs `O(pattern × name)`, never exponential time.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let Some(glob) = parse_glob(pattern) else {
        return false;
    };
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = name.get(n) {
        match glob.get(p) {
            Some(Glob::Star) => {
                star = Some((p, n));
                p += 1;
            }
            Some(g) if g.matches(c) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                }
                None => return false,
            },
        }
    }
    glob.get(p..)
        .unwrap_or_default()
        .iter()
        .all(|g| matches!(g, Glob::Star))
}

/// One element of a label glob.
enum Glob<'a> {
    Star,
    Any,
    /// The class after `[`, its closing `]` included.
    Class(&'a [u8]),
    Byte(u8),
}

impl Glob<'_> {
    /// Whether this single-byte element matches `c` (`*` is handled by the matcher).
    fn matches(&self, c: u8) -> bool {
        match self {
            Glob::Star => false,
            Glob::Any => true,
            Glob::Class(class) => class_match(class, c).is_some_and(|(matched, _)| matched),
            Glob::Byte(b) => *b == c,
        }
    }
}

/// Splits a label glob into elements; `None` when it is malformed (an open class, a trailing `\`).
fn parse_glob(mut pattern: &[u8]) -> Option<Vec<Glob<'_>>> {
    let mut out = Vec::new();
    while let Some((&c, rest)) = pattern.split_first() {
        let (element, after) = match c {
            b'*' => (Glob::Star, rest),
            b'?' => (Glob::Any, rest),
            b'[' => {
                let (_, after) = class_match(rest, 0)?;
                (Glob::Class(rest.get(..rest.len() - after.len())?), after)
            }
            b'\\' => {
                let (&escaped, after) = rest.split_first()?;
                (Glob::Byte(escaped), after)
            }
            _ => (Glob::Byte(c), rest),
        };
        out.push(element);
        pattern = after;
    }
    Some(out)
}

/// Matches `c` against the class after `[`; returns whether it matched and the pattern after `]`.
fn class_match(pattern: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negated, mut rest) = match pattern.split_first() {
        Some((b'^', rest)) => (true, rest),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&lo, after) = rest.split_first()?;
        if lo == b']' && !first {
            return Some((matched != negated, after));
        }
        first = false;
        let (lo, after) = unescape(lo, after)?;
        let (hi, after) = match after.split_first() {
            Some((b'-', range)) if range.first() != Some(&b']') => {
                let (&hi, range) = range.split_first()?;
                unescape(hi, range)?
            }
            _ => (lo, after),
        };
        matched |= lo <= c && c <= hi;
        rest = after;
    }
}

fn unescape(c: u8, rest: &[u8]) -> Option<(u8, &[u8])> {
    if c == b'\\' {
        let (&escaped, rest) = rest.split_first()?;
        Some((escaped, rest))
    } else {
        Some((c, rest))
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_drop_scheme_and_api_version() {
        for (location, key) in [
            ("reg.example.com", Some("reg.example.com")),
            ("https://reg.example.com/v2/", Some("reg.example.com")),
            ("http://reg.example.com:5000/v1/", Some("reg.example.com:5000")),
            ("reg.example.com/team", Some("reg.example.com/team")),
            (
                "https://reg.example.com/v2/team/app",
                Some("reg.example.com/team/app"),
            ),
            ("reg.example.com/", Some("reg.example.com")),
            ("https://", None),
            ("user@reg.example.com", None),
        ] {
            assert_eq!(index_key(location).as_deref(), key, "{location}");
        }
    }

    #[test]
    fn urls_match_like_the_kubelet() {
        let cases = [
            ("reg.example.com", "reg.example.com/app", true),
            ("reg.example.com", "reg.example.com:5000/app", false),
            ("reg.example.com:5000", "reg.example.com:5000/app", true),
            ("*.example.com", "reg.example.com/app", true),
            ("*.example.com", "example.com/app", false),
            ("*.example.com", "a.b.example.com/app", false),
            ("*.*.com", "a.example.com/app", true),
            // `?` starts a URL query for the kubelet's url.Parse, so it never globs.
            ("reg?.example.com", "reg1.example.com/x", false),
            ("reg[0-9].example.com", "reg7.example.com/x", true),
            ("reg[^0-9].example.com", "reg7.example.com/x", false),
            ("reg[.example.com", "reg[.example.com/x", false),
            ("reg.example.com/team", "reg.example.com/team/app", true),
            ("reg.example.com/team", "reg.example.com/teams/app", true),
            ("reg.example.com/team", "reg.example.com/other/app", false),
            ("127.0.0.1:5000", "127.0.0.1:5000/busybox", true),
            ("[::1]:5000", "[::1]:5000/busybox", true),
            ("*", "localhost:5000/busybox", false),
            ("*:5000", "localhost:5000/busybox", true),
        ];
        for (key, target, want) in cases {
            assert_eq!(urls_match(key, target), want, "{key} vs {target}");
        }
    }

    fn cred(source: &str) -> Credential {
        Credential {
            secret: super::super::Secret::Basic {
                username: source.into(),
                password: "p".into(),
            },
            source: source.into(),
        }
    }

    #[test]
    fn lookup_is_most_specific_first_and_unions_in_order() {
        let mut pod = Keyring::default();
        pod.add("reg.example.com", cred("host"));
        pod.add("reg.example.com/team/app", cred("app"));
        pod.add("https://reg.example.com/v2/team", cred("team"));
        pod.add("*.example.com", cred("glob"));
        pod.add("other.example.org", cred("other"));
        let mut node = Keyring::default();
        node.add("reg.example.com", cred("node"));
        let both = Keyring::union(&pod, &node);
        let sources: Vec<String> = both
            .lookup("reg.example.com/team/app")
            .into_iter()
            .map(|c| c.source)
            .collect();
        assert_eq!(sources, ["app", "team", "host", "glob", "node"]);
        assert!(both.lookup("elsewhere.example.net/app").is_empty());
        assert!(Keyring::default().is_empty() && !both.is_empty());
    }

    /// Many stars in a hostile key cost polynomial time, not exponential: this returns at once (it would not
    /// finish for hours with the naive backtracking matcher).
    #[test]
    fn many_stars_do_not_explode() {
        let pattern = "*a".repeat(24) + "b";
        let name = "a".repeat(200);
        assert!(!glob_match(pattern.as_bytes(), name.as_bytes()));
        assert!(glob_match(b"*a*a*a*", name.as_bytes()));
    }
}
