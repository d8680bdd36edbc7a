//! ADD, DEL and CHECK against fake plugins: order, environment, stdin, caching, errors, timeouts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::{CniConfig, CniRuntime, Error, NetworkConfig, PluginFailure};
use super::{chain, Plugins};

/// The test process's own namespace: a real nsfs path that needs no root.
const NETNS: &str = "/proc/self/ns/net";

const RESULT: &str = r#"{"cniVersion":"1.0.0",
  "interfaces":[{"name":"cni0"},{"name":"eth0","sandbox":"/proc/self/ns/net"}],
  "ips":[{"interface":1,"address":"10.88.7.5/24","gateway":"10.88.7.1"}]}"#;

struct Setup {
    plugins: Plugins,
    cache: tempfile::TempDir,
    cni: CniConfig,
    rt: CniRuntime,
}

fn setup(names: &[&str]) -> Setup {
    let plugins = Plugins::new(names);
    let cache = tempfile::tempdir().unwrap();
    let cni = CniConfig::new(vec![plugins.path().to_path_buf()], cache.path().join("results"));
    let rt = CniRuntime::for_pod("sandbox1", Path::new(NETNS), "default", "web", "uid-1");
    Setup {
        plugins,
        cache,
        cni,
        rt,
    }
}

fn network(version: &str, types: &[&str]) -> NetworkConfig {
    let plugins: Vec<Value> = types
        .iter()
        .map(|t| json!({"type": t, "capabilities": {"portMappings": *t == "portmap"}}))
        .collect();
    let list = json!({"cniVersion": version, "name": "podnet", "plugins": plugins});
    NetworkConfig::from_list(list.to_string().as_bytes(), Path::new("/test.conflist")).unwrap()
}

fn cache_file(s: &Setup) -> PathBuf {
    s.cache.path().join("results").join("sandbox1-eth0.json")
}

#[tokio::test]
async fn add_chains_plugins_with_a_clean_environment() {
    let mut s = setup(&["bridge", "portmap"]);
    s.plugins.answer("bridge", "ADD", "out", RESULT);
    s.plugins.answer("portmap", "ADD", "out", RESULT);
    s.rt.capability_args.insert(
        "portMappings".into(),
        json!([{"hostPort": 80, "containerPort": 8080}]),
    );
    let net = network("1.0.0", &["bridge", "portmap"]);

    let result = s.cni.add(&net, &s.rt).await.unwrap();
    assert_eq!(result.pod_ips(), ["10.88.7.5"]);
    assert_eq!(s.plugins.calls(), ["bridge ADD", "portmap ADD"]);

    let first = s.plugins.stdin("bridge", "ADD");
    assert_eq!(
        (&first["name"], &first["cniVersion"]),
        (&json!("podnet"), &json!("1.0.0"))
    );
    assert!(
        first.get("prevResult").is_none() && first.get("runtimeConfig").is_none(),
        "{first}"
    );
    let second = s.plugins.stdin("portmap", "ADD");
    assert_eq!(
        second["prevResult"],
        serde_json::from_str::<Value>(RESULT).unwrap()
    );
    assert_eq!(second["runtimeConfig"]["portMappings"][0]["hostPort"], 80);

    let env = s.plugins.env("bridge", "ADD");
    let expected = [
        concat!(
            "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;",
            "K8S_POD_INFRA_CONTAINER_ID=sandbox1;K8S_POD_UID=uid-1"
        )
        .to_string(),
        "CNI_COMMAND=ADD".into(),
        "CNI_CONTAINERID=sandbox1".into(),
        "CNI_IFNAME=eth0".into(),
        format!("CNI_NETNS={NETNS}"),
        format!("CNI_PATH={}", s.plugins.path().display()),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ];
    assert_eq!(
        env, expected,
        "nothing of peapod's own environment leaks into plugins"
    );

    // The attachment is cached for DEL, CHECK and restarts.
    assert!(cache_file(&s).exists());
    assert_eq!(
        s.cni.cached_result(&s.rt).unwrap().unwrap().pod_ips(),
        ["10.88.7.5"]
    );
    let attachments = s.cni.cached_attachments().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        (attachments[0].container_id.as_str(), attachments[0].args.len()),
        ("sandbox1", 5)
    );
}

