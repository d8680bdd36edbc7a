//! Running one plugin: the runtime arguments (`CNI_*` environment), finding the executable in the plugin
//! directories, and executing it directly (never through a shell) with a clean environment, the config on
//! stdin, bounded output and a deadline after which its whole process group is killed.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::config::{valid_name, NAME_RULE};
use super::{Error, PluginFailure};

/// The largest stdout a plugin may print (results and error documents are a few KiB).
const MAX_STDOUT: u64 = 1 << 20;
/// How much of a plugin's stderr is kept for error messages and logs.
const MAX_STDERR: u64 = 64 << 10;
/// `PATH` for plugins: they run `iptables`, `ip6tables` and friends by name.
const PLUGIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

/// The runtime side of a CNI call: which container, which namespace, which interface, which arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CniRuntime {
    /// `CNI_CONTAINERID`: the sandbox id.
    pub container_id: String,
    /// `CNI_NETNS`: the pinned network namespace.
    pub netns_path: PathBuf,
    /// `CNI_IFNAME`: the interface to create in the sandbox.
    pub ifname: String,
    /// `CNI_ARGS`, in order.
    pub args: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, ...), passed in `runtimeConfig` to plugins declaring them.
    pub capability_args: Map<String, Value>,
}

impl CniRuntime {
    /// The runtime arguments containerd passes for a pod sandbox: `eth0` and the `K8S_POD_*` args.
    pub fn for_pod(container_id: &str, netns_path: &Path, namespace: &str, name: &str, uid: &str) -> Self {
        let args = [
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", namespace),
            ("K8S_POD_NAME", name),
            ("K8S_POD_INFRA_CONTAINER_ID", container_id),
            ("K8S_POD_UID", uid),
        ];
        CniRuntime {
            container_id: container_id.to_string(),
            netns_path: netns_path.to_path_buf(),
            ifname: "eth0".to_string(),
            args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            capability_args: Map::new(),
        }
    }

    /// The runtime arguments for a DEL of a sandbox whose pod is no longer known: `eth0`, no arguments
    /// (DEL then uses the arguments cached by the ADD).
    pub fn for_sandbox(container_id: &str, netns_path: &Path) -> Self {
        CniRuntime {
            container_id: container_id.to_string(),
            netns_path: netns_path.to_path_buf(),
            ifname: "eth0".to_string(),
            args: Vec::new(),
            capability_args: Map::new(),
        }
    }

    /// `CNI_ARGS`: `KEY=VALUE` pairs joined by `;`. Keys and values may not contain `=` or `;`.
    pub fn cni_args(&self) -> Result<String, Error> {
        let mut out = Vec::with_capacity(self.args.len());
        for (k, v) in &self.args {
            if k.is_empty() || k.contains(['=', ';', '\0']) || v.contains(['=', ';', '\0']) {
                return Err(Error::InvalidRuntime(format!(
                    "CNI argument {k:?}={v:?}: keys and values may not contain '=' or ';'"
                )));
            }
            out.push(format!("{k}={v}"));
        }
        Ok(out.join(";"))
    }

    /// Checks the container ID and interface name as libcni does.
    pub(super) fn validate(&self) -> Result<(), Error> {
        if !valid_name(&self.container_id) {
            return Err(Error::InvalidRuntime(format!(
                "invalid container ID {:?}: {NAME_RULE}",
                self.container_id
            )));
        }
        let ifname = &self.ifname;
        if ifname.is_empty()
            || ifname.len() > MAX_IFNAME
            || ifname == "."
            || ifname == ".."
            || ifname
                .chars()
                .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
        {
            return Err(Error::InvalidRuntime(format!(
                "invalid interface name {ifname:?}: 1 to {MAX_IFNAME} characters, no '/', ':' or whitespace"
            )));
        }
        if self.netns_path.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Error::InvalidRuntime(
                "network namespace path contains NUL".into(),
            ));
        }
        self.cni_args().map(|_| ())
    }
}

