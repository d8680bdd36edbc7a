//! TCP connections for network probes and hooks, made from inside the pod's network namespace (or the
//! host's for host-network pods), with errors worded as Go's net.Dial words them
//! (`dial tcp 10.1.2.3:8080: connect: connection refused`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use tokio::net::TcpStream;

use super::join_host_port;

/// Dials from one network namespace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dialer<'a> {
    netns: Option<&'a Path>,
}

impl<'a> Dialer<'a> {
    /// A dialer for the namespace pinned at `netns` (`None`: the caller's own).
    pub(super) fn new(netns: Option<&'a Path>) -> Self {
        Dialer { netns }
    }

    /// Connects to `host:port`; the error is Go's dial error text. The caller bounds the time.
    pub(super) async fn dial(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let addr = resolve(host, port).await?;
        let stream = match self.netns {
            None => TcpStream::connect(addr).await,
            Some(ns) => connect_in(ns, addr).await,
        };
        stream.map_err(|e| connect_error(host, port, &e))
    }
}

async fn connect_in(netns: &Path, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let std_stream = crate::sys::netns::connect_in(netns, addr)?;
    let stream = TcpStream::from_std(std_stream)?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// An IP literal as is; a name through the host's resolver (as the kubelet resolves it).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let lookup_failed = || format!("dial tcp: lookup {host}: no such host");
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut addrs) => addrs.next().ok_or_else(lookup_failed),
        Err(_) => Err(lookup_failed()),
    }
}

/// Go's error for a connect that failed with `e`.
fn connect_error(host: &str, port: u16, e: &std::io::Error) -> String {
    let addr = join_host_port(host.trim_start_matches('[').trim_end_matches(']'), port);
    match e.raw_os_error() {
        Some(errno) => format!("dial tcp {addr}: connect: {}", errno_text(errno)),
        None => format!("dial tcp {addr}: {e}"),
    }
}

/// Go's error for a dial that did not finish within the probe's timeout.
pub(super) fn timeout_error(host: &str, port: u16) -> String {
    format!("dial tcp {}: i/o timeout", join_host_port(host, port))
}

/// Go's text of an errno: the C library's, lower-cased first letter (`connection refused`).
pub(super) fn errno_text(errno: i32) -> String {
    let desc = nix::errno::Errno::from_raw(errno).desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {errno}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_read_like_go() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            connect_error("10.1.2.3", 8080, &e),
            "dial tcp 10.1.2.3:8080: connect: connection refused"
        );
        let e = std::io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert_eq!(
            connect_error("::1", 80, &e),
            "dial tcp [::1]:80: connect: no route to host"
        );
        assert_eq!(timeout_error("10.1.2.3", 81), "dial tcp 10.1.2.3:81: i/o timeout");
        assert_eq!(errno_text(libc::ENETUNREACH), "network is unreachable");
    }

    #[tokio::test]
    async fn literals_resolve_without_lookup() {
        assert_eq!(
            resolve("[::1]", 9).await.unwrap(),
            "[::1]:9".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve("127.0.0.1", 9).await.unwrap(),
            "127.0.0.1:9".parse::<SocketAddr>().unwrap()
        );
    }
}
