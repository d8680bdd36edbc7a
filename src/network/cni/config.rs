//! Network configuration: finding the node's CNI config file, parsing and validating it, and building the
//! JSON each plugin reads on stdin (`name`, `cniVersion`, `prevResult`, `runtimeConfig` injected).
//!
//! Like containerd's go-cni, only the lexically first `*.conflist`, `*.conf` or `*.json` file of a config
//! directory is used, and a single-plugin `.conf` is wrapped into a list. This module reads files; it never
//! runs a plugin.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{find_plugin, version_at_least, Error, SUPPORTED_VERSIONS};

/// The largest config file peapod reads.
pub(super) const MAX_CONF_BYTES: u64 = 1 << 20;
/// File extensions of network configurations, as containerd loads them.
const CONF_EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];

/// A validated network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    name: String,
    cni_version: String,
    disable_check: bool,
    plugins: Vec<Map<String, Value>>,
    source: PathBuf,
}

impl NetworkConfig {
    /// The network name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CNI version every plugin of the list is run with.
    pub fn cni_version(&self) -> &str {
        &self.cni_version
    }

    /// The file it was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether the list asks runtimes never to run CHECK.
    pub fn disable_check(&self) -> bool {
        self.disable_check
    }

    /// The plugin types, in execution order.
    pub fn plugin_types(&self) -> Vec<&str> {
        self.plugins.iter().map(plugin_type).collect()
    }

    pub(super) fn plugins(&self) -> &[Map<String, Value>] {
        &self.plugins
    }

    /// The configuration as a list, as it is cached with an ADD result.
    pub(super) fn to_list_json(&self) -> Value {
        let mut list = Map::new();
        list.insert("cniVersion".into(), self.cni_version.clone().into());
        list.insert("name".into(), self.name.clone().into());
        if self.disable_check {
            list.insert("disableCheck".into(), true.into());
        }
        let plugins = self.plugins.iter().cloned().map(Value::Object).collect();
        list.insert("plugins".into(), Value::Array(plugins));
        Value::Object(list)
    }

    /// Parses a `.conflist` document.
    pub fn from_list(bytes: &[u8], source: &Path) -> Result<Self, Error> {
        let list = parse_object(bytes, source)?;
        Self::from_list_value(list, source)
    }

    /// Parses a single-plugin `.conf` document and wraps it into a list of one.
    pub fn from_single(bytes: &[u8], source: &Path) -> Result<Self, Error> {
        let conf = parse_object(bytes, source)?;
        if !matches!(conf.get("type"), Some(Value::String(t)) if !t.is_empty()) {
            let hint = if conf.contains_key("plugins") {
                " (a plugin list needs the .conflist extension)"
            } else {
                ""
            };
            return Err(invalid(source, format!("network type not found{hint}")));
        }
        let mut list = Map::new();
        for key in ["name", "cniVersion"] {
            if let Some(v) = conf.get(key) {
                list.insert(key.into(), v.clone());
            }
        }
        list.insert("plugins".into(), Value::Array(vec![Value::Object(conf)]));
        Self::from_list_value(list, source)
    }

    pub(super) fn from_list_value(list: Map<String, Value>, source: &Path) -> Result<Self, Error> {
        let name = match list.get("name") {
            Some(Value::String(n)) => n.clone(),
            Some(_) => return Err(invalid(source, "name must be a string")),
            None => return Err(invalid(source, "no name")),
        };
        if !valid_name(&name) {
            return Err(invalid(source, format!("invalid name {name:?}: {NAME_RULE}")));
        }
        let cni_version = pick_version(&list).map_err(|reason| invalid(source, reason))?;
        let disable_check = match list.get("disableCheck") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => return Err(invalid(source, format!("invalid disableCheck {other}"))),
        };
        let plugins = match list.get("plugins") {
            Some(Value::Array(p)) if p.is_empty() => return Err(invalid(source, "no plugins in list")),
            Some(Value::Array(p)) => p,
            Some(_) => return Err(invalid(source, "plugins must be a list")),
            None => return Err(invalid(source, "no plugins in list")),
        };
        let mut out = Vec::with_capacity(plugins.len());
        for (i, plugin) in plugins.iter().enumerate() {
            let Value::Object(plugin) = plugin else {
                return Err(invalid(source, format!("plugins[{i}] must be an object")));
            };
            match plugin.get("type") {
                Some(Value::String(t)) if valid_plugin_type(t) => {}
                Some(Value::String(t)) => {
                    return Err(invalid(
                        source,
                        format!("plugins[{i}].type: invalid plugin name {t:?}"),
                    ))
                }
                _ => return Err(invalid(source, format!("plugins[{i}]: missing 'type'"))),
            }
            out.push(plugin.clone());
        }
        Ok(NetworkConfig {
            name,
            cni_version,
            disable_check,
            plugins: out,
            source: source.to_path_buf(),
        })
    }
}

