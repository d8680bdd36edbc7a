//! A CNI client in the manner of libcni and containerd's go-cni: load the node's network configuration
//! list, run its plugins for ADD (in order, chaining `prevResult`), DEL (in reverse, with the cached
//! result) and CHECK, cache each attachment so DEL works after a restart, and report the pod IPs.
//!
//! Plugins are executables run directly with the `CNI_*` environment and their config on stdin (see
//! [`exec`]). The `loopback` plugin is never run: the pause process brings `lo` up itself. This module
//! does not create or pin network namespaces and knows nothing of pods beyond the `K8S_POD_*` arguments.

mod cache;
mod config;
mod error;
mod exec;
mod result;
#[cfg(test)]
mod tests;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{Map, Value};

pub use config::NetworkConfig;
pub use error::{Error, PluginFailure};
pub use exec::{find_plugin, CniRuntime};
pub use result::{CniResult, Dns, Interface, IpConfig, PluginError, Route, CODE_UNKNOWN_CONTAINER};

use exec::Invocation;

/// Where the node's network configuration lives.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// Where plugins are looked for: the upstream location, then Debian's.
pub const DEFAULT_BIN_DIRS: [&str; 2] = ["/opt/cni/bin", "/usr/lib/cni"];
/// How long one plugin run may take by default.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The CNI versions peapod runs plugins with.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The CNI client: where plugins live, where attachments are cached, how long a plugin may run.
#[derive(Debug, Clone)]
pub struct CniConfig {
    bin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
    timeout: Duration,
}

impl CniConfig {
    /// A client running plugins from `bin_dirs` and caching attachments in `cache_dir`.
    pub fn new(bin_dirs: Vec<PathBuf>, cache_dir: PathBuf) -> Self {
        CniConfig {
            bin_dirs,
            cache_dir,
            timeout: DEFAULT_PLUGIN_TIMEOUT,
        }
    }

    /// Sets the deadline of each plugin run.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Loads the node's network configuration: the lexically first `*.conflist`/`*.conf`/`*.json` of the
    /// first directory in `conf_dirs` holding one. `Ok(None)` means loopback-only networking. Every plugin
    /// of the list must be found in `bin_dirs`.
    pub fn load(conf_dirs: &[PathBuf], bin_dirs: &[PathBuf]) -> Result<Option<NetworkConfig>, Error> {
        config::load(conf_dirs, bin_dirs)
    }

    /// Attaches the sandbox to the network: runs every plugin with ADD in order, each getting the previous
    /// one's result, caches the final result and returns it. On failure the plugins are run with DEL so
    /// nothing half-made is left behind, and the ADD error is returned.
    pub async fn add(&self, net: &NetworkConfig, rt: &CniRuntime) -> Result<CniResult, Error> {
        rt.validate()?;
        if !is_netns(&rt.netns_path) {
            return Err(Error::NotNetns {
                path: rt.netns_path.clone(),
            });
        }
        let raw = match self.add_chain(net, rt).await {
            Ok(raw) => raw,
            Err(e) => {
                self.undo_add(net, rt, None).await;
                return Err(e);
            }
        };
        crate::sys::crash::point("cni-added");
        match self.finish_add(net, rt, &raw) {
            Ok(result) => {
                tracing::info!(
                    container = %rt.container_id,
                    network = %net.name(),
                    ips = ?result.pod_ips(),
                    "attached sandbox to CNI network"
                );
                Ok(result)
            }
            Err(e) => {
                self.undo_add(net, rt, Some(&raw)).await;
                Err(e)
            }
        }
    }

    /// Decodes the final result and caches the attachment.
    fn finish_add(&self, net: &NetworkConfig, rt: &CniRuntime, raw: &Value) -> Result<CniResult, Error> {
        let result = CniResult::from_value(raw.clone(), &rt.ifname).map_err(|reason| Error::Plugin {
            plugin: net
                .plugins()
                .last()
                .map(config::plugin_description)
                .unwrap_or_default(),
            op: "add",
            source: PluginFailure::Output(reason),
        })?;
        cache::store(&self.cache_dir, rt, &cache::Entry::new(net, rt, raw))?;
        Ok(result)
    }

