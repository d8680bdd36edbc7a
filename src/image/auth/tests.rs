//! Parsing docker config documents and pull secrets; secrets never show in Debug or errors.

use std::collections::BTreeMap;

use super::*;

fn basic(user: &str, password: &str) -> Secret {
    Secret::Basic {
        username: user.into(),
        password: password.into(),
    }
}

fn secrets(keyring: &Keyring, repository: &str) -> Vec<Secret> {
    keyring.lookup(repository).into_iter().map(|c| c.secret).collect()
}

#[test]
fn config_json_entries_in_every_form() {
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
    let doc = format!(
        r#"{{"auths": {{
            "a.example.com": {{"auth": "{auth}", "email": "ignored@example.com"}},
            "b.example.com": {{"username": "bob", "password": "pw"}},
            "c.example.com": {{"identitytoken": "refresh", "username": "<token>"}},
            "d.example.com": {{"registrytoken": "bearer"}},
            "e.example.com": {{}}
        }}, "credHelpers": {{"f.example.com": "helper"}}}}"#
    );
    let keyring = Keyring::from_config_json(doc.as_bytes(), "test").expect("parse");
    assert_eq!(secrets(&keyring, "a.example.com/x"), [basic("alice", "pa:ss")]);
    assert_eq!(secrets(&keyring, "b.example.com/x"), [basic("bob", "pw")]);
    assert_eq!(
        secrets(&keyring, "c.example.com/x"),
        [Secret::IdentityToken("refresh".into())]
    );
    assert_eq!(
        secrets(&keyring, "d.example.com/x"),
        [Secret::RegistryToken("bearer".into())]
    );
    assert_eq!(secrets(&keyring, "e.example.com/x"), [basic("", "")]);
    assert!(secrets(&keyring, "f.example.com/x").is_empty());
}

#[test]
fn dockercfg_is_the_bare_auths_map() {
    let doc = br#"{"https://reg.example.com/v1/": {"username": "u", "password": "p"}}"#;
    let keyring = Keyring::from_dockercfg(doc, "test").expect("parse");
    assert_eq!(secrets(&keyring, "reg.example.com/app"), [basic("u", "p")]);
}

#[test]
fn pull_secrets_by_type() {
    let json = br#"{"auths": {"reg.example.com": {"username": "u", "password": "p"}}}"#.to_vec();
    let cfg = br#"{"reg.example.com": {"username": "v", "password": "q"}}"#.to_vec();
    let data = |key: &str, value: &[u8]| BTreeMap::from([(key.to_owned(), value.to_vec())]);
    let keyring = Keyring::from_secret(
        SECRET_TYPE_DOCKER_CONFIG_JSON,
        &data(".dockerconfigjson", &json),
        "secret default/a",
    )
    .expect("parse")
    .expect("dockerconfigjson");
    assert_eq!(secrets(&keyring, "reg.example.com/x"), [basic("u", "p")]);
    let keyring = Keyring::from_secret(SECRET_TYPE_DOCKERCFG, &data(".dockercfg", &cfg), "s")
        .expect("parse")
        .expect("dockercfg");
    assert_eq!(secrets(&keyring, "reg.example.com/x"), [basic("v", "q")]);
    assert!(
        Keyring::from_secret("Opaque", &data(".dockerconfigjson", &json), "s")
            .expect("other types are skipped")
            .is_none()
    );
    let missing = Keyring::from_secret(SECRET_TYPE_DOCKER_CONFIG_JSON, &data(".dockercfg", &cfg), "s")
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        missing.as_deref(),
        Some("s: no .dockerconfigjson key in a secret of type kubernetes.io/dockerconfigjson")
    );
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let doc = br#"{"auths": {"reg.example.com": {"username": "alice", "password": "hunter2-secret"}}}"#;
    let keyring = Keyring::from_config_json(doc, "test").expect("parse");
    let shown = format!("{keyring:?}");
    assert!(
        !shown.contains("hunter2-secret") && !shown.contains("alice"),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"), "{shown}");
    for bad in [
        &br#"{"auths": "hunter2-secret"}"#[..],
        br#"{"auths": {"r": {"password": 42, "username": "hunter2-secret"}}}"#,
        br#"{"auths": {"r": {"auth": "hunter2-secret"}}}"#,
        br#"{"auths": {"r": {"auth": "aHVudGVyMi1zZWNyZXQ="}}}"#,
    ] {
        let error = Keyring::from_config_json(bad, "cfg").err().map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(!error.is_empty(), "accepted {}", String::from_utf8_lossy(bad));
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.json");
    std::fs::write(&path, br#"{"auths": {"127.0.0.1:5000": {"auth": "dTpw"}}}"#).expect("write");
    let keyring = Keyring::load(&path).expect("load");
    let found = keyring.lookup("127.0.0.1:5000/app");
    assert_eq!(found.len(), 1);
    assert_eq!(found.first().map(|c| c.secret.clone()), Some(basic("u", "p")));
    assert!(found
        .first()
        .is_some_and(|c| c.source == format!("--registry-config {}", path.display())));
    let missing = Keyring::load(&dir.path().join("nope"))
        .err()
        .map(|e| e.to_string());
    assert!(missing.is_some_and(|m| m.contains("nope")));
}