#[tokio::test]
async fn del_runs_in_reverse_with_the_cached_result_and_can_repeat() {
    let s = setup(&["bridge", "portmap"]);
    s.plugins.answer("bridge", "ADD", "out", RESULT);
    s.plugins.answer("portmap", "ADD", "out", RESULT);
    let net = network("1.0.0", &["bridge", "portmap"]);
    s.cni.add(&net, &s.rt).await.unwrap();

    // Stopping a sandbox needs only its id and namespace: the rest comes from the cache.
    let stop = CniRuntime::for_sandbox("sandbox1", Path::new(NETNS));
    s.cni.del(Some(&net), &stop).await.unwrap();
    assert_eq!(s.plugins.calls()[2..], ["portmap DEL", "bridge DEL"]);
    let env = s.plugins.env("bridge", "DEL");
    assert!(
        env.iter()
            .any(|v| v.starts_with("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;")),
        "{env:?}"
    );
    assert_eq!(
        s.plugins.stdin("bridge", "DEL")["prevResult"]["ips"][0]["address"],
        "10.88.7.5/24"
    );
    assert!(!cache_file(&s).exists(), "a successful DEL drops the cache entry");

    // Again: no cached result any more, so no prevResult, and still fine.
    s.cni.del(Some(&net), &s.rt).await.unwrap();
    assert!(s.plugins.stdin("bridge", "DEL").get("prevResult").is_none());
    // No config and no cache: nothing to do.
    s.cni.del(None, &s.rt).await.unwrap();
    assert_eq!(s.plugins.calls().len(), 6);
}

#[tokio::test]
async fn del_uses_the_config_the_add_used() {
    let s = setup(&["bridge", "ptp"]);
    s.plugins.answer("bridge", "ADD", "out", RESULT);
    s.cni.add(&network("0.4.0", &["bridge"]), &s.rt).await.unwrap();
    s.cni.del(Some(&network("1.0.0", &["ptp"])), &s.rt).await.unwrap();
    assert_eq!(s.plugins.calls(), ["bridge ADD", "bridge DEL"]);
    let stdin = s.plugins.stdin("bridge", "DEL");
    assert_eq!(
        (&stdin["cniVersion"], &stdin["prevResult"]["cniVersion"]),
        (&json!("0.4.0"), &json!("0.4.0"))
    );
    assert_eq!(
        stdin["prevResult"]["ips"][0]["version"], "4",
        "converted to the list's version"
    );
}

#[tokio::test]
async fn del_passes_an_empty_netns_when_the_namespace_is_gone() {
    let mut s = setup(&["bridge"]);
    s.rt.netns_path = s.cache.path().join("gone");
    s.cni
        .del(Some(&network("1.0.0", &["bridge"])), &s.rt)
        .await
        .unwrap();
    assert!(s.plugins.env("bridge", "DEL").contains(&"CNI_NETNS=".to_string()));
    let err = s
        .cni
        .add(&network("1.0.0", &["bridge"]), &s.rt)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotNetns { .. }), "{err:?}");
}

#[tokio::test]
async fn plugin_errors_fail_add_and_clean_up() {
    let s = setup(&["bridge", "portmap"]);
    s.plugins.answer("bridge", "ADD", "out", RESULT);
    s.plugins.answer(
        "portmap",
        "ADD",
        "out",
        r#"{"code":7,"msg":"invalid config","details":"no chain"}"#,
    );
    s.plugins.answer("portmap", "ADD", "exit", "1");
    let err = s
        .cni
        .add(&network("1.0.0", &["bridge", "portmap"]), &s.rt)
        .await
        .unwrap_err();
    assert_eq!(
        chain(&err),
        r#"plugin type="portmap" failed (add): invalid config; no chain"#
    );
    assert_eq!(
        s.plugins.calls(),
        ["bridge ADD", "portmap ADD", "portmap DEL", "bridge DEL"]
    );
    assert!(!cache_file(&s).exists());
}

