//! Property tests of registry keyring matching: hostile config keys and repositories never panic, a
//! label glob agrees with a plain reference matcher, and a key for a repository's own host matches it.

use proptest::prelude::*;

use super::*;

fn cred(source: &str) -> Credential {
    Credential {
        secret: super::super::Secret::Basic {
            username: "u".into(),
            password: "p".into(),
        },
        source: source.into(),
    }
}

/// `filepath.Match` restricted to literals, `*` and `?`: the obvious exponential definition.
fn reference(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| reference(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && reference(rest, &name[1..]),
        Some((p, rest)) => name.first() == Some(p) && reference(rest, &name[1..]),
    }
}

/// Bytes that steer the parsers: URL and glob syntax, escapes, non-ASCII.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-c0-9]{1,4}",
        1 => prop::sample::select(vec![
            ".", ":", "/", "*", "?", "[", "]", "^", "-", "\\", "@", " ", "#", "https://", "http://",
            "/v2/", "/v1/", "[::1]", ":5000", "é", "\u{0}",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

/// A plausible repository: `host[:port]/path`.
fn repository() -> impl Strategy<Value = (String, String, String)> {
    (
        "[a-z][a-z0-9-]{0,6}(\\.[a-z][a-z0-9-]{0,6}){0,3}",
        prop::option::of(1u16..65535),
        "(/[a-z0-9._-]{1,8}){1,3}",
    )
        .prop_map(|(name, port, path)| {
            let host = match port {
                Some(p) => format!("{name}:{p}"),
                None => name,
            };
            (host.clone(), path.clone(), format!("{host}{path}"))
        })
}

proptest! {
    #[test]
    fn glob_agrees_with_the_reference(pattern in "[ab*?]{0,12}", name in "[ab]{0,16}") {
        prop_assert_eq!(
            glob_match(pattern.as_bytes(), name.as_bytes()),
            reference(pattern.as_bytes(), name.as_bytes())
        );
    }

    #[test]
    fn hostile_keys_and_repositories_never_panic(
        keys in prop::collection::vec(hostile(), 0..6),
        targets in prop::collection::vec(hostile(), 1..4),
        pattern in prop::collection::vec(any::<u8>(), 0..24),
        label in prop::collection::vec(any::<u8>(), 0..24),
    ) {
        let mut keyring = Keyring::default();
        for (i, key) in keys.iter().enumerate() {
            keyring.add(key, cred(&i.to_string()));
            let _ = index_key(key);
        }
        for target in &targets {
            for c in keyring.lookup(target) {
                let i: usize = c.source.parse().expect("a source we set");
                prop_assert!(i < keys.len());
            }
        }
        let _ = glob_match(&pattern, &label);
    }

    #[test]
    fn a_key_for_the_host_matches_its_repositories(
        (host, path, repo) in repository(),
        scheme in prop::sample::select(vec!["", "https://", "http://"]),
        api in prop::sample::select(vec!["", "/v2/", "/v1/"]),
        other_port in 1u16..65535,
    ) {
        let mut keyring = Keyring::default();
        keyring.add(&format!("{scheme}{host}{api}"), cred("host"));
        prop_assert_eq!(keyring.lookup(&repo).len(), 1, "{} does not match {}", host, repo);
        // The same host on another port, or a sibling path, is another registry.
        let (name, port) = split_host_port(&host);
        prop_assume!(port != other_port.to_string());
        let elsewhere = format!("{name}:{other_port}{path}");
        prop_assert!(keyring.lookup(&elsewhere).is_empty());
        let mut scoped = Keyring::default();
        scoped.add(&format!("{host}{path}"), cred("path"));
        let below = format!("{repo}/sub");
        let sibling = format!("{host}/~other");
        prop_assert_eq!(scoped.lookup(&below).len(), 1);
        prop_assert!(scoped.lookup(&sibling).is_empty());
    }
}
