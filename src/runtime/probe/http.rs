//! HTTP GET for httpGet probes and hooks, as Go's net/http client sends it for the kubelet
//! (pkg/probe/http): HTTP/1.1, one connection per request (`Connection: close`), TLS unverified, headers
//! canonicalised, redirects followed (at most 10 requests; probes only to the same host), the body read up
//! to 10 KiB. Errors read as Go's `url.Error`: `Get "http://10.1.2.3:8080/": dial tcp ...`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::HTTPGetAction;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use url::Url;

use super::dial::{timeout_error, Dialer};
use super::{
    default_host, go_quote, join_host_port, resolve_port, Outcome, Target, KUBE_VERSION, MAX_OUTPUT,
};

/// A GET the kubelet would send.
#[derive(Debug, Clone)]
pub(super) struct Request {
    url: Url,
    /// Go's `url.String()` of the first URL, used in error messages.
    display: String,
    /// Canonical header names and values, `Host` excluded.
    headers: Vec<(String, String)>,
    host_override: Option<String>,
}

/// What came back.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Response {
    /// A response, its body capped at 10 KiB.
    Done { status: u16, body: Vec<u8> },
    /// The request failed (Go's `url.Error` text).
    Error(String),
    /// The response came but its body could not be read.
    BodyError(String),
}

impl Request {
    /// The kubelet's NewRequestForHTTPGetAction; `purpose` is `probe` or `lifecycle` (User-Agent).
    pub(super) fn for_action(
        action: &HTTPGetAction,
        target: &Target<'_>,
        purpose: &str,
    ) -> Result<Self, String> {
        let scheme = action.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let host = default_host(action.host.as_deref(), target.pod_ip);
        let port = resolve_port(&action.port, target.container).map_err(|e| e.to_string())?;
        let headers = action
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()));
        Self::new(
            &scheme,
            host,
            port,
            action.path.as_deref().unwrap_or(""),
            headers,
            purpose,
        )
    }

    fn new(
        scheme: &str,
        host: &str,
        port: u16,
        path: &str,
        headers: impl Iterator<Item = (String, String)>,
        purpose: &str,
    ) -> Result<Self, String> {
        let sep = if path.is_empty() || path.starts_with('/') {
            ""
        } else {
            "/"
        };
        let display = format!("{scheme}://{}{sep}{path}", join_host_port(host, port));
        let url = Url::parse(&display).map_err(|e| format!("parse {}: {e}", go_quote(&display)))?;
        let mut list: Vec<(String, String)> = headers.map(|(k, v)| (canonical(&k), v)).collect();
        let host_override = list
            .iter()
            .find(|(k, _)| k == "Host")
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty());
        list.retain(|(k, _)| k != "Host");
        if !list.iter().any(|(k, _)| k == "User-Agent") {
            list.push(("User-Agent".to_string(), format!("kube-{purpose}/{KUBE_VERSION}")));
        }
        if !list.iter().any(|(k, _)| k == "Accept") {
            list.push(("Accept".to_string(), "*/*".to_string()));
        } else if list
            .iter()
            .find(|(k, _)| k == "Accept")
            .is_some_and(|(_, v)| v.is_empty())
        {
            list.retain(|(k, _)| k != "Accept");
        }
        Ok(Request {
            url,
            display,
            headers: list,
            host_override,
        })
    }

    /// The same request over plain HTTP without credentials (the kubelet's lifecycle fallback).
    pub(super) fn plain_http(&self) -> Self {
        let mut req = self.clone();
        let _ = req.url.set_scheme("http");
        req.display = req.display.replacen("https://", "http://", 1);
        req.headers.retain(|(k, _)| k != "Authorization");
        req
    }

    /// The URL as Go prints it.
    #[cfg(test)]
    fn display(&self) -> &str {
        &self.display
    }
}

/// One httpGet probe attempt (pkg/probe/http DoHTTPProbe).
pub(super) async fn probe(dialer: &Dialer<'_>, req: Request, timeout: Duration) -> Outcome {
    match get(dialer, &req, Some(Instant::now() + timeout), true).await {
        Response::Done { status, body } => outcome(status, &body),
        Response::Error(e) => Outcome::Failure(e),
        Response::BodyError(e) => Outcome::Unknown(e),
    }
}

/// The probe outcome of a response.
pub(super) fn outcome(status: u16, body: &[u8]) -> Outcome {
    let body = String::from_utf8_lossy(body);
    match status {
        200..=299 => Outcome::Success,
        300..=399 => Outcome::Warning(format!("Probe terminated redirects, Response body: {body}")),
        _ => Outcome::Failure(format!("HTTP probe failed with statuscode: {status}")),
    }
}