/// Loads the network configuration of the first directory in `conf_dirs` that holds one: its lexically
/// first `*.conflist`, `*.conf` or `*.json` file. `None` when no directory exists or holds a config file
/// (the sandbox then gets loopback only). Every plugin type must be found in `bin_dirs`.
pub fn load(conf_dirs: &[PathBuf], bin_dirs: &[PathBuf]) -> Result<Option<NetworkConfig>, Error> {
    for dir in conf_dirs {
        let Some(file) = conf_files(dir)?.into_iter().next() else {
            continue;
        };
        let bytes = read_bounded(&file, MAX_CONF_BYTES)?;
        let net = if file.extension().is_some_and(|e| e == "conflist") {
            NetworkConfig::from_list(&bytes, &file)?
        } else {
            NetworkConfig::from_single(&bytes, &file)?
        };
        for plugin in net.plugin_types() {
            find_plugin(plugin, bin_dirs).map_err(|source| Error::MissingPlugin {
                path: file.clone(),
                source,
            })?;
        }
        tracing::debug!(file = %file.display(), network = %net.name, "loaded CNI network config");
        return Ok(Some(net));
    }
    Ok(None)
}

/// The config files of `dir`, sorted by name; empty when the directory does not exist.
pub(super) fn conf_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(read_dir_error(dir, source)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| read_dir_error(dir, source))?.path();
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| CONF_EXTENSIONS.contains(&e));
        // Symlinked configs are common; a dangling link or a directory is not a config.
        if wanted && fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(files)
}

fn read_dir_error(dir: &Path, source: io::Error) -> Error {
    Error::ReadConfDir {
        path: dir.to_path_buf(),
        source,
    }
}

/// Reads a file of at most `limit` bytes.
pub(super) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let read_error = |source| Error::ReadConf {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(Error::ConfTooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

fn parse_object(bytes: &[u8], source: &Path) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid(source, "not a JSON object")),
        Err(e) => Err(Error::ParseConf {
            path: source.to_path_buf(),
            source: e,
        }),
    }
}

/// The list's `cniVersion`, or with CNI 1.1's `cniVersions` the highest version peapod supports.
pub(super) fn pick_version(list: &Map<String, Value>) -> Result<String, String> {
    let single = match list.get("cniVersion") {
        Some(Value::String(v)) => Some(v.clone()),
        Some(_) => return Err("cniVersion must be a string".into()),
        None => None,
    };
    let mut candidates: Vec<String> = single.iter().cloned().collect();
    if let Some(versions) = list.get("cniVersions") {
        let Value::Array(versions) = versions else {
            return Err("cniVersions must be a list of strings".into());
        };
        for v in versions {
            let Value::String(v) = v else {
                return Err("cniVersions must be a list of strings".into());
            };
            candidates.push(v.clone());
        }
        candidates.retain(|v| SUPPORTED_VERSIONS.contains(&v.as_str()));
        candidates.sort_by(|a, b| {
            let gt = |x: &str, y: &str| version_at_least(x, y);
            match (gt(a, b), gt(b, a)) {
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Equal,
            }
        });
        if let Some(best) = candidates.last() {
            return Ok(best.clone());
        }
        return Err(format!(
            "none of cniVersions is supported (peapod supports {})",
            SUPPORTED_VERSIONS.join(", ")
        ));
    }
    match single {
        None => Err("no cniVersion".into()),
        Some(v) if SUPPORTED_VERSIONS.contains(&v.as_str()) => Ok(v),
        Some(v) => Err(format!(
            "unsupported cniVersion {v:?} (peapod supports {})",
            SUPPORTED_VERSIONS.join(", ")
        )),
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidConf {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// What [`valid_name`] accepts, for error messages.
pub(super) const NAME_RULE: &str = "must start with a letter or digit, then letters, digits, '_', '.' or '-'";

/// A network name or container ID as libcni accepts it: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A plugin type names a file in a plugin directory: no path separator, not `.`/`..`.
pub(super) fn valid_plugin_type(t: &str) -> bool {
    !t.is_empty() && !t.contains(['/', '\0']) && t != "." && t != ".."
}

fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or_default()
}

/// `type="bridge" name="mynet"` (name only when the plugin entry has one), as libcni names a plugin.
pub(super) fn plugin_description(plugin: &Map<String, Value>) -> String {
    let mut out = format!("type={:?}", plugin_type(plugin));
    if let Some(name) = plugin
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        out.push_str(&format!(" name={name:?}"));
    }
    out
}

/// The stdin of one plugin run: its config with the list's `name` and `cniVersion`, the previous result
/// (if any) and the runtime's capability arguments for the capabilities the plugin declares.
pub(super) fn plugin_stdin(
    net: &NetworkConfig,
    plugin: &Map<String, Value>,
    prev_result: Option<&Value>,
    capability_args: &Map<String, Value>,
) -> Vec<u8> {
    let mut conf = plugin.clone();
    conf.insert("name".into(), net.name.clone().into());
    conf.insert("cniVersion".into(), net.cni_version.clone().into());
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    let mut runtime_config = Map::new();
    if let Some(Value::Object(caps)) = plugin.get("capabilities") {
        for (cap, enabled) in caps {
            if let (Value::Bool(true), Some(arg)) = (enabled, capability_args.get(cap)) {
                runtime_config.insert(cap.clone(), arg.clone());
            }
        }
    }
    if !runtime_config.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(runtime_config));
    }
    // Serializing a map of JSON values cannot fail.
    serde_json::to_vec(&Value::Object(conf)).unwrap_or_default()
}
