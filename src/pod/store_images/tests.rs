//! Pull secrets into keyrings (missing ones warned about, bad ones refused without leaking), one pull per
//! image and credentials however many ask, and the in-use scan of container records.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::*;

/// Secrets held in memory; `Err` for names starting with `err`.
struct FakeSecrets(BTreeMap<(String, String), SecretData>);

impl PullSecretSource for FakeSecrets {
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, ReadSecretError>> {
        Box::pin(async move {
            if name.starts_with("err") {
                return Err(ReadSecretError {
                    namespace: namespace.into(),
                    name: name.into(),
                    error: "forbidden".into(),
                });
            }
            Ok(self.0.get(&(namespace.to_owned(), name.to_owned())).cloned())
        })
    }
}

fn docker_secret(json: &str) -> SecretData {
    SecretData {
        secret_type: "kubernetes.io/dockerconfigjson".into(),
        data: BTreeMap::from([(".dockerconfigjson".into(), json.as_bytes().to_vec())]),
    }
}

fn images_with(secrets: FakeSecrets) -> (tempfile::TempDir, StoreImages) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("images")).expect("store");
    let images =
        StoreImages::new(Arc::new(store), PullOptions::default()).with_pull_secrets(Arc::new(secrets));
    (dir, images)
}

fn pull_secrets(names: &[&str]) -> PullSecrets {
    PullSecrets {
        namespace: "team".into(),
        names: names.iter().map(|n| (*n).to_owned()).collect(),
    }
}

#[tokio::test]
async fn pod_secrets_become_a_keyring_and_missing_ones_a_warning() {
    let good = r#"{"auths": {"127.0.0.1:5000": {"username": "u", "password": "hunter2"}}}"#;
    let secrets = FakeSecrets(BTreeMap::from([
        (("team".into(), "regcred".into()), docker_secret(good)),
        (
            ("team".into(), "opaque".into()),
            SecretData {
                secret_type: "Opaque".into(),
                data: BTreeMap::new(),
            },
        ),
        (("other".into(), "elsewhere".into()), docker_secret(good)),
    ]));
    let (_dir, images) = images_with(secrets);
    let (keyring, missing) = images
        .pod_keyring(&pull_secrets(&["regcred", "opaque", "elsewhere", "err-denied"]))
        .await
        .expect("keyring");
    assert_eq!(keyring.lookup("127.0.0.1:5000/app").len(), 1);
    assert_eq!(
        missing,
        ["elsewhere", "err-denied"],
        "other namespaces are not looked in"
    );
    assert_eq!(
        secrets_warning(&missing).as_deref(),
        Some(
            "Unable to retrieve some image pull secrets (elsewhere, err-denied); attempting to pull the image may \
             not succeed."
        )
    );
    assert_eq!(secrets_warning(&[]), None);
    let shown = format!("{:?}", docker_secret(good));
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn a_malformed_pull_secret_fails_the_pull_without_leaking_it() {
    let secrets = FakeSecrets(BTreeMap::from([(
        ("team".into(), "broken".into()),
        docker_secret(r#"{"auths": {"r": {"auth": "hunter2"}}}"#),
    )]));
    let (_dir, images) = images_with(secrets);
    let outcome = images.pull("127.0.0.1:1/app:1", &pull_secrets(&["broken"])).await;
    let error = outcome.result.expect_err("refused");
    assert_eq!(error.reason, "ErrImagePull");
    assert!(error.message.contains("secret team/broken"), "{}", error.message);
    assert!(!error.message.contains("hunter2"), "{}", error.message);
}

/// A "registry" that accepts connections, counts them and never answers until released.
struct Stall {
    listener: TcpListener,
    held: Vec<std::net::TcpStream>,
}

impl Stall {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Stall {
            listener,
            held: Vec::new(),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.listener.local_addr().expect("addr").port())
    }

    /// Accepts what is pending; returns how many connections were ever accepted.
    fn accept(&mut self) -> usize {
        while let Ok((stream, _)) = self.listener.accept() {
            self.held.push(stream);
        }
        self.held.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_share_one_request() {
    let (_dir, images) = images_with(FakeSecrets(BTreeMap::new()));
    let images = Arc::new(images);
    let mut stall = Stall::start();
    let image = format!("{}/app:1", stall.host());
    let none = Arc::new(pull_secrets(&[]));
    let spawn = |secrets: Arc<PullSecrets>| {
        let (images, image) = (images.clone(), image.clone());
        tokio::spawn(async move { images.pull(&image, &secrets).await })
    };
    let first = spawn(none.clone());
    let second = spawn(none.clone());
    let third = spawn(none);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stall.accept() < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give a (wrong) second connection the chance to show up before counting.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        stall.accept();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stall.accept(), 1, "one request for three pulls");
    let with_secrets = spawn(Arc::new(pull_secrets(&["regcred"])));
    let deadline = Instant::now() + Duration::from_secs(10);
    while stall.accept() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stall.accept(), 2, "other credentials pull on their own");
    drop(stall); // closes the held connections and the listener: every pull fails at once
    let outcomes = [first, second, third, with_secrets];
    let mut messages = Vec::new();
    for outcome in outcomes {
        let outcome = outcome.await.expect("join");
        messages.push(outcome.result.expect_err("the registry hung up").message);
    }
    assert_eq!(messages[0], messages[1]);
    assert_eq!(messages[1], messages[2]);
    assert!(
        images.flights.lock().expect("lock").is_empty(),
        "finished pulls are forgotten"
    );
}

#[test]
fn images_in_use_come_from_instance_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pods = dir.path().join("pods");
    let record = |uid: &str, name: &str, attempt: u32, image_id: &str| {
        let instance = pods
            .join(uid)
            .join("containers")
            .join(name)
            .join(attempt.to_string());
        std::fs::create_dir_all(&instance).expect("mkdir");
        let json = serde_json::json!({
            "id": "c", "name": name, "attempt": attempt, "sandboxId": "s", "specHash": "h",
            "image": "x", "imageId": image_id, "imageRef": null, "createdAt": "2024-01-01T00:00:00Z",
        });
        std::fs::write(instance.join(INSTANCE_FILE), json.to_string()).expect("write");
        instance
    };
    assert!(images_in_use(&pods).expect("no pods dir").is_empty());
    record("u1", "web", 0, "sha256:aaa");
    record("u1", "web", 1, "sha256:bbb");
    record("u2", "db", 0, "sha256:aaa");
    std::fs::create_dir_all(pods.join("u3/containers/sidecar")).expect("no instance yet");
    let found: Vec<String> = images_in_use(&pods).expect("scan").into_iter().collect();
    assert_eq!(found, ["sha256:aaa", "sha256:bbb"]);
    let broken = record("u4", "bad", 0, "sha256:ccc");
    std::fs::write(broken.join(INSTANCE_FILE), "{").expect("corrupt");
    assert!(
        images_in_use(&pods).is_err(),
        "an unreadable record stops collection"
    );
}

const INSTANCE_FILE: &str = crate::runtime::record::INSTANCE;
