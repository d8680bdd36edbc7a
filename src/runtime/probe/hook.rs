//! Lifecycle hook handlers as pkg/kubelet/lifecycle/handlers.go runs them, with its error messages.
//!
//! An httpGet hook fails only when no response comes (the kubelet ignores the status code); an HTTPS hook
//! answered in plain HTTP is retried over HTTP without `Authorization`. A tcpSocket hook is refused as an
//! invalid handler. `limit` bounds every kind; an exec past it is killed.

use std::time::Duration;

use k8s_openapi::api::core::v1::{LifecycleHandler, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::time::Instant;

use super::dial::Dialer;
use super::exec::{self, Exit};
use super::http::{self, Request, Response};
use super::{go_quote, Target};

/// Why a lifecycle hook failed, in the kubelet's words (the FailedPostStartHook message). `error` fields
/// are the handler's own failure text (an exec's exit, an HTTP client's error), not a Rust cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The exec hook's command failed.
    #[error(
        "Exec lifecycle hook ({}) for Container {} in Pod {} failed - error: {error}, message: {}",
        go_list(command),
        go_quote(container),
        go_quote(pod),
        go_quote(output)
    )]
    Exec {
        /// The command.
        command: Vec<String>,
        /// The container name.
        container: String,
        /// The pod, as the kubelet's `format.Pod`.
        pod: String,
        /// What went wrong.
        error: String,
        /// The command's stdout and stderr.
        output: String,
    },
    /// The httpGet hook got no response.
    #[error(
        "HTTP lifecycle hook ({path}) for Container {} in Pod {} failed - error: {error}",
        go_quote(container),
        go_quote(pod)
    )]
    Http {
        /// The request path.
        path: String,
        /// The container name.
        container: String,
        /// The pod, as the kubelet's `format.Pod`.
        pod: String,
        /// The HTTP client's error.
        error: String,
    },
    /// The sleep hook was cut short by `limit`.
    #[error(
        "Sleep lifecycle hook ({seconds}) for Container {} in Pod {} failed - error: container terminated before sleep hook finished",
        go_quote(container), go_quote(pod)
    )]
    SleepCut {
        /// The seconds asked for.
        seconds: i64,
        /// The container name.
        container: String,
        /// The pod, as the kubelet's `format.Pod`.
        pod: String,
    },
    /// A handler the kubelet cannot run (tcpSocket, or none).
    #[error("Cannot run handler: invalid handler: {handler}")]
    InvalidHandler {
        /// The handler as Go prints it.
        handler: String,
    },
}

/// Runs `handler`; `Err` is the kubelet's message.
pub(super) async fn run(
    target: &Target<'_>,
    handler: &LifecycleHandler,
    limit: Option<Duration>,
) -> Result<(), HookError> {
    let container = target.container.name.clone();
    let pod = target.pod.to_string();
    if let Some(action) = &handler.exec {
        let command = action.command.clone().unwrap_or_default();
        let Some((error, output)) = exec_hook(target, &command, limit).await else {
            return Ok(());
        };
        return Err(HookError::Exec {
            command,
            container,
            pod,
            error,
            output,
        });
    }
    if let Some(action) = &handler.http_get {
        let error = match http_hook(target, action, limit).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let path = action.path.clone().unwrap_or_default();
        return Err(HookError::Http {
            path,
            container,
            pod,
            error,
        });
    }
    if let Some(action) = &handler.sleep {
        let wanted = Duration::from_secs(action.seconds.max(0) as u64);
        if limit.is_some_and(|l| l < wanted) {
            tokio::time::sleep(limit.unwrap_or_default()).await;
            let seconds = action.seconds;
            return Err(HookError::SleepCut {
                seconds,
                container,
                pod,
            });
        }
        tokio::time::sleep(wanted).await;
        return Ok(());
    }
    Err(HookError::InvalidHandler {
        handler: go_handler(handler.tcp_socket.as_ref()),
    })
}

/// Runs an exec hook: `None` on success, else the error text and the output.
async fn exec_hook(
    target: &Target<'_>,
    command: &[String],
    limit: Option<Duration>,
) -> Option<(String, String)> {
    let run = exec::run(target, command, limit).await;
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    let mut output = String::from_utf8_lossy(&run.stdout).into_owned();
    output.push_str(&stderr);
    let err = match run.exit {
        Exit::Code(0) => return None,
        Exit::Code(code) => format!("command '{}' exited with {code}: {stderr}", command.join(" ")),
        Exit::TimedOut => "context deadline exceeded".to_string(),
        Exit::Runtime(msg) => msg,
    };
    Some((err, output))
}

async fn http_hook(
    target: &Target<'_>,
    action: &k8s_openapi::api::core::v1::HTTPGetAction,
    limit: Option<Duration>,
) -> Result<(), String> {
    let req = Request::for_action(action, target, "lifecycle")?;
    let dialer = Dialer::new(target.netns);
    let deadline = limit.map(|l| Instant::now() + l);
    match http::get(&dialer, &req, deadline, false).await {
        Response::Done { .. } | Response::BodyError(_) => Ok(()),
        Response::Error(e) if e.ends_with("http: server gave HTTP response to HTTPS client") => {
            match http::get(&dialer, &req.plain_http(), deadline, false).await {
                Response::Error(_) => Err(e),
                _ => Ok(()),
            }
        }
        // The hook client has no timeout of its own: past `limit` its context is what ran out.
        Response::Error(e) => Err(e
            .strip_suffix(" (Client.Timeout exceeded while awaiting headers)")
            .map(str::to_string)
            .unwrap_or(e)),
    }
}

/// Go's `%v` of a `[]string`.
pub(super) fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// The generated String() of a `*LifecycleHandler` with neither exec, httpGet nor sleep.
pub(super) fn go_handler(tcp: Option<&TCPSocketAction>) -> String {
    let tcp = match tcp {
        None => "nil".to_string(),
        Some(t) => {
            let port = match &t.port {
                IntOrString::Int(n) => format!("{{0 {n} }}"),
                IntOrString::String(s) => format!("{{1 0 {s}}}"),
            };
            format!(
                "&TCPSocketAction{{Port:{port},Host:{},}}",
                t.host.as_deref().unwrap_or("")
            )
        }
    };
    format!("&LifecycleHandler{{Exec:nil,HTTPGet:nil,TCPSocket:{tcp},Sleep:nil,}}")
}
