//! Result decoding for each CNI version, pod IP selection, version conversion and plugin error documents.

use std::net::IpAddr;

use serde_json::json;

use super::super::result::convert;
use super::super::{version_at_least, CniResult, CniRuntime, PluginError};

/// What the bridge plugin prints for 0.3.1 (`ips[].version` present).
const BRIDGE_031: &str = r#"{"cniVersion":"0.3.1",
  "interfaces":[{"name":"cni0","mac":"0a:58:0a:58:00:01"},
                {"name":"veth1234","mac":"aa:bb:cc:dd:ee:ff"},
                {"name":"eth0","mac":"0a:58:0a:58:00:05","sandbox":"/run/peapod/sandboxes/abc/ns/net"}],
  "ips":[{"version":"4","interface":2,"address":"10.88.0.5/16","gateway":"10.88.0.1"}],
  "routes":[{"dst":"0.0.0.0/0"}],
  "dns":{}}"#;

/// 0.4.0: the same shape.
const PTP_040: &str = r#"{"cniVersion":"0.4.0",
  "interfaces":[{"name":"veth0","mac":"aa:aa:aa:aa:aa:aa"},
                {"name":"eth0","mac":"bb:bb:bb:bb:bb:bb","sandbox":"/proc/1/ns/net"}],
  "ips":[{"version":"4","interface":1,"address":"10.1.1.2/32","gateway":"10.1.1.1"}],
  "routes":[{"dst":"0.0.0.0/0","gw":"10.1.1.1"}],
  "dns":{"nameservers":["10.1.0.10"],"domain":"cluster.local",
         "search":["svc.cluster.local"],"options":["ndots:5"]}}"#;

/// 1.0.0, dual-stack, IPv6 listed first and a host-side address that is not the pod's.
const DUAL_100: &str = r#"{"cniVersion":"1.0.0",
  "interfaces":[{"name":"cni0","mac":"0a:58:0a:58:00:01"},
                {"name":"eth0","mac":"0a:58:0a:58:00:05","sandbox":"/run/netns/x"}],
  "ips":[{"interface":1,"address":"fd00::5/64"},
         {"interface":0,"address":"10.88.0.1/16"},
         {"interface":1,"address":"10.88.0.5/16","gateway":"10.88.0.1"},
         {"address":"10.99.0.5/24"}],
  "routes":[{"dst":"::/0","gw":"fd00::1"}]}"#;

#[test]
fn parses_0_3_1_results() {
    let r = CniResult::parse(BRIDGE_031.as_bytes(), "eth0").unwrap();
    assert_eq!(r.cni_version, "0.3.1");
    assert_eq!(r.interfaces.len(), 3);
    assert_eq!(r.interfaces[2].sandbox, "/run/peapod/sandboxes/abc/ns/net");
    assert_eq!(r.ips[0].address, "10.88.0.5".parse::<IpAddr>().unwrap());
    assert_eq!((r.ips[0].prefix_len, r.ips[0].interface), (16, Some(2)));
    assert_eq!(r.ips[0].gateway, Some("10.88.0.1".parse().unwrap()));
    assert_eq!((r.routes[0].dst_prefix_len, r.routes[0].gw), (0, None));
    assert_eq!(r.pod_ips(), ["10.88.0.5"]);
}

#[test]
fn parses_0_4_0_results_with_dns() {
    let r = CniResult::parse(PTP_040.as_bytes(), "eth0").unwrap();
    assert_eq!(r.dns.nameservers, ["10.1.0.10"]);
    assert_eq!(r.dns.domain, "cluster.local");
    assert_eq!(r.dns.search, ["svc.cluster.local"]);
    assert_eq!(r.dns.options, ["ndots:5"]);
    assert_eq!(r.routes[0].gw, Some("10.1.1.1".parse().unwrap()));
    assert_eq!(r.pod_ips(), ["10.1.1.2"]);
}

