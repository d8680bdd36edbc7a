//! Errors of the CNI client. Plugin failures read like libcni's (`plugin type="bridge" failed (add): ...`)
//! once the source chain is joined with `: `, which is what the sandbox shows in `FailedCreatePodSandBox`.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::PluginError;

/// Errors of the CNI client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration (or cache) directory could not be listed.
    #[error("read CNI config directory {}", path.display())]
    ReadConfDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A configuration (or cache) file could not be read.
    #[error("read CNI config {}", path.display())]
    ReadConf {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A configuration file is too large.
    #[error("CNI config {} is larger than {limit} bytes", path.display())]
    ConfTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A configuration file is not JSON.
    #[error("parse CNI config {}", path.display())]
    ParseConf {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A configuration file is JSON but not a valid network configuration.
    #[error("invalid CNI config {}: {reason}", path.display())]
    InvalidConf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A configuration names a plugin that is not installed.
    #[error("CNI config {}", path.display())]
    MissingPlugin {
        /// The file.
        path: PathBuf,
        /// Which plugin, where it was looked for.
        #[source]
        source: PluginFailure,
    },
    /// The runtime arguments are invalid (container ID, interface name, `CNI_ARGS`).
    #[error("invalid CNI runtime arguments: {0}")]
    InvalidRuntime(String),
    /// ADD was given something that is not a network namespace.
    #[error("{} is not a network namespace", path.display())]
    NotNetns {
        /// The path.
        path: PathBuf,
    },
    /// A plugin failed; the message reads like libcni's: `plugin type="bridge" failed (add): ...`.
    #[error("plugin {plugin} failed ({op})")]
    Plugin {
        /// `type="bridge"`, plus ` name="..."` when the plugin entry has a name.
        plugin: String,
        /// `add`, `delete` or `check`.
        op: &'static str,
        /// What went wrong.
        #[source]
        source: PluginFailure,
    },
    /// The attachment cache could not be written.
    #[error("write CNI cache {}", path.display())]
    WriteCache {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// CHECK needs CNI 0.4.0 or later.
    #[error("configuration version {version:?} does not support the CHECK command")]
    CheckUnsupported {
        /// The network's version.
        version: String,
    },
    /// CHECK of an attachment that was never added (or already deleted).
    #[error("no cached CNI result for container {container_id:?} interface {ifname:?}")]
    NotAdded {
        /// Container ID.
        container_id: String,
        /// Interface name.
        ifname: String,
    },
}

/// Why one plugin run failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginFailure {
    /// The plugin executable is not in any plugin directory.
    #[error("failed to find plugin {plugin:?} in path [{}]", join_paths(paths))]
    NotFound {
        /// Plugin type.
        plugin: String,
        /// Directories searched.
        paths: Vec<PathBuf>,
    },
    /// The plugin could not be started.
    #[error("start {}", path.display())]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The plugin did not finish in time and was killed.
    #[error("timed out after {after:?}")]
    Timeout {
        /// The deadline.
        after: Duration,
    },
    /// The plugin reported an error.
    #[error(transparent)]
    Failed(#[from] PluginError),
    /// The plugin succeeded but printed something that is not a valid result.
    #[error("invalid result: {0}")]
    Output(String),
}

/// Directories as Go prints a `[]string`: space-separated.
fn join_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(" ")
}
