//! Config loading and validation, and the stdin each plugin gets.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::super::config::{conf_files, pick_version, plugin_description, plugin_stdin};
use super::super::{CniConfig, Error, NetworkConfig};
use super::{chain, Plugins};

const BRIDGE_LIST: &str = r#"{"cniVersion":"1.0.0","name":"podnet","disableCheck":"true",
  "plugins":[{"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
             {"type":"portmap","capabilities":{"portMappings":true}}]}"#;

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

fn load(conf_dirs: &[PathBuf], plugins: &Plugins) -> Result<Option<NetworkConfig>, Error> {
    CniConfig::load(conf_dirs, &[plugins.path().to_path_buf()])
}

#[test]
fn loads_a_conflist() {
    let conf = tempfile::tempdir().unwrap();
    let plugins = Plugins::new(&["bridge", "portmap"]);
    let file = write(conf.path(), "10-podnet.conflist", BRIDGE_LIST);
    let net = load(&[conf.path().to_path_buf()], &plugins).unwrap().unwrap();
    assert_eq!(net.name(), "podnet");
    assert_eq!(net.cni_version(), "1.0.0");
    assert_eq!(net.plugin_types(), ["bridge", "portmap"]);
    assert!(net.disable_check());
    assert_eq!(net.source(), file);
}

#[test]
fn wraps_a_single_plugin_conf_into_a_list() {
    let conf = tempfile::tempdir().unwrap();
    let plugins = Plugins::new(&["bridge"]);
    let single = r#"{"cniVersion":"0.4.0","name":"mynet","type":"bridge","bridge":"cni0"}"#;
    write(conf.path(), "10-mynet.conf", single);
    let net = load(&[conf.path().to_path_buf()], &plugins).unwrap().unwrap();
    assert_eq!((net.name(), net.cni_version()), ("mynet", "0.4.0"));
    assert_eq!(net.plugins().len(), 1);
    assert_eq!(
        Value::Object(net.plugins()[0].clone()),
        serde_json::from_str::<Value>(single).unwrap()
    );
    // libcni names such a plugin by its own name too.
    assert_eq!(
        plugin_description(&net.plugins()[0]),
        r#"type="bridge" name="mynet""#
    );
}

#[test]
fn picks_the_lexically_first_config_file() {
    let conf = tempfile::tempdir().unwrap();
    let plugins = Plugins::new(&["bridge", "portmap"]);
    write(
        conf.path(),
        "20-b.conf",
        r#"{"cniVersion":"1.0.0","name":"b","type":"bridge"}"#,
    );
    write(conf.path(), "9-late.conflist", BRIDGE_LIST);
    write(
        conf.path(),
        "10-a.json",
        r#"{"cniVersion":"1.0.0","name":"a","type":"bridge"}"#,
    );
    write(conf.path(), "00-notes.txt", "not a config");
    fs::create_dir(conf.path().join("01-dir.conf")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", conf.path().join("02-dangling.conflist")).unwrap();
    let names: Vec<String> = conf_files(conf.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["10-a.json", "20-b.conf", "9-late.conflist"]);
    let net = load(&[conf.path().to_path_buf()], &plugins).unwrap().unwrap();
    assert_eq!(net.name(), "a");
}

#[test]
fn no_config_means_loopback_only() {
    let plugins = Plugins::new(&["bridge"]);
    let empty = tempfile::tempdir().unwrap();
    write(empty.path(), "README", "no configs here");
    let missing = empty.path().join("missing");
    assert_eq!(
        load(&[missing.clone(), empty.path().to_path_buf()], &plugins).unwrap(),
        None
    );
    assert_eq!(load(&[], &plugins).unwrap(), None);
    // The first directory holding a config wins.
    let second = tempfile::tempdir().unwrap();
    write(
        second.path(),
        "10.conf",
        r#"{"cniVersion":"1.0.0","name":"second","type":"bridge"}"#,
    );
    let net = load(&[missing, second.path().to_path_buf()], &plugins)
        .unwrap()
        .unwrap();
    assert_eq!(net.name(), "second");
}

#[test]
fn bad_json_is_an_error_naming_the_file() {
    let conf = tempfile::tempdir().unwrap();
    let plugins = Plugins::new(&["bridge"]);
    let file = write(conf.path(), "10-broken.conflist", r#"{"cniVersion": "1.0.0", "#);
    let err = load(&[conf.path().to_path_buf()], &plugins).unwrap_err();
    assert!(
        matches!(err, Error::ParseConf { ref path, .. } if *path == file),
        "{err:?}"
    );
    assert!(
        chain(&err).contains(&file.display().to_string()),
        "{}",
        chain(&err)
    );
}

#[test]
fn oversized_config_is_rejected() {
    let conf = tempfile::tempdir().unwrap();
    let plugins = Plugins::new(&["bridge"]);
    let big = format!(
        r#"{{"cniVersion":"1.0.0","name":"n","pad":"{}","plugins":[]}}"#,
        "x".repeat(2 << 20)
    );
    write(conf.path(), "10.conflist", &big);
    let err = load(&[conf.path().to_path_buf()], &plugins).unwrap_err();
    assert!(matches!(err, Error::ConfTooLarge { .. }), "{err:?}");
}

#[test]
fn missing_plugin_names_the_plugin_and_the_path() {
    let conf = tempfile::tempdir().unwrap();
    let plugins = Plugins::new(&["bridge"]);
    write(conf.path(), "10.conflist", BRIDGE_LIST);
    let err = load(&[conf.path().to_path_buf()], &plugins).unwrap_err();
    let expected = format!(
        r#"failed to find plugin "portmap" in path [{}]"#,
        plugins.path().display()
    );
    assert!(chain(&err).ends_with(&expected), "{}", chain(&err));
}

#[test]
fn invalid_lists_are_rejected_with_a_reason() {
    let cases = [
        (
            json!({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}),
            "no name",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": 5, "plugins": [{"type": "bridge"}]}),
            "name must be a string",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "-x", "plugins": [{"type": "bridge"}]}),
            "invalid name \"-x\"",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "a/b", "plugins": [{"type": "bridge"}]}),
            "invalid name",
        ),
        (
            json!({"name": "n", "plugins": [{"type": "bridge"}]}),
            "no cniVersion",
        ),
        (
            json!({"cniVersion": "0.2.0", "name": "n", "plugins": [{"type": "bridge"}]}),
            "unsupported cniVersion \"0.2.0\"",
        ),
        (
            json!({"cniVersion": 1, "name": "n", "plugins": [{"type": "bridge"}]}),
            "cniVersion must be a string",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": []}),
            "no plugins in list",
        ),
        (json!({"cniVersion": "1.0.0", "name": "n"}), "no plugins in list"),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": {}}),
            "plugins must be a list",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [7]}),
            "plugins[0] must be an object",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"bridge": "x"}]}),
            "plugins[0]: missing 'type'",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../sh"}]}),
            "invalid plugin name",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "disableCheck": "yes", "plugins": [{"type": "b"}]}),
            "disableCheck",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "cniVersions": "1.0.0", "plugins": [{"type": "b"}]}),
            "cniVersions",
        ),
        (json!(["not", "an", "object"]), "not a JSON object"),
    ];
    let source = Path::new("/etc/cni/net.d/10-test.conflist");
    for (doc, reason) in cases {
        let err = NetworkConfig::from_list(doc.to_string().as_bytes(), source).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("invalid CNI config /etc/cni/net.d/10-test.conflist: "),
            "{msg}"
        );
        assert!(msg.contains(reason), "{doc}: expected {reason:?} in {msg:?}");
    }
}

