//! A test's own CNI network: a bridge named after the node (removed on drop) with host-local addresses
//! kept under `<node dir>/cni-ipam/<network>`, where `Node::assert_clean` looks for leases left behind.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use super::Node;

/// Where host-local keeps the leases of the node's test networks (one directory per network).
pub fn ipam_dir(node: &Node) -> PathBuf {
    node.dir.path().join("cni-ipam")
}

/// Removes the test's bridge on drop.
pub struct Bridge(pub String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .output();
    }
}

/// Writes a bridge network named `name` with host-local addresses (a /24 picked from the node's cgroup
/// suffix) as the node's CNI config; returns the bridge and the directory of its leases, or `None` when the
/// bridge and host-local plugins are not installed.
pub fn bridge_network(node: &Node, name: &str) -> Option<(Bridge, PathBuf)> {
    let installed = ["/usr/lib/cni", "/opt/cni/bin"]
        .iter()
        .any(|d| Path::new(d).join("bridge").is_file() && Path::new(d).join("host-local").is_file());
    if !installed {
        eprintln!("skipping the CNI network: the bridge and host-local plugins are not installed");
        return None;
    }
    let suffix = node.cgroup_parent.trim_start_matches("/peapod-test-").to_string();
    let bridge = Bridge(format!("po{}", &suffix[..6]));
    let octet = u8::from_str_radix(&suffix[..2], 16).unwrap() % 200 + 20;
    let ipam = ipam_dir(node);
    let conflist = format!(
        r#"{{"cniVersion": "1.0.0", "name": "{name}", "plugins": [{{"type": "bridge", "bridge": "{}", "isGateway": true, "ipMasq": false,
           "ipam": {{"type": "host-local", "dataDir": "{}", "ranges": [[{{"subnet": "10.97.{octet}.0/24"}}]]}}}}]}}"#,
        bridge.0,
        ipam.display()
    );
    fs::write(node.cni_conf.join("10-test.conflist"), conflist).unwrap();
    Some((bridge, ipam.join(name)))
}

/// The addresses host-local holds in `leases` (one file per address).
pub fn leased(leases: &Path) -> Vec<String> {
    fs::read_dir(leases)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every address still leased in any of the node's test networks, as `<network>/<address>`.
pub fn leases_left(node: &Node) -> Vec<String> {
    let Ok(networks) = fs::read_dir(ipam_dir(node)) else {
        return Vec::new();
    };
    networks
        .flatten()
        .flat_map(|n| {
            let net = n.file_name().to_string_lossy().into_owned();
            leased(&n.path()).into_iter().map(move |ip| format!("{net}/{ip}"))
        })
        .collect()
}
