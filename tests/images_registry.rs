//! Pulls against private registries on 127.0.0.1: htpasswd authentication over plain HTTP and over TLS
//! with a private CA (trusted through the certs directory), credentials matched the kubelet's way, the
//! messages a user sees when they are missing or wrong, and a registry serving a blob whose bytes do not
//! match its digest.

mod image_fixture;

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;
use peapod::image::auth::Keyring;
use peapod::image::{ErrorKind, ImageStore, PullOptions};
use peapod::runtime::chain;

use image_fixture::registry::{Options, Registry, REGISTRY};
use image_fixture::{build_busybox_layout, check_busybox_layer, require};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-for-tests";

/// A docker config.json with these `(registry key, user, password)` entries.
fn config_json(entries: &[(&str, &str, &str)]) -> String {
    let auths: Vec<String> = entries
        .iter()
        .map(|(key, user, password)| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("{key:?}: {{\"auth\": {auth:?}}}")
        })
        .collect();
    format!("{{\"auths\": {{{}}}}}", auths.join(", "))
}

fn keyring(entries: &[(&str, &str, &str)]) -> Result<Keyring> {
    Ok(Keyring::from_config_json(
        config_json(entries).as_bytes(),
        "test config",
    )?)
}

/// A private registry holding busybox as `private/busybox:1.0`.
fn private_registry(work: &Path, tls: bool) -> Result<Registry> {
    let layout = build_busybox_layout(work, "1.0")?;
    let registry = Registry::start_with(Options {
        user: Some((USER.into(), PASSWORD.into())),
        tls,
    })?;
    let source = format!("oci:{}:1.0", layout.display());
    registry.push(&source, "private/busybox:1.0", Some((USER, PASSWORD)))?;
    Ok(registry)
}

#[tokio::test]
async fn htpasswd_registries_need_credentials_that_match() -> Result<()> {
    if !require(&["umoci", "skopeo", "perl", REGISTRY]) {
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    let registry = private_registry(work.path(), false)?;
    let host = registry.host.clone();
    let image = format!("{host}/private/busybox:1.0");
    let store = ImageStore::open(work.path().join("images"))?;

    let anonymous = store
        .pull(&image, &PullOptions::default())
        .await
        .err()
        .context("anonymous")?;
    assert_eq!(anonymous.kind(), ErrorKind::Unauthorized, "{anonymous}");
    assert_eq!(
        chain(&anonymous),
        format!(
            "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": pull access \
             denied, repository does not exist or may require authorization: authorization failed: no basic auth \
             credentials"
        )
    );

    let wrong = PullOptions {
        keyring: keyring(&[(&host, USER, "wrong")])?,
        ..PullOptions::default()
    };
    let refused = store.pull(&image, &wrong).await.err().context("wrong password")?;
    assert_eq!(refused.kind(), ErrorKind::Unauthorized, "{refused}");
    let message = chain(&refused);
    assert!(
        message.contains("the registry refused the credentials from test config"),
        "{message}"
    );
    assert!(!message.contains("wrong"), "no secret in messages: {message}");

    // Other hosts' and other paths' credentials are not sent; a more specific wrong entry is tried first,
    // then the host's right one.
    let mixed = PullOptions {
        keyring: keyring(&[
            ("127.0.0.1:1", USER, PASSWORD),
            (&format!("{host}/other"), USER, PASSWORD),
            (&format!("{host}/private"), USER, "stale"),
            (&format!("https://{host}/v2/"), USER, PASSWORD),
        ])?,
        ..PullOptions::default()
    };
    let pulled = store.pull(&image, &mixed).await?;
    assert_eq!(pulled.name, image);
    check_busybox_layer(&pulled.layers[0])?;

    // The same through `peapod image pull --registry-config`.
    let config = work.path().join("config.json");
    std::fs::write(&config, config_json(&[(&host, USER, PASSWORD)]))?;
    let state = work.path().join("state");
    let cli = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_peapod"));
        cmd.env("PEAPOD_STATE_DIR", &state)
            .args(["image", "pull", &image])
            .args(extra);
        cmd.output()
    };
    let out = cli(&["--registry-config", config.to_str().context("utf-8")?])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Image is up to date for sha256:"));
    let out = cli(&[])?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no basic auth credentials"), "{stderr}");
    drop(registry);
    Ok(())
}

