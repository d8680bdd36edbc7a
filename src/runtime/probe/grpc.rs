//! gRPC probes: `grpc.health.v1.Health/Check` over plaintext HTTP/2, as pkg/probe/grpc runs it (a blocking
//! dial that retries until the timeout, then one RPC). The two messages are encoded by hand:
//! `HealthCheckRequest { string service = 1 }`, `HealthCheckResponse { ServingStatus status = 1 }`.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use super::dial::Dialer;
use super::http::ConnTask;
use super::{go_duration, go_quote, join_host_port, Outcome, KUBE_VERSION};

const PATH: &str = "/grpc.health.v1.Health/Check";
const SERVING: u64 = 1;
/// Largest response accepted.
const MAX_RESPONSE: usize = 64 << 10;

/// One gRPC probe attempt; every problem is a Failure, as in the kubelet.
pub(super) async fn probe(
    dialer: &Dialer<'_>,
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
) -> Outcome {
    let addr = join_host_port(host, port);
    let deadline = Instant::now() + timeout;
    let Some((mut sender, _conn)) = connect(dialer, host, port, deadline).await else {
        return Outcome::Failure(format!(
            "timeout: failed to connect service {} within {}: context deadline exceeded",
            go_quote(&addr),
            go_duration(timeout)
        ));
    };
    let request = hyper::Request::post(format!("http://{addr}{PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", format!("kube-probe/{KUBE_VERSION}"))
        .header(
            "grpc-timeout",
            format!(
                "{}m",
                deadline.saturating_duration_since(Instant::now()).as_millis()
            ),
        )
        .body(Full::new(Bytes::from(frame(&encode_request(service)))));
    let Ok(request) = request else {
        return Outcome::Failure(format!(
            "error: health rpc probe failed: invalid request for {}",
            go_quote(&addr)
        ));
    };
    let call = async {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| rpc_error("Unavailable", &e.to_string()))?;
        read_reply(resp).await
    };
    let reply = match tokio::time::timeout_at(deadline, call).await {
        Ok(r) => r,
        Err(_) => Err(Status::deadline()),
    };
    match reply {
        Ok(status) if status == SERVING => Outcome::Success,
        Ok(status) => Outcome::Failure(format!(
            "service unhealthy (responded with {})",
            go_quote(&status_name(status))
        )),
        Err(s) => Outcome::Failure(s.message(timeout)),
    }
}

/// A gRPC status other than OK.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    code: u32,
    message: String,
}

impl Status {
    fn deadline() -> Self {
        Status {
            code: 4,
            message: "context deadline exceeded".to_string(),
        }
    }

    /// The kubelet's wording for a failed RPC.
    fn message(&self, timeout: Duration) -> String {
        match self.code {
            12 => format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                self.message
            ),
            4 => format!(
                "timeout: health rpc did not complete within {}",
                go_duration(timeout)
            ),
            code => format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {}",
                code_name(code),
                self.message
            ),
        }
    }
}

fn rpc_error(code: &str, message: &str) -> Status {
    let code = (0..17).find(|c| code_name(*c) == code).unwrap_or(2);
    Status {
        code,
        message: message.to_string(),
    }
}

/// Dials and completes the HTTP/2 handshake, retrying until `deadline` like grpc-go's blocking dial.
async fn connect(
    dialer: &Dialer<'_>,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Option<(hyper::client::conn::http2::SendRequest<Full<Bytes>>, ConnTask)> {
    let attempt = async {
        loop {
            if let Ok(Ok(tcp)) = tokio::time::timeout_at(deadline, dialer.dial(host, port)).await {
                let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
                    .await;
                if let Ok((sender, conn)) = handshake {
                    let task = ConnTask(tokio::spawn(async move {
                        let _ = conn.await;
                    }));
                    return (sender, task);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout_at(deadline, attempt).await.ok()
}

async fn read_reply(resp: hyper::Response<hyper::body::Incoming>) -> Result<u64, Status> {
    let http_status = resp.status().as_u16();
    if http_status != 200 {
        let code = match http_status {
            400 => "Internal",
            401 => "Unauthenticated",
            403 => "PermissionDenied",
            404 => "Unimplemented",
            429 | 502..=504 => "Unavailable",
            _ => "Unknown",
        };
        let reason = resp.status().canonical_reason().unwrap_or("");
        return Err(rpc_error(
            code,
            &format!("unexpected HTTP status code received from server: {http_status} ({reason})"),
        ));
    }
    let mut trailers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| rpc_error("Internal", &e.to_string()))?;
        match frame.into_data() {
            Ok(chunk) if data.len() + chunk.len() <= MAX_RESPONSE => data.extend_from_slice(&chunk),
            Ok(_) => return Err(rpc_error("ResourceExhausted", "response too large")),
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers.extend(t);
                }
            }
        }
    }
    let code = trailers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    let message = trailers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    match code {
        Some(0) => {}
        Some(code) => return Err(Status { code, message }),
        None => {
            return Err(rpc_error(
                "Internal",
                "server closed the stream without sending trailers",
            ))
        }
    }
    let message = unframe(&data).ok_or_else(|| rpc_error("Internal", "malformed response message"))?;
    decode_response(message)
        .ok_or_else(|| rpc_error("Internal", "grpc: failed to unmarshal the received message"))
}

/// Length-prefixed gRPC message: flag 0 (uncompressed), 4-byte big-endian length, bytes.
pub(super) fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The message of the first frame, if complete and uncompressed.
pub(super) fn unframe(data: &[u8]) -> Option<&[u8]> {
    let (head, rest) = data.split_at_checked(5)?;
    if head[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    rest.get(..len)
}

/// `HealthCheckRequest { service }`: field 1, wire type 2, omitted when empty.
pub(super) fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a);
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// `HealthCheckResponse.status` (0 when absent); unknown fields are skipped.
pub(super) fn decode_response(mut msg: &[u8]) -> Option<u64> {
    let mut status = 0;
    while !msg.is_empty() {
        let key = get_varint(&mut msg)?;
        match key & 7 {
            0 => {
                let v = get_varint(&mut msg)?;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            1 => msg = msg.get(8..)?,
            2 => {
                let len = usize::try_from(get_varint(&mut msg)?).ok()?;
                msg = msg.get(len..)?;
            }
            5 => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The ServingStatus enum name (protobuf's String(): the number for unknown values).
pub(super) fn status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".to_string(),
        1 => "SERVING".to_string(),
        2 => "NOT_SERVING".to_string(),
        3 => "SERVICE_UNKNOWN".to_string(),
        n => n.to_string(),
    }
}

/// grpc-go's codes.Code String().
fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES
        .get(code as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("Code({code})"))
}

/// `grpc-message` is percent-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