/// Sends `req`, following redirects (to other hosts only when `same_host_only` is false).
pub(super) async fn get(
    dialer: &Dialer<'_>,
    req: &Request,
    deadline: Option<Instant>,
    same_host_only: bool,
) -> Response {
    let mut url = req.url.clone();
    let mut display = req.display.clone();
    let mut host_override = req.host_override.clone();
    let mut referer: Option<String> = None;
    let mut requests = 0;
    loop {
        requests += 1;
        let headers = hop_headers(req, &url, referer.as_deref());
        let phase = PhaseCell::default();
        let sent = send(dialer, &url, host_override.as_deref(), &headers, &phase);
        let resp = match deadline {
            Some(d) => match tokio::time::timeout_at(d, sent).await {
                Ok(r) => r,
                Err(_) => {
                    return Response::Error(format!(
                        "Get {}: {}",
                        go_quote(&display),
                        phase.get().timeout(&url)
                    ))
                }
            },
            None => sent.await,
        };
        let (resp, _conn) = match resp {
            Ok(r) => r,
            Err(e) => return Response::Error(format!("Get {}: {e}", go_quote(&display))),
        };
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        if let (true, Some(loc)) = (matches!(status, 301 | 302 | 303 | 307 | 308), location) {
            let next = match url.join(&loc) {
                Ok(next) => next,
                Err(e) => {
                    return Response::Error(format!(
                        "Get {}: failed to parse Location header {}: {e}",
                        go_quote(&display),
                        go_quote(&loc)
                    ))
                }
            };
            let same_host = next.host_str() == req.url.host_str();
            if !same_host && same_host_only {
                return read_body(resp, deadline).await;
            }
            if requests >= 10 {
                return Response::Error(format!("Get {}: stopped after 10 redirects", go_quote(&loc)));
            }
            if Url::parse(&loc).is_ok() {
                host_override = None;
            }
            referer = (!(url.scheme() == "https" && next.scheme() == "http")).then(|| url.to_string());
            display = next.to_string();
            url = next;
            continue;
        }
        return read_body(resp, deadline).await;
    }
}

/// How far a request got when its deadline passed (shared with the request future, which must be `Send`).
#[derive(Debug, Default)]
struct PhaseCell(AtomicBool);

impl PhaseCell {
    fn get(&self) -> Phase {
        if self.0.load(Ordering::Relaxed) {
            Phase::Headers
        } else {
            Phase::Dial
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Dial,
    Headers,
}

impl Phase {
    fn timeout(self, url: &Url) -> String {
        match self {
            Phase::Dial => format!(
                "{} (Client.Timeout exceeded while awaiting headers)",
                timeout_error(
                    url.host_str().unwrap_or(""),
                    url.port_or_known_default().unwrap_or(0)
                )
            ),
            Phase::Headers => {
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".to_string()
            }
        }
    }
}

/// Headers of one hop: the request's own (Go copies them to redirects, credentials only to the same
/// host), `Connection: close`, and `Referer` after a redirect.
fn hop_headers(req: &Request, url: &Url, referer: Option<&str>) -> Vec<(String, String)> {
    let same_host = url.host_str() == req.url.host_str();
    let sensitive = ["Authorization", "Www-Authenticate", "Cookie", "Cookie2"];
    let mut out: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(k, _)| same_host || !sensitive.contains(&k.as_str()))
        .cloned()
        .collect();
    if let Some(r) = referer {
        out.push(("Referer".to_string(), r.to_string()));
    }
    out.push(("Connection".to_string(), "close".to_string()));
    out
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Aborts the connection task when the exchange is over, so no socket outlives the call.
pub(super) struct ConnTask(pub(super) tokio::task::JoinHandle<()>);

impl Drop for ConnTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send(
    dialer: &Dialer<'_>,
    url: &Url,
    host_override: Option<&str>,
    headers: &[(String, String)],
    phase: &PhaseCell,
) -> Result<(hyper::Response<Incoming>, ConnTask), String> {
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(80);
    let tcp = dialer.dial(host, port).await?;
    phase.0.store(true, Ordering::Relaxed);
    let io: Box<dyn Io> = match url.scheme() {
        "https" => Box::new(super::tls::connect(tcp, host).await?),
        "http" => Box::new(tcp),
        other => return Err(format!("unsupported protocol scheme {}", go_quote(other))),
    };
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let task = ConnTask(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut target = url.path().to_string();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let authority = host_override
        .map(str::to_string)
        .unwrap_or_else(|| join_host_port(host.trim_start_matches('[').trim_end_matches(']'), port));
    let mut builder = hyper::Request::get(target).header(hyper::header::HOST, authority);
    for (k, v) in headers {
        let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("net/http: invalid header field name {}", go_quote(k)))?;
        let value = hyper::header::HeaderValue::from_str(v)
            .map_err(|_| format!("net/http: invalid header field value for {}", go_quote(k)))?;
        builder = builder.header(name, value);
    }
    let request = builder.body(Empty::new()).map_err(|e| e.to_string())?;
    let resp = sender.send_request(request).await.map_err(|e| {
        if e.is_incomplete_message() || e.is_canceled() {
            "EOF".to_string()
        } else {
            e.to_string()
        }
    })?;
    Ok((resp, task))
}

async fn read_body(resp: hyper::Response<Incoming>, deadline: Option<Instant>) -> Response {
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    let read = async {
        while out.len() < MAX_OUTPUT {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = MAX_OUTPUT - out.len();
                        out.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
        Ok(())
    };
    let result = match deadline {
        Some(d) => tokio::time::timeout_at(d, read).await.unwrap_or_else(|_| {
            Err(
                "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
                    .to_string(),
            )
        }),
        None => read.await,
    };
    match result {
        Ok(()) => Response::Done { status, body: out },
        Err(e) => Response::BodyError(e),
    }
}

/// Go's textproto.CanonicalMIMEHeaderKey: `x-custom-header` → `X-Custom-Header`.
pub(super) fn canonical(name: &str) -> String {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let c = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            c
        })
        .collect()
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
