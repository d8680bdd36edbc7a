//! Container capability names. Kubernetes itself accepts any string and leaves the meaning to the
//! runtime; containerd and CRI-O upper-case each name and prefix `CAP_`. peapod is stricter so that a
//! typo fails at admission instead of at container start: names must be the upper-case Linux
//! capability names without the `CAP_` prefix (`NET_ADMIN`), as the Kubernetes documentation writes
//! them.
//!
//! `ALL` is accepted in `drop` (start from an empty set) and in `add`, where it means every capability
//! the runtime knows, exactly as containerd and CRI-O treat it. It grants capabilities only: unlike
//! `privileged: true` it does not expose host devices, lift masked paths or disable seccomp.

use k8s_openapi::api::core::v1::Capabilities;

use crate::api::field::{FieldError, FieldPath};

/// Every Linux capability as of Linux 6.x, without the `CAP_` prefix.
pub const KNOWN_CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The special name for every capability.
pub const ALL: &str = "ALL";

/// Checks `capabilities.add` and `capabilities.drop`.
pub fn validate(caps: &Capabilities, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (list, name) in [(&caps.add, "add"), (&caps.drop, "drop")] {
        for (i, cap) in list.iter().flatten().enumerate() {
            if let Some(detail) = problem(cap) {
                errs.push(FieldError::invalid(&path.child(name).index(i), cap, &detail));
            }
        }
    }
}

fn problem(cap: &str) -> Option<String> {
    if cap == ALL || KNOWN_CAPABILITIES.contains(&cap) {
        return None;
    }
    let upper = cap.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == ALL || KNOWN_CAPABILITIES.contains(&bare) {
        return Some(format!(
            "capability names are upper case without the CAP_ prefix (use {bare:?})"
        ));
    }
    Some(
        "not a known Linux capability (names are upper case without the CAP_ prefix, e.g. \"NET_ADMIN\")"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        let caps = Capabilities {
            add: Some(vec![
                "NET_ADMIN".into(),
                "ALL".into(),
                "CAP_SYS_TIME".into(),
                "net_raw".into(),
                "FOO".into(),
            ]),
            drop: Some(vec!["ALL".into(), "all".into()]),
        };
        let mut errs = Vec::new();
        validate(&caps, &FieldPath::new("c"), &mut errs);
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                r#"c.add[2]: Invalid value: "CAP_SYS_TIME": capability names are upper case without the CAP_ prefix (use "SYS_TIME")"#,
                r#"c.add[3]: Invalid value: "net_raw": capability names are upper case without the CAP_ prefix (use "NET_RAW")"#,
                r#"c.add[4]: Invalid value: "FOO": not a known Linux capability (names are upper case without the CAP_ prefix, e.g. "NET_ADMIN")"#,
                r#"c.drop[1]: Invalid value: "all": capability names are upper case without the CAP_ prefix (use "ALL")"#,
            ]
        );
    }
}
