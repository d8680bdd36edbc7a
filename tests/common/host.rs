//! Host-side pieces several root tests share: mounts below a directory, the runtime configuration a node's
//! supervisor runs with, and a CNI bridge network (bridge plus host-local addresses) whose link is deleted
//! when the test ends, passed or failed.

use std::fs;
use std::path::{Path, PathBuf};

use peapod::runtime::layout::RuntimeConfig;

use super::{peapod_bin, Node};

/// Mount points below `dir` in this mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_string_lossy().into_owned();
    peapod::sys::mount::mountinfo_targets(&info)
        .filter(|t| t.starts_with(&prefix))
        .collect()
}

/// The runtime configuration the supervisor of `node` uses, for library calls made by a test.
pub fn runtime_config(node: &Node) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::new(
        node.state.clone(),
        node.run.clone(),
        PathBuf::from("runc"),
        peapod_bin(),
    );
    cfg.cni_conf_dir = node.cni_conf.clone();
    cfg.cgroup_parent = node.cgroup_parent.clone();
    cfg
}

/// Where the bridge and host-local CNI plugins are installed, if they are.
pub fn bridge_plugins() -> Option<PathBuf> {
    ["/usr/lib/cni", "/opt/cni/bin"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("bridge").is_file() && d.join("host-local").is_file())
}

/// Whether a test needing `bridge_plugins` must be skipped (it says so on stderr).
pub fn skip_without_bridge_plugins() -> bool {
    let missing = bridge_plugins().is_none();
    if missing {
        eprintln!("skipping: the bridge and host-local CNI plugins are not installed");
    }
    missing
}

/// A CNI network `name` of the bridge plugin with host-local addresses in `10.<net>.<octet>.0/24`; the
/// bridge link is deleted on drop.
pub struct BridgeNetwork {
    /// The CNI network name.
    pub name: String,
    /// The bridge link, unique to the node that made it.
    pub bridge: String,
    /// The third octet of the subnet, derived from the node so that concurrent tests do not collide.
    pub octet: u8,
    /// host-local's data directory.
    pub ipam: PathBuf,
    net: u8,
}

impl BridgeNetwork {
    /// A network for `node`: bridge `<prefix><6 hex digits of the node>`, subnet `10.<net>.x.0/24`, the
    /// address store below the node's directory. Nothing is written until `install`.
    pub fn new(node: &Node, name: &str, prefix: &str, net: u8) -> BridgeNetwork {
        let suffix = node.cgroup_parent.trim_start_matches("/peapod-test-").to_string();
        BridgeNetwork {
            name: name.to_string(),
            bridge: format!("{prefix}{}", &suffix[..6]),
            octet: u8::from_str_radix(&suffix[..2], 16).unwrap() % 200 + 20,
            ipam: node.dir.path().join("cni-ipam"),
            net,
        }
    }

    /// The addresses' common prefix, `10.<net>.<octet>.`.
    pub fn prefix(&self) -> String {
        format!("10.{}.{}.", self.net, self.octet)
    }

    /// host-local's lease directory of this network (a file per address).
    pub fn leases(&self) -> PathBuf {
        self.ipam.join(&self.name)
    }

    /// Writes the network's conflist into `node`'s CNI configuration directory.
    pub fn install(&self, node: &Node) {
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": [{
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "dataDir": self.ipam,
                    "ranges": [[{"subnet": format!("{}0/24", self.prefix())}]],
                },
            }],
        });
        let file = node.cni_conf.join(format!("10-{}.conflist", self.name));
        fs::write(file, conflist.to_string()).unwrap();
    }
}

impl Drop for BridgeNetwork {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