#[test]
fn conf_file_holding_a_list_gets_a_hint() {
    let err = NetworkConfig::from_single(BRIDGE_LIST.as_bytes(), Path::new("/x/10.conf")).unwrap_err();
    assert!(err
        .to_string()
        .contains("network type not found (a plugin list needs the .conflist extension)"));
}

#[test]
fn cni_versions_picks_the_highest_supported() {
    let pick = |doc: Value| pick_version(doc.as_object().unwrap());
    assert_eq!(
        pick(json!({"cniVersions": ["0.4.0", "1.0.0", "9.9.9"]})).unwrap(),
        "1.0.0"
    );
    assert_eq!(
        pick(json!({"cniVersion": "0.4.0", "cniVersions": ["0.3.1"]})).unwrap(),
        "0.4.0"
    );
    assert!(pick(json!({"cniVersions": ["9.0.0"]})).is_err());
    assert_eq!(pick(json!({"cniVersion": "0.3.1"})).unwrap(), "0.3.1");
}

#[test]
fn plugin_stdin_injects_name_version_prev_result_and_capabilities() {
    let net = NetworkConfig::from_list(BRIDGE_LIST.as_bytes(), Path::new("/x.conflist")).unwrap();
    let mut caps = Map::new();
    caps.insert(
        "portMappings".into(),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    caps.insert("bandwidth".into(), json!({"ingressRate": 1}));

    let first: Value = serde_json::from_slice(&plugin_stdin(&net, &net.plugins()[0], None, &caps)).unwrap();
    assert_eq!(
        first,
        json!({"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"},
               "name": "podnet", "cniVersion": "1.0.0"})
    );

    let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]});
    let mut portmap = net.plugins()[1].clone();
    portmap.insert("name".into(), "other".into());
    portmap.insert("cniVersion".into(), "0.3.0".into());
    portmap.insert("runtimeConfig".into(), json!({"stale": true}));
    let second: Value = serde_json::from_slice(&plugin_stdin(&net, &portmap, Some(&prev), &caps)).unwrap();
    assert_eq!(second["name"], "podnet");
    assert_eq!(second["cniVersion"], "1.0.0");
    assert_eq!(second["prevResult"], prev);
    assert_eq!(
        second["runtimeConfig"],
        json!({"portMappings": caps["portMappings"]})
    );
}

#[test]
fn disabled_capabilities_get_no_runtime_config() {
    let list = json!({"cniVersion": "1.0.0", "name": "n",
        "plugins": [{"type": "portmap", "capabilities": {"portMappings": false}}]});
    let net = NetworkConfig::from_list(list.to_string().as_bytes(), Path::new("/x")).unwrap();
    let mut caps = Map::new();
    caps.insert("portMappings".into(), json!([]));
    let stdin: Value = serde_json::from_slice(&plugin_stdin(&net, &net.plugins()[0], None, &caps)).unwrap();
    assert!(stdin.get("runtimeConfig").is_none(), "{stdin}");
}
