//! `peapod exec`: run a command in a running container through the OCI runtime (`runc exec`), which
//! joins the container's namespaces and cgroup with its user, capabilities and environment.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use clap::Args;

use super::logs::{container_status, find_pod, pick_container};
use super::{which, CliError, Global};

/// Arguments of `peapod exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// PodGroup name.
    pub name: String,
    /// Container name [default: the default container].
    #[arg(short = 'c', long, env = "PEAPOD_CONTAINER")]
    pub container: Option<String>,
    /// Namespace.
    #[arg(short = 'n', long, env = "PEAPOD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Pass stdin to the command.
    #[arg(short = 'i', long, env = "PEAPOD_STDIN")]
    pub stdin: bool,
    /// Allocate a terminal.
    #[arg(short = 't', long, env = "PEAPOD_TTY")]
    pub tty: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// `peapod exec`; on success this process becomes the OCI runtime and never returns.
pub fn exec(global: &Global, args: &ExecArgs) -> Result<ExitCode, CliError> {
    let pod = find_pod(global, &args.namespace, &args.name)?;
    let container = pick_container(&pod, args.container.as_deref())?;
    let status = container_status(&pod, &container);
    let running = status
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.running.as_ref())
        .is_some();
    let id = status
        .and_then(|s| s.container_id.as_deref())
        .and_then(|id| id.strip_prefix("peapod://"));
    let (true, Some(id)) = (running, id) else {
        return Err(CliError(format!(
            "container {container} is not running in pod {}",
            args.name
        )));
    };
    let runtime = which(&global.oci_runtime)
        .ok_or_else(|| CliError(format!("OCI runtime {:?} not found", global.oci_runtime)))?;
    let mut cmd = Command::new(runtime);
    cmd.arg("--root").arg(global.run_dir.join("runc")).arg("exec");
    if args.tty {
        cmd.arg("--tty");
    }
    cmd.arg(id).args(&args.command);
    if !args.stdin {
        cmd.stdin(Stdio::null());
    }
    let err = cmd.exec();
    Err(CliError::context("run OCI runtime", err))
}