    /// Best-effort DEL after a failed ADD; its own failure is only logged.
    async fn undo_add(&self, net: &NetworkConfig, rt: &CniRuntime, prev: Option<&Value>) {
        if let Err(error) = self.del_chain(net, rt, prev).await {
            tracing::warn!(
                error = %crate::sys::chain(&error),
                container = %rt.container_id,
                "failed to clean up after CNI ADD failure"
            );
        }
    }

    async fn add_chain(&self, net: &NetworkConfig, rt: &CniRuntime) -> Result<Value, Error> {
        let netns = rt.netns_path.to_string_lossy();
        let mut prev: Option<Value> = None;
        for plugin in net.plugins() {
            let fail = |source| Error::Plugin {
                plugin: config::plugin_description(plugin),
                op: "add",
                source,
            };
            let stdout = self
                .invoke(net, plugin, "ADD", rt, &netns, prev.as_ref())
                .await
                .map_err(fail)?;
            let raw: Value = serde_json::from_slice(&stdout).map_err(|e| {
                fail(PluginFailure::Output(format!(
                    "plugin printed no JSON result: {e}"
                )))
            })?;
            // Validate before handing it on; a result in another version is converted as libcni does.
            CniResult::from_value(raw.clone(), &rt.ifname).map_err(|e| fail(PluginFailure::Output(e)))?;
            prev = Some(result::convert(raw, net.cni_version()));
        }
        prev.ok_or_else(|| Error::InvalidRuntime(format!("network {:?} has no plugins", net.name())))
    }

    /// Detaches the sandbox: runs the plugins with DEL in reverse order, with the cached result as
    /// `prevResult`, then drops the cache entry. The cached config is used when there is one (what ADD set
    /// up, as CRI-O does), else `net`; with neither there is nothing to do. A namespace that is gone is
    /// passed as an empty `CNI_NETNS` (as containerd does) and plugins saying the container is unknown
    /// (code 3) count as done, so DEL can be repeated.
    pub async fn del(&self, net: Option<&NetworkConfig>, rt: &CniRuntime) -> Result<(), Error> {
        rt.validate()?;
        let cache_file = cache::path(&self.cache_dir, rt);
        let cached = cache::load(&self.cache_dir, rt)
            .and_then(|entry| {
                entry
                    .map(|e| e.network(&cache_file).map(|net| (net, e)))
                    .transpose()
            })
            .unwrap_or_else(|error| {
                // As libcni: an unusable cache entry is dropped, DEL goes on without it.
                tracing::warn!(
                    file = %cache_file.display(),
                    error = %crate::sys::chain(&error),
                    "ignoring unusable CNI cache entry"
                );
                None
            });
        let (net, prev, rt) = match (cached, net) {
            (Some((cached, entry)), _) => (cached, Some(entry.result.clone()), with_cached_args(rt, &entry)),
            (None, Some(current)) => (current.clone(), None, rt.clone()),
            (None, None) => return cache::remove(&self.cache_dir, rt),
        };
        let prev = prev
            .filter(|_| version_at_least(net.cni_version(), "0.4.0"))
            .map(|raw| result::convert(raw, net.cni_version()));
        self.del_chain(&net, &rt, prev.as_ref()).await?;
        cache::remove(&self.cache_dir, &rt)?;
        tracing::info!(
            container = %rt.container_id,
            network = %net.name(),
            "detached sandbox from CNI network"
        );
        Ok(())
    }

