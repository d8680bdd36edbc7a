//! Debian's docker-registry on 127.0.0.1 (random port, temporary storage), optionally with htpasswd
//! authentication (bcrypt entries made with perl's crypt(3), which is libxcrypt) and TLS from a throw-away
//! CA made with openssl. Killed and its storage removed on drop, whatever the test outcome.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::run;

pub const REGISTRY: &str = "/usr/bin/docker-registry";

/// How to start a registry.
#[derive(Default)]
pub struct Options {
    /// `(user, password)`: htpasswd authentication with this one user.
    pub user: Option<(String, String)>,
    /// Serve HTTPS with a certificate for 127.0.0.1 signed by a fresh CA.
    pub tls: bool,
}

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    /// The CA certificate (PEM) when serving TLS.
    pub ca: Option<PathBuf>,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// An anonymous plain-HTTP registry.
    pub fn start() -> Result<Self> {
        Self::start_with(Options::default())
    }

    /// A plain-HTTP registry that requires the login `user`/`password`, holding the OCI archive `archive`
    /// as `name`; returns it and the image's reference, `<host>/<name>`.
    pub fn private(user: &str, password: &str, archive: &Path, name: &str) -> Result<(Self, String)> {
        let registry = Self::start_with(Options {
            user: Some((user.into(), password.into())),
            tls: false,
        })?;
        let source = format!("oci-archive:{}", archive.display());
        registry.push(&source, name, Some((user, password)))?;
        let image = format!("{}/{name}", registry.host);
        Ok((registry, image))
    }

    pub fn start_with(options: Options) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        let mut ca = None;
        if options.tls {
            let (ca_cert, cert, key) = make_certs(dir.path())?;
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            ca = Some(ca_cert);
        }
        if let Some((user, password)) = &options.user {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{}\n", bcrypt(password)?))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: peapod-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start docker-registry")?;
        let mut registry = Self { child, host, ca, dir };
        registry.wait_ready(options.tls)?;
        Ok(registry)
    }

    /// Polls until the registry answers (`/v2/` with 200 or 401 over HTTP; a TCP connect with TLS), the
    /// process dies, or 30 s pass.
    fn wait_ready(&mut self, tls: bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
                bail!("docker-registry exited with {status}: {log}");
            }
            let ready = if tls {
                TcpStream::connect(&self.host).is_ok()
            } else {
                http_status(&self.host, "/v2/").is_ok_and(|code| code == 200 || code == 401)
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("docker-registry on {} not ready after 30s", self.host);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where the registry keeps the bytes of blob `hex`.
    pub fn blob_data(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(hex.get(..2).unwrap_or_default())
            .join(hex)
            .join("data")
    }

    /// Pushes an image (`oci-archive:...`, `oci:...`) to `<host>/<name>` with skopeo, with the user's
    /// credentials if the registry has one.
    pub fn push(&self, source: &str, name: &str, user: Option<(&str, &str)>) -> Result<()> {
        let creds = user.map(|(u, p)| format!("--dest-creds={u}:{p}"));
        let mut args = vec!["copy", "--quiet", "--dest-tls-verify=false"];
        if let Some(creds) = &creds {
            args.push(creds);
        }
        let destination = format!("docker://{}/{name}", self.host);
        args.extend([source, destination.as_str()]);
        run("skopeo", &args)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn http_status(host: &str, path: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .context("short status line")?
        .parse()
        .context("status code")
}

/// A bcrypt hash of `password` as htpasswd -B writes it (cost 5), from libxcrypt through perl.
fn bcrypt(password: &str) -> Result<String> {
    let salt: String = {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..22)
            .map(|i| ALPHABET[usize::from(bytes[i % 16] ^ (i as u8)) % 64] as char)
            .collect()
    };
    let output = Command::new("perl")
        .args([
            "-e",
            "print crypt($ARGV[0], $ARGV[1])",
            password,
            &format!("$2b$05${salt}"),
        ])
        .output()
        .context("run perl")?;
    let hash = String::from_utf8(output.stdout)?;
    if !hash.starts_with("$2b$05$") || hash.len() != 60 {
        bail!("crypt(3) did not produce a bcrypt hash: {hash:?}");
    }
    Ok(hash)
}

/// A self-signed RSA certificate `crt` (key `key`) for `subject`, valid `days`, with `extra` openssl flags.
pub fn self_signed(key: &Path, crt: &Path, subject: &str, days: &str, extra: &[&str]) -> Result<()> {
    let (key, crt) = (key.display().to_string(), crt.display().to_string());
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days, "-subj", subject,
    ];
    args.extend_from_slice(extra);
    args.extend(["-keyout", &key, "-out", &crt]);
    run("openssl", &args)
}

/// A CA and a server certificate for IP 127.0.0.1 it signed: (ca.crt, server.crt, server.key).
fn make_certs(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let path = |name: &str| dir.join(name);
    let s = |p: &PathBuf| p.display().to_string();
    let (ca_key, ca_crt) = (path("ca.key"), path("ca.crt"));
    let (key, csr, crt, ext) = (
        path("server.key"),
        path("server.csr"),
        path("server.crt"),
        path("server.ext"),
    );
    self_signed(
        &ca_key,
        &ca_crt,
        "/CN=peapod test CA",
        "2",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &s(&key),
            "-out",
            &s(&csr),
        ],
    )?;
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )?;
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &s(&csr),
            "-CA",
            &s(&ca_crt),
            "-CAkey",
            &s(&ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &s(&ext),
            "-out",
            &s(&crt),
        ],
    )?;
    Ok((ca_crt, crt, key))
}