#[tokio::test]
async fn tls_registries_are_trusted_through_the_certs_dir() -> Result<()> {
    if !require(&["umoci", "skopeo", "perl", "openssl", REGISTRY]) {
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    let registry = private_registry(work.path(), true)?;
    let host = registry.host.clone();
    let image = format!("{host}/private/busybox:1.0");
    let store = ImageStore::open(work.path().join("images"))?;
    let certs = work.path().join("certs.d");
    let with_creds = |certs_dir: Option<&Path>| -> Result<PullOptions> {
        Ok(PullOptions {
            keyring: keyring(&[(&host, USER, PASSWORD)])?,
            certs_dir: certs_dir.map(Path::to_owned),
            ..PullOptions::default()
        })
    };

    // Without the CA, a loopback registry is spoken to over plain HTTP, which a TLS server refuses; with
    // the CA in <certs>/<host:port>/, TLS is used and verified.
    let plain = store
        .pull(&image, &with_creds(Some(&certs))?)
        .await
        .err()
        .context("plain HTTP")?;
    assert!(
        matches!(plain.kind(), ErrorKind::Unreachable | ErrorKind::BadImage),
        "{}",
        chain(&plain)
    );
    std::fs::create_dir_all(certs.join(&host))?;
    std::fs::copy(
        registry.ca.as_ref().context("ca")?,
        certs.join(&host).join("ca.crt"),
    )?;
    let pulled = store.pull(&image, &with_creds(Some(&certs))?).await?;
    check_busybox_layer(&pulled.layers[0])?;

    // A CA of another registry does not help.
    let other = work.path().join("other.d");
    std::fs::create_dir_all(other.join(&host))?;
    std::fs::write(other.join(&host).join("ca.crt"), selfsigned_ca(work.path())?)?;
    let untrusted = store
        .pull(&image, &with_creds(Some(&other))?)
        .await
        .err()
        .context("untrusted")?;
    assert_eq!(untrusted.kind(), ErrorKind::Unreachable, "{}", chain(&untrusted));
    let message = chain(&untrusted);
    eprintln!("{message}\n{}", chain(&plain));
    assert!(
        message.contains("certificate") || message.contains("Unknown"),
        "{message}"
    );
    drop(registry);
    Ok(())
}

/// A CA certificate nobody signed anything with.
fn selfsigned_ca(dir: &Path) -> Result<Vec<u8>> {
    let (key, crt) = (dir.join("stray.key"), dir.join("stray.crt"));
    image_fixture::registry::self_signed(&key, &crt, "/CN=stray", "1", &[])?;
    Ok(std::fs::read(crt)?)
}

#[tokio::test]
async fn a_blob_whose_bytes_do_not_match_its_digest_is_refused_and_not_kept() -> Result<()> {
    if !require(&["umoci", "skopeo", REGISTRY]) {
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    let layout = build_busybox_layout(work.path(), "1.0")?;
    let registry = Registry::start()?;
    registry.push(&format!("oci:{}:1.0", layout.display()), "tampered:1.0", None)?;
    // The layer is the largest blob the registry stores; flip one byte of it in place.
    let blobs = registry
        .dir
        .path()
        .join("storage/docker/registry/v2/blobs/sha256");
    let mut largest: Option<(u64, String)> = None;
    for prefix in std::fs::read_dir(&blobs)? {
        for blob in std::fs::read_dir(prefix?.path())? {
            let hex = blob?.file_name().to_string_lossy().into_owned();
            let size = std::fs::metadata(registry.blob_data(&hex))?.len();
            if largest.as_ref().is_none_or(|(s, _)| size > *s) {
                largest = Some((size, hex));
            }
        }
    }
    let (_, layer_hex) = largest.context("a layer blob")?;
    let data = registry.blob_data(&layer_hex);
    let mut bytes = std::fs::read(&data)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&data, bytes)?;

    let store = ImageStore::open(work.path().join("images"))?;
    let image = format!("{}/tampered:1.0", registry.host);
    let error = store
        .pull(&image, &PullOptions::default())
        .await
        .err()
        .context("tampered")?;
    assert_eq!(error.kind(), ErrorKind::BadDigest, "{}", chain(&error));
    let message = chain(&error);
    eprintln!("{message}");
    assert!(
        message.starts_with(&format!("failed to pull and unpack image \"{image}\"")),
        "{message}"
    );
    assert!(message.contains(&format!("sha256:{layer_hex}")), "{message}");
    let stored = store.root().join("blobs/sha256").join(&layer_hex);
    assert!(!stored.exists(), "the tampered blob is not in the store");
    assert_eq!(
        std::fs::read_dir(store.root().join("ingest"))?.count(),
        0,
        "no temporaries left"
    );
    assert!(store.list()?.is_empty());
    drop(registry);
    Ok(())
}