/// The executable of plugin `plugin`: the first regular file of that name in `bin_dirs`.
pub fn find_plugin(plugin: &str, bin_dirs: &[PathBuf]) -> Result<PathBuf, PluginFailure> {
    if super::config::valid_plugin_type(plugin) {
        for dir in bin_dirs {
            let path = dir.join(plugin);
            if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                return Ok(path);
            }
        }
    }
    Err(PluginFailure::NotFound {
        plugin: plugin.to_string(),
        paths: bin_dirs.to_vec(),
    })
}

/// What one plugin run printed.
#[derive(Debug)]
pub(super) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// One plugin invocation.
pub(super) struct Invocation<'a> {
    /// `ADD`, `DEL` or `CHECK`.
    pub command: &'static str,
    pub plugin: &'a Path,
    pub runtime: &'a CniRuntime,
    /// `CNI_NETNS` (empty on DEL when the namespace is gone).
    pub netns: &'a str,
    /// `CNI_ARGS`, from [`CniRuntime::cni_args`].
    pub cni_args: &'a str,
    pub bin_dirs: &'a [PathBuf],
    pub stdin: Vec<u8>,
    pub timeout: Duration,
}

/// Runs the plugin and collects its output; a non-zero exit is returned as an [`Output`] too.
pub(super) async fn run(inv: Invocation<'_>) -> Result<Output, PluginFailure> {
    let cni_path = std::env::join_paths(inv.bin_dirs).map_err(|e| PluginFailure::Spawn {
        path: inv.plugin.to_path_buf(),
        source: std::io::Error::other(format!("plugin directories cannot form CNI_PATH: {e}")),
    })?;
    let mut cmd = Command::new(inv.plugin);
    cmd.env_clear()
        .env("CNI_COMMAND", inv.command)
        .env("CNI_CONTAINERID", &inv.runtime.container_id)
        .env("CNI_NETNS", inv.netns)
        .env("CNI_IFNAME", &inv.runtime.ifname)
        .env("CNI_ARGS", inv.cni_args)
        .env("CNI_PATH", cni_path)
        .env("PATH", PLUGIN_PATH)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| PluginFailure::Spawn {
        path: inv.plugin.to_path_buf(),
        source,
    })?;
    let pgid = child.id();
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let data = inv.stdin;
    let write = async move {
        if let Some(mut stdin) = stdin {
            // A plugin may exit without reading its config; a broken pipe is its own business.
            let _ = stdin.write_all(&data).await;
        }
    };
    let io = async {
        let ((), out, err, status) = tokio::join!(
            write,
            read_bounded(stdout, MAX_STDOUT),
            read_bounded(stderr, MAX_STDERR),
            child.wait()
        );
        (out, err, status)
    };
    let (out, err, status) = match tokio::time::timeout(inv.timeout, io).await {
        Ok(done) => done,
        Err(_) => {
            if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::SIGKILL);
            }
            let _ = child.kill().await;
            return Err(PluginFailure::Timeout { after: inv.timeout });
        }
    };
    let status = status.map_err(|source| PluginFailure::Spawn {
        path: inv.plugin.to_path_buf(),
        source,
    })?;
    let (stdout, overflow) = out;
    if overflow {
        return Err(PluginFailure::Output(format!(
            "output larger than {MAX_STDOUT} bytes"
        )));
    }
    let (stderr, _) = err;
    if !stderr.is_empty() {
        tracing::debug!(
            plugin = %inv.plugin.display(),
            command = inv.command,
            stderr = %String::from_utf8_lossy(&stderr),
            "CNI plugin wrote to stderr"
        );
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Reads at most `limit` bytes and drains the rest (so the writer never blocks); `true` when it overflowed.
async fn read_bounded(reader: Option<impl AsyncRead + Unpin>, limit: u64) -> (Vec<u8>, bool) {
    let Some(mut reader) = reader else {
        return (Vec::new(), false);
    };
    let mut buf = Vec::new();
    if (&mut reader).take(limit).read_to_end(&mut buf).await.is_err() {
        return (buf, false);
    }
    let rest = tokio::io::copy(&mut reader, &mut tokio::io::sink())
        .await
        .unwrap_or(0);
    (buf, rest > 0)
}
