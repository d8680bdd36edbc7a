//! The command line: clap definitions and dispatch. Every flag is also a `PEAPOD_*` environment variable;
//! doc comments are the help text. `peapod pause` and `peapod shim` are internal and dispatched before
//! clap runs, so those small processes stay small.

mod agent;
mod exec;
mod get;
mod image;
mod logs;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Run Kubernetes Pod specs as PodGroups in host-level pause sandboxes.
#[derive(Debug, Parser)]
#[command(name = "peapod", version, about, propagate_version = true)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Persistent state: images, pods, volumes, logs.
    #[arg(
        long,
        env = "PEAPOD_STATE_DIR",
        default_value = "/var/lib/peapod",
        global = true
    )]
    pub state_dir: PathBuf,
    /// Volatile state, emptied by a reboot: namespace pins, helper pids, OCI runtime state.
    #[arg(long, env = "PEAPOD_RUN_DIR", default_value = "/run/peapod", global = true)]
    pub run_dir: PathBuf,
    /// OCI runtime binary (a name is looked up on PATH).
    #[arg(long, env = "PEAPOD_OCI_RUNTIME", default_value = "runc", global = true)]
    pub oci_runtime: PathBuf,
    /// Name of this node [default: the hostname].
    #[arg(long, env = "PEAPOD_NODE_NAME", global = true)]
    pub node_name: Option<String>,
    /// Log filter, in RUST_LOG syntax.
    #[arg(long, env = "PEAPOD_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the PodGroups (and v1 Pods) in manifest files or directories, in the foreground.
    ///
    /// Manifests are watched: added ones start, removed ones stop gracefully, changed ones are replaced.
    /// Ctrl-C (SIGINT) or SIGTERM stops every pod gracefully and exits. A crash or SIGKILL leaves every
    /// container running; the next `peapod run` adopts them.
    Run(run::RunArgs),
    /// Run the PodGroups bound to this node in a Kubernetes cluster (the DaemonSet agent).
    ///
    /// Recovers what runs before it reconciles; keeps containers running while the API server is
    /// unreachable and catches status up when it returns. SIGTERM stops the agent and leaves every
    /// workload running for the next agent to adopt.
    Agent(agent::AgentArgs),
    /// List PodGroups the way `kubectl get pods` does.
    Get(get::GetArgs),
    /// Print the logs of a container.
    Logs(logs::LogsArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Manage the image store.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Print the PodGroup CustomResourceDefinition (YAML).
    Crd(CrdArgs),
}

/// Arguments of `peapod crd`.
#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Add CEL transition rules with which the API server refuses the edits a Pod update may not make
    /// (Kubernetes 1.25 or later; older API servers, helm and kubectl refuse the field).
    #[arg(long, env = "PEAPOD_CRD_TRANSITION_RULES")]
    pub transition_rules: bool,
}

/// Entry point called by `main.rs`.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if matches!(args.get(1).map(String::as_str), Some("pause" | "shim")) {
        crate::sys::crash::helper_process();
    }
    match args.get(1).map(String::as_str) {
        Some("pause") => return crate::runtime::pause::main(args.get(2..).unwrap_or_default()),
        Some("shim") => return crate::runtime::shim::main(args.get(2..).unwrap_or_default()),
        _ => {}
    }
    let cli = Cli::parse();
    init_tracing(&cli.global.log);
    let result = match cli.command {
        Command::Run(a) => run::run(&cli.global, a),
        Command::Agent(a) => agent::agent(&cli.global, a),
        Command::Get(a) => get::get(&cli.global, &a),
        Command::Logs(a) => logs::logs(&cli.global, &a),
        Command::Exec(a) => exec::exec(&cli.global, &a),
        Command::Image(c) => image::image(&cli.global, c),
        Command::Crd(a) => {
            if a.transition_rules {
                print!("{}", crate::api::crd::crd_yaml_with_transition_rules());
            } else {
                print!("{}", crate::api::crd::crd_yaml());
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain `key=value` lines.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A CLI failure: one line for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    /// Wraps any error with context.
    pub fn context(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        CliError(format!("{what}: {e}"))
    }
}

/// This node's name: the flag, else the hostname.
pub fn node_name(global: &Global) -> String {
    global
        .node_name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Resolves a binary name on PATH (absolute and relative paths are kept).
pub fn which(bin: &std::path::Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return Some(bin.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(bin))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_env_var() {
        fn walk(cmd: &clap::Command, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let is_flag = arg.get_long().is_some();
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if is_flag && !builtin && arg.get_env().is_none() {
                    missing.push(format!(
                        "{} --{}",
                        cmd.get_name(),
                        arg.get_long().unwrap_or_default()
                    ));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), &mut missing);
        assert!(missing.is_empty(), "flags without PEAPOD_* env: {missing:?}");
    }

    #[test]
    fn which_finds_sh() {
        assert!(which(std::path::Path::new("sh")).is_some());
        assert!(which(std::path::Path::new("definitely-not-a-binary-peapod")).is_none());
    }
}
