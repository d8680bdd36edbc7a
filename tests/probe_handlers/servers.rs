//! Small servers for the probe handler tests, run inside a throw-away network namespace: HTTP/1 (with
//! redirects, errors and a slow endpoint), the same over TLS, and a gRPC health server over HTTP/2.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// A network namespace made with `ip netns add` (loopback up), deleted on drop even when a test fails.
pub struct NetNs {
    name: String,
}

impl NetNs {
    pub fn new() -> NetNs {
        let name = format!("peapod-probe-{}-{}", std::process::id(), rand_suffix());
        let ok = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ok(&["netns", "add", &name]);
        let ns = NetNs { name };
        ok(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// A listener on loopback inside `netns`.
pub fn listen(netns: &Path) -> (TcpListener, u16) {
    let std = peapod::sys::netns::listen_in(netns, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = std.local_addr().unwrap().port();
    (TcpListener::from_std(std).unwrap(), port)
}

/// HTTP/1 test server: /ok, /fail (500), /slow (3 s), /local (302 to /ok), /other (302 to 127.0.0.2),
/// /loop (302 to itself), /headers (200 only with the kubelet's headers and the Host override).
pub fn serve_http(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(http_route);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

async fn http_route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let port = req
        .headers()
        .get("x-port")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("1")
        .to_string();
    let reply = |status: u16, location: Option<String>, body: &str| {
        let mut b = Response::builder().status(status);
        if let Some(l) = location {
            b = b.header("location", l);
        }
        Ok(b.body(Full::new(Bytes::from(body.to_string()))).unwrap())
    };
    match req.uri().path() {
        "/ok" => reply(200, None, "ok"),
        "/fail" => reply(500, None, "boom"),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reply(200, None, "late")
        }
        "/local" => reply(302, Some("/ok".into()), ""),
        "/other" => reply(302, Some(format!("http://127.0.0.2:{port}/ok")), "elsewhere"),
        "/loop" => reply(302, Some("/loop".into()), ""),
        "/headers" => {
            let h = req.headers();
            let good = h.get("host").is_some_and(|v| v == "example.test")
                && h.get("user-agent").is_some_and(|v| v == "kube-probe/1.33")
                && h.get("accept").is_some_and(|v| v == "*/*")
                && h.get("x-custom").is_some_and(|v| v == "yes");
            reply(if good { 200 } else { 400 }, None, "")
        }
        _ => reply(404, None, ""),
    }
}

type GrpcBody = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// gRPC health server over HTTP/2: service "" SERVING, "down" NOT_SERVING, "unimpl" Unimplemented.
pub fn serve_grpc(listener: TcpListener) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(grpc_route))
                    .await;
            });
        }
    });
}

async fn grpc_route(req: Request<Incoming>) -> Result<Response<GrpcBody>, Infallible> {
    let ok_path = req.uri().path() == "/grpc.health.v1.Health/Check";
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let service = body
        .get(7..)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default();
    let mut trailers = hyper::HeaderMap::new();
    let mut frames = Vec::new();
    let (code, message) = match (ok_path, service.as_str()) {
        (true, "unimpl") | (false, _) => ("12", "unknown service grpc.health.v1.Health"),
        (true, s) => {
            let status = if s.is_empty() { 1u8 } else { 2 };
            frames.push(Ok(Frame::data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]))));
            ("0", "")
        }
    };
    trailers.insert("grpc-status", code.parse().unwrap());
    if !message.is_empty() {
        trailers.insert("grpc-message", message.replace(' ', "%20").parse().unwrap());
    }
    frames.push(Ok(Frame::trailers(trailers)));
    let resp = Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(futures::stream::iter(frames)))
        .unwrap();
    Ok(resp)
}

/// HTTPS server (self-signed certificate made with openssl) serving the same routes.
pub fn serve_https(listener: TcpListener, dir: &Path) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (key, cert) = (dir.join("tls.key"), dir.join("tls.crt"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=probe.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let certs = vec![CertificateDer::from_pem_file(&cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service_fn(http_route))
                    .await;
            });
        }
    });
}
