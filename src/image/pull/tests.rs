//! Pull target qualification and the plain-HTTP rule (the network parts are in tests/image_pull.rs).

use super::*;

#[test]
fn targets_qualify_short_names_only_with_a_default_registry() {
    let none = PullOptions::default();
    let with = PullOptions {
        default_registry: Some("127.0.0.1:5000".into()),
        ..PullOptions::default()
    };
    assert!(matches!(
        pull_target("busybox", &none),
        Err(Error::ShortNameNeedsRegistry { .. })
    ));
    let err = pull_target("busybox", &none)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "short name \"busybox\" needs a registry; use a fully qualified name or set --default-registry"
    );
    assert_eq!(
        pull_target("busybox", &with).map(|t| t.shown).ok().as_deref(),
        Some("127.0.0.1:5000/busybox:latest")
    );
    assert!(matches!(
        pull_target("localhost/busybox", &with),
        Err(Error::LocalOnlyImage { .. })
    ));
    assert!(matches!(
        pull_target("Bad", &with),
        Err(Error::InvalidReference(_))
    ));
    let t = pull_target("localhost:5000/a/b:1", &none).expect("qualified");
    assert_eq!(
        (t.oci.registry(), t.oci.repository(), t.oci.tag()),
        ("localhost:5000", "a/b", Some("1"))
    );
}

#[test]
fn plain_http_only_for_loopback_and_listed_registries() {
    let opts = PullOptions {
        insecure_registries: vec!["reg.lan:5000".into()],
        ..PullOptions::default()
    };
    for (registry, http) in [
        ("localhost:5000", true),
        ("127.0.0.1:5000", true),
        ("[::1]:5000", true),
        ("reg.lan:5000", true),
        ("reg.lan", false),
        ("127.0.0.1.nip.example:5000", false),
        ("localhost", false),
    ] {
        let want = if http {
            ClientProtocol::HttpsExcept(vec![registry.into()])
        } else {
            ClientProtocol::Https
        };
        assert_eq!(protocol_for(registry, &opts, false), want, "{registry}");
    }
    assert_eq!(
        protocol_for("127.0.0.1:5000", &opts, true),
        ClientProtocol::Https,
        "a loopback registry with its own CA speaks TLS"
    );
}

#[test]
fn registry_certs_come_from_the_host_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = dir.path().join("127.0.0.1:5000");
    std::fs::create_dir(&host).expect("mkdir");
    std::fs::write(host.join("ca.crt"), "pem").expect("write");
    std::fs::write(host.join("client.key"), "not a CA").expect("write");
    let opts = PullOptions {
        certs_dir: Some(dir.path().to_owned()),
        ..PullOptions::default()
    };
    let with = registry::client_config("127.0.0.1:5000", &opts).expect("config");
    assert_eq!((with.scheme(), with.certs().len()), ("https", 1));
    let without = registry::client_config("127.0.0.1:5001", &opts).expect("config");
    assert_eq!((without.scheme(), without.certs().len()), ("http", 0));
    let odd = registry::client_config("..", &opts).expect("config");
    assert!(odd.certs().is_empty());
}
