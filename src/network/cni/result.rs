//! Plugin output: ADD results (CNI 0.3.x, 0.4.0 and 1.x, which share one shape), their conversion between
//! versions for `prevResult`, and the CNI error document a failing plugin prints.
//!
//! Everything here is pure: it decodes bytes a plugin printed and never trusts them.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use super::{version_at_least, SUPPORTED_VERSIONS};

/// The result of an ADD: what the plugins created and which addresses the sandbox got.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    /// The CNI version of the result.
    pub cni_version: String,
    /// Interfaces created (host side and sandbox side).
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    pub ips: Vec<IpConfig>,
    /// Routes set up in the sandbox.
    pub routes: Vec<Route>,
    /// DNS settings the network suggests.
    pub dns: Dns,
    /// The sandbox interface name the result was requested for (`CNI_IFNAME`).
    pub ifname: String,
    raw: Value,
}

/// An interface a plugin created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address.
    #[serde(default)]
    pub mac: String,
    /// The network namespace path for sandbox interfaces; empty for host interfaces.
    #[serde(default)]
    pub sandbox: String,
}

/// An assigned address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Gateway, when the plugin names one.
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`].
    pub interface: Option<usize>,
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub dst: IpAddr,
    /// Destination prefix length.
    pub dst_prefix_len: u8,
    /// Next hop; the default gateway when `None`.
    pub gw: Option<IpAddr>,
}

/// DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Dns {
    /// Name servers, in priority order.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default)]
    pub domain: String,
    /// Search domains.
    #[serde(default)]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResult {
    #[serde(default)]
    cni_version: String,
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<RawIp>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    dns: Option<Dns>,
}

#[derive(Deserialize)]
struct RawIp {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    interface: Option<usize>,
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    #[serde(default)]
    gw: Option<String>,
}

impl CniResult {
    /// Decodes a result; `ifname` is the sandbox interface it was requested for.
    pub fn parse(bytes: &[u8], ifname: &str) -> Result<Self, String> {
        let raw: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Self::from_value(raw, ifname)
    }

    pub(super) fn from_value(raw: Value, ifname: &str) -> Result<Self, String> {
        let r: RawResult = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        if !SUPPORTED_VERSIONS.contains(&r.cni_version.as_str()) {
            return Err(format!("unsupported result cniVersion {:?}", r.cni_version));
        }
        let mut ips = Vec::with_capacity(r.ips.len());
        for (i, ip) in r.ips.into_iter().enumerate() {
            let (address, prefix_len) = parse_cidr(&ip.address)
                .ok_or_else(|| format!("ips[{i}].address: invalid CIDR {:?}", ip.address))?;
            if let Some(n) = ip.interface.filter(|n| *n >= r.interfaces.len()) {
                return Err(format!(
                    "ips[{i}].interface: index {n} is out of range ({} interfaces)",
                    r.interfaces.len()
                ));
            }
            ips.push(IpConfig {
                address,
                prefix_len,
                gateway: parse_optional_ip(ip.gateway.as_deref(), || format!("ips[{i}].gateway"))?,
                interface: ip.interface,
            });
        }
        let mut routes = Vec::with_capacity(r.routes.len());
        for (i, route) in r.routes.into_iter().enumerate() {
            let (dst, dst_prefix_len) = parse_cidr(&route.dst)
                .ok_or_else(|| format!("routes[{i}].dst: invalid CIDR {:?}", route.dst))?;
            routes.push(Route {
                dst,
                dst_prefix_len,
                gw: parse_optional_ip(route.gw.as_deref(), || format!("routes[{i}].gw"))?,
            });
        }
        Ok(CniResult {
            cni_version: r.cni_version,
            interfaces: r.interfaces,
            ips,
            routes,
            dns: r.dns.unwrap_or_default(),
            ifname: ifname.to_string(),
            raw,
        })
    }

    /// The result as the plugins printed it (converted to the network's CNI version).
    pub fn to_json(&self) -> &Value {
        &self.raw
    }

    /// The pod IPs: the addresses of the sandbox interface (an `ips` entry without an interface index
    /// belongs to it too, as in go-cni), the first IPv4 address first and the others in result order, as
    /// containerd reports them to the kubelet.
    pub fn pod_ips(&self) -> Vec<String> {
        let mut ips: Vec<IpAddr> = self
            .ips
            .iter()
            .filter(|ip| match ip.interface {
                None => true,
                Some(n) => self.interfaces.get(n).is_some_and(|i| i.name == self.ifname),
            })
            .map(|ip| ip.address)
            .collect();
        if let Some(v4) = ips.iter().position(IpAddr::is_ipv4) {
            let first = ips.remove(v4);
            ips.insert(0, first);
        }
        ips.iter().map(IpAddr::to_string).collect()
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix))
}

fn parse_optional_ip(s: Option<&str>, field: impl Fn() -> String) -> Result<Option<IpAddr>, String> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{}: invalid IP {s:?}", field())),
    }
}

/// Rewrites a result document for another CNI version: 1.0.0 dropped `ips[].version`, which 0.3.x and
/// 0.4.0 require. Everything else is shared by the versions peapod supports.
pub(super) fn convert(mut raw: Value, to_version: &str) -> Value {
    let Value::Object(doc) = &mut raw else {
        return raw;
    };
    doc.insert("cniVersion".into(), to_version.into());
    let wants_version = !version_at_least(to_version, "1.0.0");
    if let Some(Value::Array(ips)) = doc.get_mut("ips") {
        for ip in ips.iter_mut().filter_map(Value::as_object_mut) {
            if !wants_version {
                ip.remove("version");
            } else if !ip.contains_key("version") {
                let v6 = ip
                    .get("address")
                    .and_then(Value::as_str)
                    .and_then(parse_cidr)
                    .is_some_and(|(a, _)| a.is_ipv6());
                ip.insert("version".into(), if v6 { "6" } else { "4" }.into());
            }
        }
    }
    raw
}

/// The error a plugin reports: its CNI error document, or what libcni makes of a failure without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The CNI error code (0 when the plugin printed no error document).
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer details.
    pub details: String,
}

/// Well-known error code: "container unknown or does not exist"; nothing to clean up.
pub const CODE_UNKNOWN_CONTAINER: u32 = 3;

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

impl PluginError {
    /// Builds the error of a plugin that exited with `status` (its description, e.g. `exit status 1`),
    /// from what it printed: the error document on stdout, else stderr, as libcni does.
    pub fn from_output(status: &str, stdout: &[u8], stderr: &[u8]) -> Self {
        let error = |msg: String| PluginError {
            code: 0,
            msg,
            details: String::new(),
        };
        let stdout_text = String::from_utf8_lossy(stdout);
        if stdout_text.trim().is_empty() {
            let stderr = String::from_utf8_lossy(stderr);
            let stderr = stderr.trim();
            return if stderr.is_empty() {
                error(format!("netplugin failed with no error message: {status}"))
            } else {
                error(format!("netplugin failed: {stderr:?}"))
            };
        }
        match serde_json::from_slice::<RawError>(stdout) {
            Ok(e) => PluginError {
                code: e.code,
                msg: e.msg,
                details: e.details,
            },
            Err(e) => error(format!(
                "netplugin failed but error parsing its diagnostic message {:?}: {e}",
                stdout_text.trim()
            )),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if !self.details.is_empty() {
            write!(f, "; {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginError {}