#[tokio::test]
async fn add_rejects_a_result_that_is_not_json() {
    let s = setup(&["bridge"]);
    let err = bridge_add_error(&s, "hello").await;
    assert!(
        err.starts_with(r#"plugin type="bridge" failed (add): invalid result: "#),
        "{err}"
    );
    let bad_ip = r#"{"cniVersion":"1.0.0","ips":[{"address":"nope"}]}"#;
    let err = bridge_add_error(&s, bad_ip).await;
    assert!(err.contains("ips[0].address: invalid CIDR"), "{err}");
}

/// The error chain of an ADD whose bridge plugin prints `out`.
async fn bridge_add_error(s: &Setup, out: &str) -> String {
    s.plugins.answer("bridge", "ADD", "out", out);
    let err = s
        .cni
        .add(&network("1.0.0", &["bridge"]), &s.rt)
        .await
        .unwrap_err();
    chain(&err)
}

#[tokio::test]
async fn del_errors_keep_the_cache_and_unknown_container_is_fine() {
    let s = setup(&["bridge"]);
    let net = network("1.0.0", &["bridge"]);
    s.plugins.answer("bridge", "ADD", "out", RESULT);
    s.cni.add(&net, &s.rt).await.unwrap();

    s.plugins.answer("bridge", "DEL", "err", "cannot reach daemon");
    s.plugins.answer("bridge", "DEL", "exit", "1");
    let err = s.cni.del(Some(&net), &s.rt).await.unwrap_err();
    assert_eq!(
        chain(&err),
        r#"plugin type="bridge" failed (delete): netplugin failed: "cannot reach daemon""#
    );
    assert!(cache_file(&s).exists(), "kept for the retry");

    s.plugins
        .answer("bridge", "DEL", "out", r#"{"code":3,"msg":"container unknown"}"#);
    s.cni.del(Some(&net), &s.rt).await.unwrap();
    assert!(!cache_file(&s).exists());
}

#[tokio::test]
async fn missing_plugins_and_bad_runtime_arguments_are_errors() {
    let mut s = setup(&["bridge"]);
    let err = s.cni.add(&network("1.0.0", &["nope"]), &s.rt).await.unwrap_err();
    let want = format!(
        r#"plugin type="nope" failed (add): failed to find plugin "nope" in path [{}]"#,
        s.plugins.path().display()
    );
    assert_eq!(chain(&err), want);

    s.rt.ifname = "this-name-is-too-long".into();
    let err = s
        .cni
        .add(&network("1.0.0", &["bridge"]), &s.rt)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRuntime(_)), "{err:?}");
    assert!(s.plugins.calls().is_empty());
}

#[tokio::test]
async fn hung_plugins_are_killed_at_the_deadline() {
    let s = setup(&["bridge"]);
    s.plugins.answer("bridge", "ADD", "sleep", "");
    let cni = s.cni.clone().with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = cni.add(&network("1.0.0", &["bridge"]), &s.rt).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Plugin {
                source: PluginFailure::Timeout { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the sleeping plugin was not waited for"
    );
}

#[tokio::test]
async fn check_uses_the_cached_result() {
    let s = setup(&["bridge"]);
    let net = network("1.0.0", &["bridge"]);
    let err = s.cni.check(&net, &s.rt).await.unwrap_err();
    assert!(matches!(err, Error::NotAdded { .. }), "{err:?}");

    s.plugins.answer("bridge", "ADD", "out", RESULT);
    s.cni.add(&net, &s.rt).await.unwrap();
    s.cni.check(&net, &s.rt).await.unwrap();
    assert_eq!(
        s.plugins.stdin("bridge", "CHECK")["prevResult"]["ips"][0]["address"],
        "10.88.7.5/24"
    );

    let old = network("0.3.1", &["bridge"]);
    let err = s.cni.check(&old, &s.rt).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"configuration version "0.3.1" does not support the CHECK command"#
    );

    let list = json!({"cniVersion": "1.0.0", "name": "podnet", "disableCheck": true,
                      "plugins": [{"type": "bridge"}]});
    let disabled = NetworkConfig::from_list(list.to_string().as_bytes(), Path::new("/x")).unwrap();
    s.cni.check(&disabled, &s.rt).await.unwrap();
    assert_eq!(s.plugins.calls(), ["bridge ADD", "bridge CHECK"]);
}

#[tokio::test]
async fn an_unusable_cache_entry_does_not_block_del() {
    let s = setup(&["bridge"]);
    std::fs::create_dir_all(cache_file(&s).parent().unwrap()).unwrap();
    std::fs::write(cache_file(&s), "{not json").unwrap();
    s.cni
        .del(Some(&network("1.0.0", &["bridge"])), &s.rt)
        .await
        .unwrap();
    assert!(s.plugins.stdin("bridge", "DEL").get("prevResult").is_none());
    assert!(!cache_file(&s).exists());

    std::fs::write(cache_file(&s), r#"{"kind":"other"}"#).unwrap();
    s.cni.del(None, &s.rt).await.unwrap();
    assert!(
        !cache_file(&s).exists(),
        "dropped even without a config to DEL with"
    );
    assert_eq!(s.plugins.calls(), ["bridge DEL"]);
}
