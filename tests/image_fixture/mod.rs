//! Shared by the image integration tests: builds a real busybox image from Debian's static busybox with
//! umoci, and runs skopeo. Tools that are missing make the calling test skip with a printed reason.

#![allow(dead_code)]

pub mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The host's static busybox, if installed.
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// `tool` on PATH, or at an absolute path.
pub fn which(tool: &str) -> Option<PathBuf> {
    if Path::new(tool).is_absolute() {
        return Path::new(tool).is_file().then(|| PathBuf::from(tool));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(tool))
        .find(|candidate| candidate.is_file())
}

/// Prints why the test is skipped when a tool is missing or we are not root; true when it may run.
pub fn require(tools: &[&str]) -> bool {
    for tool in tools {
        if which(tool).is_none() {
            eprintln!("skipping: {tool} is not installed");
            return false;
        }
    }
    if busybox().is_none() {
        eprintln!("skipping: busybox-static is not installed (/bin/busybox)");
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: unpacking image layers needs root");
        return false;
    }
    true
}

/// Runs a command, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("spawn {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// An OCI layout under `dir` holding a busybox image tagged `tag`: `/bin/busybox`, `/bin/sh -> busybox`,
/// `Cmd ["/bin/sh"]`, `Env PATH=/bin`.
pub fn build_busybox_layout(dir: &Path, tag: &str) -> Result<PathBuf> {
    let busybox = busybox().context("busybox-static missing")?;
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy(&busybox, rootfs.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh"))?;
    let layout = dir.join("oci");
    let image = format!("{}:{tag}", layout.display());
    run("umoci", &["init", "--layout", &layout.display().to_string()])?;
    run("umoci", &["new", "--image", &image])?;
    run(
        "umoci",
        &["insert", "--image", &image, &rootfs.display().to_string(), "/"],
    )?;
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/bin",
            "--config.workingdir",
            "/",
        ],
    )?;
    Ok(layout)
}

/// `skopeo copy` with extra flags.
pub fn skopeo_copy(flags: &[&str], source: &str, destination: &str) -> Result<()> {
    let mut args = vec!["copy", "--quiet"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[source, destination]);
    run("skopeo", &args)
}

/// Asserts a rootfs layer holds the real busybox and its `sh` link, and that the binary runs.
pub fn check_busybox_layer(layer: &Path) -> Result<()> {
    let unpacked = layer.join("bin/busybox");
    let original = busybox().context("busybox-static missing")?;
    if std::fs::read(&unpacked)? != std::fs::read(&original)? {
        bail!("{} differs from {}", unpacked.display(), original.display());
    }
    if std::fs::read_link(layer.join("bin/sh"))? != Path::new("busybox") {
        bail!("bin/sh is not a link to busybox");
    }
    let output = Command::new(&unpacked).arg("echo").arg("unpacked").output()?;
    if String::from_utf8_lossy(&output.stdout).trim() != "unpacked" {
        bail!("unpacked busybox did not run: {output:?}");
    }
    Ok(())
}
