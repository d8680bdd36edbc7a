//! Sockets made inside another network namespace, without the caller ever leaving its own.
//!
//! A socket belongs to the network namespace of the thread that created it, for its whole life. So each call
//! here spawns a short-lived thread that joins the pinned namespace with `setns(CLONE_NEWNET)`, makes the
//! socket (non-blocking, close-on-exec), starts the connect or the listen, and exits; the socket is handed
//! back to the caller, which drives it from its own namespace (e.g. with tokio). No other thread of the
//! process ever changes namespace.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, connect, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage,
};

/// Starts a non-blocking TCP connect to `addr` from inside the network namespace pinned at `netns`.
///
/// The returned stream may still be connecting: wait until it is writable, then read `SO_ERROR`
/// (`TcpStream::take_error`) to learn the outcome. An immediate failure (e.g. `ECONNREFUSED` on loopback)
/// is returned as the error.
pub fn connect_in(netns: &Path, addr: SocketAddr) -> io::Result<TcpStream> {
    in_netns(netns, move || {
        let fd = tcp_socket(addr)?;
        match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
            Ok(()) | Err(Errno::EINPROGRESS) => Ok(TcpStream::from(fd)),
            Err(e) => Err(io::Error::from(e)),
        }
    })
}

/// Binds a non-blocking TCP listener on `addr` inside the network namespace pinned at `netns`.
pub fn listen_in(netns: &Path, addr: SocketAddr) -> io::Result<TcpListener> {
    in_netns(netns, move || {
        let fd = tcp_socket(addr)?;
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(io::Error::from)?;
        bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(io::Error::from)?;
        listen(&fd, Backlog::new(128).map_err(io::Error::from)?).map_err(io::Error::from)?;
        Ok(TcpListener::from(fd))
    })
}

fn tcp_socket(addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

/// Runs `f` on a fresh thread that has joined the network namespace pinned at `netns`; the thread exits
/// afterwards, so the namespace change dies with it.
fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let ns = File::open(netns)?;
    let path: PathBuf = netns.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("netns-socket".to_string())
        .spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("join network namespace {}: {e}", path.display()),
                )
            })?;
            f()
        })?;
    handle
        .join()
        .map_err(|_| io::Error::other("network namespace thread panicked"))?
}
