//! What the runtime reads from an image's configuration: entrypoint, cmd, env, working dir, user, stop
//! signal and exposed ports.
//!
//! Owns only the reading and parsing of those fields; merging them with a container spec (the kubelet's
//! command/args rules) is the runtime's job.

use std::str::FromStr;

use super::Image;

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// One `ExposedPorts` entry (`80/tcp`, `53/udp`, `8080`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposedPort {
    pub port: u16,
    pub protocol: Protocol,
}

impl FromStr for ExposedPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (port, protocol) = s.split_once('/').unwrap_or((s, "tcp"));
        let protocol = match protocol.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            other => return Err(format!("unknown protocol {other:?} in exposed port {s:?}")),
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid exposed port {s:?}"))?;
        Ok(Self { port, protocol })
    }
}

impl Image {
    fn exec_config(&self) -> Option<&oci_spec::image::Config> {
        self.config.config().as_ref()
    }

    /// `Entrypoint`, empty when unset.
    pub fn entrypoint(&self) -> &[String] {
        self.exec_config()
            .and_then(|c| c.entrypoint().as_deref())
            .unwrap_or_default()
    }

    /// `Cmd`, empty when unset.
    pub fn cmd(&self) -> &[String] {
        self.exec_config()
            .and_then(|c| c.cmd().as_deref())
            .unwrap_or_default()
    }

    /// `Env` entries (`NAME=value`), empty when unset.
    pub fn env(&self) -> &[String] {
        self.exec_config()
            .and_then(|c| c.env().as_deref())
            .unwrap_or_default()
    }

    /// `WorkingDir`, if set and not empty.
    pub fn working_dir(&self) -> Option<&str> {
        self.exec_config()
            .and_then(|c| c.working_dir().as_deref())
            .filter(|w| !w.is_empty())
    }

    /// `User` (`name`, `uid`, `uid:gid`, `name:group`, ...), if set and not empty.
    pub fn user(&self) -> Option<&str> {
        self.exec_config()
            .and_then(|c| c.user().as_deref())
            .filter(|u| !u.is_empty())
    }

    /// `StopSignal` as a signal number, if set. An unknown name is an error naming it.
    pub fn stop_signal(&self) -> Result<Option<i32>, InvalidSignal> {
        match self
            .exec_config()
            .and_then(|c| c.stop_signal().as_deref())
            .filter(|s| !s.is_empty())
        {
            Some(name) => parse_signal(name).map(Some),
            None => Ok(None),
        }
    }

    /// `ExposedPorts`, sorted; entries that do not parse are skipped with a warning.
    pub fn exposed_ports(&self) -> Vec<ExposedPort> {
        let raw = self
            .exec_config()
            .and_then(|c| c.exposed_ports().as_deref())
            .unwrap_or_default();
        let mut ports: Vec<ExposedPort> = raw
            .iter()
            .filter_map(|entry| match entry.parse() {
                Ok(port) => Some(port),
                Err(error) => {
                    tracing::warn!(image = %self.name, %error, "skipping exposed port");
                    None
                }
            })
            .collect();
        ports.sort_by_key(|p| (p.port, p.protocol as u8));
        ports
    }
}

/// A stop signal that names no signal of this system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stop signal {raw:?}")]
pub struct InvalidSignal {
    /// The signal as the image wrote it.
    pub raw: String,
}

/// Parses `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3` or `RTMAX-1` as moby's `signal.ParseSignal` does.
pub fn parse_signal(raw: &str) -> Result<i32, InvalidSignal> {
    let unknown = || InvalidSignal { raw: raw.to_string() };
    if let Ok(number) = raw.parse::<i32>() {
        return (1..=libc::SIGRTMAX())
            .contains(&number)
            .then_some(number)
            .ok_or_else(unknown);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str, sep: char| -> Option<i32> {
        if rest.is_empty() {
            Some(0)
        } else {
            rest.strip_prefix(sep)?.parse().ok()
        }
    };
    let realtime = |number: Option<i32>| {
        number
            .filter(|n| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(n))
            .ok_or_else(unknown)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return realtime(offset(rest, '+').and_then(|o| libc::SIGRTMIN().checked_add(o)));
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return realtime(offset(rest, '-').and_then(|o| libc::SIGRTMAX().checked_sub(o)));
    }
    nix::sys::signal::Signal::from_str(&format!("SIG{name}"))
        .map(|s| s as i32)
        .map_err(|_| unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(config_json: &str) -> Image {
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{config_json}}}"#
        );
        Image {
            name: "test".into(),
            id: String::new(),
            manifest_digest: String::new(),
            repo_digest: None,
            config: serde_json::from_str(&json).expect("config"),
            layers: Vec::new(),
        }
    }

    #[test]
    fn reads_exec_fields() {
        let img = image(
            r#"{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"Env":["A=1"],"WorkingDir":"/w","User":"1000:1000",
                "StopSignal":"SIGQUIT","ExposedPorts":{"80/tcp":{},"53/udp":{},"8080":{},"bogus/xyz":{}}}"#,
        );
        assert_eq!(img.entrypoint(), ["/bin/sh", "-c"]);
        assert_eq!(img.cmd(), ["echo hi"]);
        assert_eq!(img.env(), ["A=1"]);
        assert_eq!(img.working_dir(), Some("/w"));
        assert_eq!(img.user(), Some("1000:1000"));
        assert_eq!(img.stop_signal(), Ok(Some(libc::SIGQUIT)));
        let ports: Vec<_> = img.exposed_ports().iter().map(|p| (p.port, p.protocol)).collect();
        assert_eq!(
            ports,
            [(53, Protocol::Udp), (80, Protocol::Tcp), (8080, Protocol::Tcp)]
        );
    }

    #[test]
    fn empty_config_gives_empty_answers() {
        let img = image("{}");
        assert!(img.entrypoint().is_empty() && img.cmd().is_empty() && img.env().is_empty());
        assert_eq!((img.working_dir(), img.user()), (None, None));
        assert_eq!(img.stop_signal(), Ok(None));
        assert!(img.exposed_ports().is_empty());
    }

    #[test]
    fn signals_parse_like_moby() {
        let table = [
            ("SIGTERM", Ok(libc::SIGTERM)),
            ("term", Ok(libc::SIGTERM)),
            ("9", Ok(libc::SIGKILL)),
            ("SIGRTMIN+3", Ok(libc::SIGRTMIN() + 3)),
            ("RTMAX-1", Ok(libc::SIGRTMAX() - 1)),
            ("SIGRTMIN", Ok(libc::SIGRTMIN())),
            ("0", Err(())),
            ("SIGBOGUS", Err(())),
            ("SIGRTMIN+999", Err(())),
        ];
        for (raw, want) in table {
            assert_eq!(parse_signal(raw).map_err(|_| ()), want, "{raw}");
        }
    }
}
