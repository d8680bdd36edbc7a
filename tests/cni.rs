//! Root test of the CNI client with Debian's real `bridge` and `host-local` plugins: ADD gives a fresh
//! network namespace `eth0` with the address of the result, the host reaches a listener on it, CHECK
//! passes, and DEL removes the interface and the host-local lease, also when repeated and when the
//! namespace is already gone. Only a private bridge, a private subnet and the test's own namespace are used.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::BuildHasher;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use peapod::network::cni::{CniConfig, CniRuntime};

const PLUGIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];

/// A network namespace pinned on a file with `unshare --net=FILE`; unpinned on drop.
struct Netns {
    path: PathBuf,
}

impl Netns {
    fn create(path: PathBuf) -> Result<Self> {
        fs::write(&path, b"")?;
        let netns = Netns { path };
        run(Command::new("unshare")
            .arg(format!("--net={}", netns.path.display()))
            .arg("true"))?;
        Ok(netns)
    }

    fn unpin(&self) {
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
    }

    /// Runs a command inside the namespace.
    fn exec(&self, args: &[&str]) -> Result<String> {
        run(Command::new("nsenter")
            .arg(format!("--net={}", self.path.display()))
            .args(args))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.unpin();
    }
}

/// The bridge the plugin creates on the host; deleted on drop.
struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why this test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("network namespaces and bridges need root".into());
    }
    if plugin_dir().is_none() {
        return Some(format!(
            "the bridge and host-local CNI plugins are not in {PLUGIN_DIRS:?}"
        ));
    }
    for tool in ["unshare", "nsenter", "ip"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

fn plugin_dir() -> Option<PathBuf> {
    PLUGIN_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("bridge").is_file() && d.join("host-local").is_file())
}

/// A /24 in 10.88.0.0/16 that no host route mentions.
fn free_subnet(seed: u64) -> Result<u8> {
    let routes = run(Command::new("ip").args(["-4", "route", "show"]))?;
    (0..250u64)
        .map(|i| 1 + ((seed + i) % 250) as u8)
        .find(|x| !routes.contains(&format!("10.88.{x}.")))
        .context("no free 10.88.x.0/24")
}

/// Binds a listener on `ip` inside the namespace (a thread joins it; the socket stays there) and serves
/// one connection.
fn listen_in(netns: &Path, ip: IpAddr) -> Result<SocketAddr> {
    let ns = fs::File::open(netns)?;
    let listener = std::thread::spawn(move || -> Result<TcpListener> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        Ok(TcpListener::bind((ip, 0))?)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("listener thread panicked"))??;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(b"pong");
        }
    });
    Ok(addr)
}

/// The test's bridge network `network` (bridge `bridge`, host-local leases in `ipam_dir` from
/// `10.88.<octet>.10-50`) as `10-pptest.conflist` in `conf_dir`.
fn write_conflist(conf_dir: &Path, network: &str, bridge: &str, ipam_dir: &Path, octet: u8) -> Result<()> {
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": network,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": false,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "dataDir": ipam_dir,
                "ranges": [[{
                    "subnet": format!("10.88.{octet}.0/24"),
                    "rangeStart": format!("10.88.{octet}.10"),
                    "rangeEnd": format!("10.88.{octet}.50"),
                    "gateway": format!("10.88.{octet}.1"),
                }]],
            },
        }],
    });
    fs::write(conf_dir.join("10-pptest.conflist"), conflist.to_string())?;
    Ok(())
}

#[tokio::test]
async fn bridge_network_add_check_del() -> Result<()> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return Ok(());
    }
    let plugins = plugin_dir().context("plugin dir")?;
    let seed = RandomState::new().hash_one(std::process::id());
    let tag = format!("{:06x}", seed & 0xff_ffff);
    let octet = free_subnet(seed)?;

    let tmp = tempfile::tempdir()?;
    let netns = Netns::create(tmp.path().join("netns"))?;
    let bridge = Bridge(format!("pp{tag}"));
    let (conf_dir, ipam_dir) = (tmp.path().join("net.d"), tmp.path().join("ipam"));
    fs::create_dir(&conf_dir)?;
    let network = format!("pptest-{tag}");
    write_conflist(&conf_dir, &network, &bridge.0, &ipam_dir, octet)?;

    let net = CniConfig::load(&[conf_dir], std::slice::from_ref(&plugins))?.context("config is found")?;
    let cni = CniConfig::new(vec![plugins], tmp.path().join("cache"));
    let rt = CniRuntime::for_pod(
        &format!("pptest{tag}"),
        &netns.path,
        "default",
        "cni-test",
        "uid-1",
    );

    let result = cni.add(&net, &rt).await?;
    let pod_ips = result.pod_ips();
    ensure!(pod_ips.len() == 1, "one pod IP: {pod_ips:?}");
    let ip: IpAddr = pod_ips[0].parse()?;
    ensure!(
        pod_ips[0].starts_with(&format!("10.88.{octet}.")),
        "{ip} is from the range"
    );
    let addrs = netns.exec(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"])?;
    ensure!(addrs.contains(&format!("{ip}/24")), "eth0 has {ip}: {addrs}");
    let lease = ipam_dir.join(&network).join(ip.to_string());
    ensure!(lease.exists(), "host-local lease {}", lease.display());
    cni.check(&net, &rt).await?;

    // The host reaches the pod through the bridge (the test gives the bridge the gateway address).
    run(Command::new("ip").args(["addr", "add", &format!("10.88.{octet}.1/24"), "dev", &bridge.0]))?;
    let addr = listen_in(&netns.path, ip)?;
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).context("connect to the pod")?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)?;
    ensure!(reply == "pong", "reply {reply:?}");

    cni.del(Some(&net), &rt).await?;
    if netns.exec(&["ip", "link", "show", "eth0"]).is_ok() {
        bail!("eth0 is still in the namespace after DEL");
    }
    ensure!(!lease.exists(), "DEL released the lease");
    ensure!(cni.cached_result(&rt)?.is_none(), "DEL dropped the cache entry");
    cni.del(Some(&net), &rt).await.context("a second DEL is fine")?;

    // Again, but the namespace is gone before DEL (as after a pause crash): the lease is still released.
    let result = cni.add(&net, &rt).await?;
    let lease = ipam_dir.join(&network).join(&result.pod_ips()[0]);
    ensure!(lease.exists(), "second lease {}", lease.display());
    netns.unpin();
    cni.del(None, &rt).await.context("DEL without a namespace")?;
    ensure!(!lease.exists(), "DEL without a namespace released the lease");
    ensure!(cni.cached_attachments()?.is_empty());
    Ok(())
}