#[test]
fn pod_ips_of_1_0_0_results_put_ipv4_first_and_skip_host_addresses() {
    let r = CniResult::parse(DUAL_100.as_bytes(), "eth0").unwrap();
    assert_eq!(r.pod_ips(), ["10.88.0.5", "fd00::5", "10.99.0.5"]);
    // Another interface name: only the address without an interface index is the sandbox's.
    let r = CniResult::parse(DUAL_100.as_bytes(), "net1").unwrap();
    assert_eq!(r.pod_ips(), ["10.99.0.5"]);
    let empty = CniResult::parse(br#"{"cniVersion":"1.0.0"}"#, "eth0").unwrap();
    assert!(empty.pod_ips().is_empty());
}

#[test]
fn invalid_results_are_rejected() {
    let cases = [
        (r#"not json"#, "expected"),
        (
            r#"{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}}"#,
            "unsupported result cniVersion \"0.2.0\"",
        ),
        (r#"{"ips":[]}"#, "unsupported result cniVersion \"\""),
        (
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2"}]}"#,
            "ips[0].address: invalid CIDR",
        ),
        (
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/33"}]}"#,
            "invalid CIDR",
        ),
        (
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","interface":0}]}"#,
            "index 0 is out of range",
        ),
        (
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","interface":-1}]}"#,
            "invalid value",
        ),
        (
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":"x"}]}"#,
            "ips[0].gateway: invalid IP",
        ),
        (
            r#"{"cniVersion":"1.0.0","routes":[{"dst":"default"}]}"#,
            "routes[0].dst: invalid CIDR",
        ),
        (
            r#"{"cniVersion":"1.0.0","interfaces":[{"mac":"x"}]}"#,
            "missing field `name`",
        ),
    ];
    for (doc, want) in cases {
        let err = CniResult::parse(doc.as_bytes(), "eth0").unwrap_err();
        assert!(err.contains(want), "{doc}: expected {want:?} in {err:?}");
    }
}

#[test]
fn converts_results_between_versions() {
    let old = serde_json::from_str(PTP_040).unwrap();
    let new = convert(old, "1.0.0");
    assert_eq!(new["cniVersion"], "1.0.0");
    assert!(new["ips"][0].get("version").is_none());
    assert_eq!(new["dns"]["domain"], "cluster.local", "other fields are kept");

    let back = convert(serde_json::from_str(DUAL_100).unwrap(), "0.4.0");
    assert_eq!(back["cniVersion"], "0.4.0");
    let versions: Vec<&str> = back["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["6", "4", "4", "4"]);
    assert_eq!(convert(json!("odd"), "1.0.0"), json!("odd"));
}

#[test]
fn plugin_errors_read_like_libcni() {
    let cases: [(&[u8], &[u8], u32, &str); 6] = [
        (
            br#"{"cniVersion":"1.0.0","code":7,"msg":"invalid config","details":"no bridge"}"#,
            b"",
            7,
            "invalid config; no bridge",
        ),
        (
            br#"{"code":999,"msg":"invalid CIDR address: bogus"}"#,
            b"log line",
            999,
            "invalid CIDR address: bogus",
        ),
        (b"", b"panic: boom\n", 0, r#"netplugin failed: "panic: boom""#),
        (
            b"  \n",
            b"",
            0,
            "netplugin failed with no error message: exit status 1",
        ),
        (
            b"garbage",
            b"",
            0,
            r#"netplugin failed but error parsing its diagnostic message "garbage": "#,
        ),
        (
            br#"{"code":"x"}"#,
            b"",
            0,
            "netplugin failed but error parsing its diagnostic message",
        ),
    ];
    for (stdout, stderr, code, want) in cases {
        let e = PluginError::from_output("exit status 1", stdout, stderr);
        assert_eq!(e.code, code, "{e}");
        assert!(e.to_string().starts_with(want), "expected {want:?}, got {e}");
    }
}

#[test]
fn compares_versions() {
    assert!(version_at_least("0.4.0", "0.4.0"));
    assert!(version_at_least("1.0.0", "0.4.0"));
    assert!(version_at_least("0.10.0", "0.4.0"));
    assert!(!version_at_least("0.3.1", "0.4.0"));
    assert!(!version_at_least("1.0", "0.4.0"));
    assert!(!version_at_least("1.0.0.0", "0.4.0"));
    assert!(!version_at_least("x", "0.4.0"));
}

#[test]
fn cni_args_for_a_pod() {
    let rt = CniRuntime::for_pod("abc123", "/run/ns".as_ref(), "default", "web", "uid-1");
    assert_eq!(rt.ifname, "eth0");
    assert_eq!(
        rt.cni_args().unwrap(),
        concat!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;",
            "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=uid-1"
        )
    );
    for (k, v) in [("A", "b;c"), ("A", "b=c"), ("", "x"), ("A;B", "x"), ("A=B", "x")] {
        let mut bad = rt.clone();
        bad.args.push((k.into(), v.into()));
        assert!(bad.cni_args().is_err(), "{k}={v}");
    }
}

#[test]
fn runtime_arguments_are_validated() {
    let ok = CniRuntime::for_pod("abc", "/run/ns".as_ref(), "ns", "n", "u");
    assert!(ok.validate().is_ok());
    let cases: [(&str, &str); 9] = [
        ("", "eth0"),
        ("-abc", "eth0"),
        ("../abc", "eth0"),
        ("a b", "eth0"),
        ("abc", ""),
        ("abc", "a-very-long-name0"),
        ("abc", ".."),
        ("abc", "eth/0"),
        ("abc", "eth 0"),
    ];
    for (id, ifname) in cases {
        let mut rt = ok.clone();
        rt.container_id = id.into();
        rt.ifname = ifname.into();
        assert!(rt.validate().is_err(), "{id:?} {ifname:?}");
    }
}