    async fn del_chain(
        &self,
        net: &NetworkConfig,
        rt: &CniRuntime,
        prev: Option<&Value>,
    ) -> Result<(), Error> {
        let netns = if is_netns(&rt.netns_path) {
            rt.netns_path.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        for plugin in net.plugins().iter().rev() {
            match self.invoke(net, plugin, "DEL", rt, &netns, prev).await {
                Ok(_) => {}
                Err(PluginFailure::Failed(e)) if e.code == CODE_UNKNOWN_CONTAINER => {
                    tracing::debug!(
                        plugin = %config::plugin_description(plugin),
                        error = %e,
                        "CNI plugin has nothing to delete"
                    );
                }
                Err(source) => {
                    return Err(Error::Plugin {
                        plugin: config::plugin_description(plugin),
                        op: "delete",
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Runs CHECK (CNI 0.4.0 and later) with the cached result; a no-op when the list sets `disableCheck`.
    pub async fn check(&self, net: &NetworkConfig, rt: &CniRuntime) -> Result<(), Error> {
        rt.validate()?;
        if !version_at_least(net.cni_version(), "0.4.0") {
            return Err(Error::CheckUnsupported {
                version: net.cni_version().to_string(),
            });
        }
        if net.disable_check() {
            return Ok(());
        }
        let entry = cache::load(&self.cache_dir, rt)?.ok_or_else(|| Error::NotAdded {
            container_id: rt.container_id.clone(),
            ifname: rt.ifname.clone(),
        })?;
        let prev = result::convert(entry.result, net.cni_version());
        let netns = rt.netns_path.to_string_lossy();
        for plugin in net.plugins() {
            self.invoke(net, plugin, "CHECK", rt, &netns, Some(&prev))
                .await
                .map_err(|source| Error::Plugin {
                    plugin: config::plugin_description(plugin),
                    op: "check",
                    source,
                })?;
        }
        Ok(())
    }

    /// The cached ADD result of an attachment, e.g. to report pod IPs after a restart.
    pub fn cached_result(&self, rt: &CniRuntime) -> Result<Option<CniResult>, Error> {
        rt.validate()?;
        let Some(entry) = cache::load(&self.cache_dir, rt)? else {
            return Ok(None);
        };
        let file = cache::path(&self.cache_dir, rt);
        CniResult::from_value(entry.result, &rt.ifname)
            .map(Some)
            .map_err(|reason| Error::InvalidConf { path: file, reason })
    }

    /// The runtime arguments of every cached attachment: after a reboot, the sandboxes whose attachments
    /// are still cached get `del(None, &rt)` so their addresses are released.
    pub fn cached_attachments(&self) -> Result<Vec<CniRuntime>, Error> {
        Ok(cache::list(&self.cache_dir)?
            .iter()
            .map(cache::Entry::runtime)
            .collect())
    }

    async fn invoke(
        &self,
        net: &NetworkConfig,
        plugin: &Map<String, Value>,
        command: &'static str,
        rt: &CniRuntime,
        netns: &str,
        prev: Option<&Value>,
    ) -> Result<Vec<u8>, PluginFailure> {
        let plugin_type = plugin.get("type").and_then(Value::as_str).unwrap_or_default();
        let path = find_plugin(plugin_type, &self.bin_dirs)?;
        // Every public entry point validated the arguments first.
        let cni_args = rt.cni_args().unwrap_or_default();
        let out = exec::run(Invocation {
            command,
            plugin: &path,
            runtime: rt,
            netns,
            cni_args: &cni_args,
            bin_dirs: &self.bin_dirs,
            stdin: config::plugin_stdin(net, plugin, prev, &rt.capability_args),
            timeout: self.timeout,
        })
        .await?;
        if !out.status.success() {
            let status = describe_status(out.status);
            return Err(PluginError::from_output(&status, &out.stdout, &out.stderr).into());
        }
        Ok(out.stdout)
    }
}

/// The runtime arguments of a DEL: the caller's, with the ADD's `CNI_ARGS` and capability arguments where
/// the caller has none.
fn with_cached_args(rt: &CniRuntime, entry: &cache::Entry) -> CniRuntime {
    let mut rt = rt.clone();
    if rt.args.is_empty() {
        rt.args = entry.cni_args.clone();
    }
    if rt.capability_args.is_empty() {
        rt.capability_args = entry.capability_args.clone();
    }
    rt
}

/// `exit status 1` or `signal: 9`, as Go prints a failed command.
fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

/// Whether `path` is a network namespace (a pin on nsfs or a `/proc/<pid>/ns/net` link).
fn is_netns(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Whether version `a` is at least `b` (both `major.minor.patch`; unparseable versions never are).
pub(crate) fn version_at_least(a: &str, b: &str) -> bool {
    fn parse(v: &str) -> Option<(u64, u64, u64)> {
        let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
        let triple = (it.next()??, it.next()??, it.next()??);
        it.next().is_none().then_some(triple)
    }
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a >= b)
}
