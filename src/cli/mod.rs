//! The command line: clap definitions and dispatch. Every flag is also a `PEAPOD_*` environment variable.

use std::process::ExitCode;

/// Entry point called by `main.rs`.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
