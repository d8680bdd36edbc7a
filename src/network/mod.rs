//! Sandbox networking. Without a CNI configuration a sandbox gets a loopback-only network namespace (its
//! containers still share localhost); with one, [`cni`] attaches the sandbox through the node's CNI plugins.
//! This module also finds the node's own address for `status.hostIP`.

pub mod cni;

use std::net::IpAddr;

/// The interface of the IPv4 default route, from a `/proc/net/route` text.
pub fn default_route_interface(route_table: &str) -> Option<String> {
    route_table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&"00000000") && f.get(7) == Some(&"00000000")).then(|| f[0].to_string())
    })
}

/// The node's IP: the first IPv4 address of the default-route interface, else the first global address of
/// any interface that is up.
pub fn node_ip() -> Option<String> {
    let iface = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|t| default_route_interface(&t));
    let addrs: Vec<(String, IpAddr)> = nix::ifaddrs::getifaddrs()
        .ok()?
        .filter_map(|a| {
            let ip = a.address.as_ref().and_then(|s| {
                s.as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            })?;
            Some((a.interface_name, ip))
        })
        .filter(|(_, ip)| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    if let Some(iface) = iface {
        if let Some((_, ip)) = addrs.iter().find(|(n, ip)| *n == iface && ip.is_ipv4()) {
            return Some(ip.to_string());
        }
    }
    addrs
        .iter()
        .find(|(_, ip)| ip.is_ipv4())
        .or(addrs.first())
        .map(|(_, ip)| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_default_route_interface() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn node_ip_is_not_loopback() {
        if let Some(ip) = node_ip() {
            assert!(!ip.parse::<IpAddr>().unwrap().is_loopback());
        }
    }
}
