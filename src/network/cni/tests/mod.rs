//! Unit tests of the CNI client: config loading, result decoding, and ADD/DEL/CHECK against a fake plugin
//! (a shell script that records each call and answers from files), so no root or real plugin is needed.

mod client;
mod config;
mod result;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(super) use crate::sys::chain;

/// The fake plugin. Linked under a plugin's name, it records stdin, env and the call next to the link,
/// and answers from `<name>.<COMMAND>.{out,err,exit,sleep}` files there.
const FAKE_PLUGIN: &str = r#"#!/bin/sh
d=$(dirname "$0"); n=$(basename "$0"); c=$CNI_COMMAND
cat > "$d/$n.$c.stdin"
env > "$d/$n.$c.env"
echo "$n $c" >> "$d/calls"
if [ -f "$d/$n.$c.sleep" ]; then sleep 30; fi
if [ -f "$d/$n.$c.out" ]; then cat "$d/$n.$c.out"; fi
if [ -f "$d/$n.$c.err" ]; then cat "$d/$n.$c.err" >&2; fi
if [ -f "$d/$n.$c.exit" ]; then exit "$(cat "$d/$n.$c.exit")"; fi
exit 0
"#;

/// The fake plugin executable, written once per test binary (so no test execs a file another test is
/// still writing).
fn fake_plugin() -> &'static Path {
    static FAKE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake-cni-plugin");
        fs::write(&path, FAKE_PLUGIN).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    });
    path
}

/// A directory of fake plugins and what they were asked.
struct Plugins {
    dir: tempfile::TempDir,
}

impl Plugins {
    fn new(names: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            std::os::unix::fs::symlink(fake_plugin(), dir.path().join(name)).unwrap();
        }
        Plugins { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sets what `plugin` does for `command`: `kind` is `out`, `err`, `exit` or `sleep`.
    fn answer(&self, plugin: &str, command: &str, kind: &str, content: &str) {
        fs::write(
            self.dir.path().join(format!("{plugin}.{command}.{kind}")),
            content,
        )
        .unwrap();
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn stdin(&self, plugin: &str, command: &str) -> serde_json::Value {
        let path = self.dir.path().join(format!("{plugin}.{command}.stdin"));
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    /// The plugin's environment, without the variables the shell adds itself.
    fn env(&self, plugin: &str, command: &str) -> Vec<String> {
        let text = fs::read_to_string(self.dir.path().join(format!("{plugin}.{command}.env"))).unwrap();
        let mut vars: Vec<String> = text
            .lines()
            .filter(|l| !["PWD=", "SHLVL=", "_="].iter().any(|p| l.starts_with(p)))
            .map(String::from)
            .collect();
        vars.sort();
        vars
    }
}
