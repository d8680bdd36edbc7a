//! A container's environment and command line, computed the way the kubelet and containerd compute them.
//!
//! `$(VAR)` references are expanded with the kubelet's rules (k8s third_party/forked/golang/expansion):
//! in `env[].value` only variables defined earlier resolve, in `command`/`args` every container variable
//! does, unknown references stay literal and `$$` escapes. The image's variables never take part in
//! expansion; they are merged underneath at the end, as containerd does. Pure functions only.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, EnvVar};

/// Default PATH containerd gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Expands `$(NAME)` references in `input` with `lookup`; unknown names stay as written.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match lookup(name) {
                            Some(value) => out.push_str(&value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // An operator that starts no expression: keep it and the next character.
                    let ch = rest.chars().next().map(char::len_utf8).unwrap_or(1);
                    out.push('$');
                    out.push_str(&rest[..ch]);
                    ch
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

/// Resolves `valueFrom` sources; returns `None` for a source that cannot be resolved (an error upstream).
pub trait ValueSource {
    /// The value of a `fieldRef`/`resourceFieldRef` variable, or an error message.
    fn value_from(&self, var: &EnvVar) -> Result<String, String>;
}

/// The kubelet's environment for a container: `env` in order, later entries overriding earlier ones, each
/// value expanded against the variables defined before it. Returns ordered `(name, value)` pairs.
pub fn container_env(
    container: &Container,
    sources: &dyn ValueSource,
) -> Result<Vec<(String, String)>, String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, String> = HashMap::new();
    for var in container.env.iter().flatten() {
        let value = if var.value_from.is_some() {
            sources.value_from(var)?
        } else {
            let current = values.clone();
            expand(var.value.as_deref().unwrap_or(""), &move |n| {
                current.get(n).cloned()
            })
        };
        if !values.contains_key(&var.name) {
            order.push(var.name.clone());
        }
        values.insert(var.name.clone(), value);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = values.get(&k).cloned().unwrap_or_default();
            (k, v)
        })
        .collect())
}

/// The process environment: `HOSTNAME`, then the image's variables, then the container's, later names
/// replacing earlier ones in place (containerd's `WithEnv`); PATH defaulted if nobody sets it.
pub fn merge_env(hostname: &str, image_env: &[String], container_env: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or("").to_string();
        match out.iter_mut().find(|e| e.split('=').next() == Some(key.as_str())) {
            Some(slot) => *slot = entry,
            None => out.push(entry),
        }
    };
    set(format!("HOSTNAME={hostname}"));
    for e in image_env {
        set(e.clone());
    }
    for (k, v) in container_env {
        set(format!("{k}={v}"));
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    out
}

/// The process arguments: `command` replaces the image ENTRYPOINT and drops its CMD; `args` replace CMD;
/// both expanded with the container's variables (containerd `WithProcessArgs` after kubelet expansion).
pub fn process_args(
    container: &Container,
    image_entrypoint: &[String],
    image_cmd: &[String],
    env: &[(String, String)],
) -> Result<Vec<String>, String> {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |n: &str| map.get(n).map(|v| v.to_string());
    let expand_all =
        |v: &Option<Vec<String>>| v.iter().flatten().map(|s| expand(s, &lookup)).collect::<Vec<_>>();
    let mut command = expand_all(&container.command);
    let mut args = expand_all(&container.args);
    if command.is_empty() {
        if args.is_empty() {
            args = image_cmd.to_vec();
        }
        if container.command.is_none() && !(image_entrypoint.len() == 1 && image_entrypoint[0].is_empty()) {
            command = image_entrypoint.to_vec();
        }
    }
    command.extend(args);
    if command.is_empty() {
        return Err("no command specified".to_string());
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n| map.get(n).cloned()
    }

    #[test]
    fn expand_follows_kubernetes_rules() {
        let l = lookup_from(&[("VAR_A", "A"), ("VAR_B", "B"), ("VAR_EMPTY", "")]);
        let cases = [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_B)", "A-B"),
            ("$(VAR_EMPTY)", ""),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$(VAR_A", "$(VAR_A"),
            ("$VAR_A", "$VAR_A"),
            ("$", "$"),
            ("a$", "a$"),
            ("$()", "$()"),
            ("f$$oo", "f$oo"),
            ("héllo $(VAR_A) wörld", "héllo A wörld"),
            ("$é", "$é"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &l), want, "input {input:?}");
        }
    }

    struct NoSources;
    impl ValueSource for NoSources {
        fn value_from(&self, _: &EnvVar) -> Result<String, String> {
            Err("unexpected".into())
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    #[test]
    fn env_values_see_only_earlier_variables() {
        let c = Container {
            env: Some(vec![
                var("FOOBAR", "$(FOO);;$(BAR)"),
                var("FOO", "foo-value"),
                var("BAR", "bar-value"),
                var("COMPOSED", "$(FOO);;$(BAR)"),
                var("FOO", "override"),
            ]),
            ..Default::default()
        };
        let env = container_env(&c, &NoSources).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("FOOBAR"), Some("$(FOO);;$(BAR)"));
        assert_eq!(get("COMPOSED"), Some("foo-value;;bar-value"));
        assert_eq!(get("FOO"), Some("override"));
        assert_eq!(env.len(), 4);
    }

    #[test]
    fn merge_env_overrides_in_place_and_defaults_path() {
        let merged = merge_env(
            "web",
            &["A=1".into(), "HOSTNAME=img".into()],
            &[("A".into(), "2".into())],
        );
        assert_eq!(
            merged,
            vec!["HOSTNAME=img", "A=2", &format!("PATH={DEFAULT_PATH}")]
        );
        let with_path = merge_env("web", &["PATH=/bin".into()], &[]);
        assert_eq!(with_path, vec!["HOSTNAME=web", "PATH=/bin"]);
    }

    #[test]
    fn process_args_merge_like_containerd() {
        let ep = vec!["/entry".to_string()];
        let cmd = vec!["default".to_string()];
        let env = vec![("TEST_VAR".to_string(), "test-value".to_string())];
        let mk = |command: Option<Vec<&str>>, args: Option<Vec<&str>>| Container {
            command: command.map(|v| v.into_iter().map(String::from).collect()),
            args: args.map(|v| v.into_iter().map(String::from).collect()),
            ..Default::default()
        };
        let run = |c: &Container| process_args(c, &ep, &cmd, &env).unwrap();
        assert_eq!(run(&mk(None, None)), vec!["/entry", "default"]);
        assert_eq!(run(&mk(None, Some(vec!["x"]))), vec!["/entry", "x"]);
        assert_eq!(run(&mk(Some(vec!["/bin/sh"]), None)), vec!["/bin/sh"]);
        assert_eq!(
            run(&mk(Some(vec!["/bin/sh", "-c"]), Some(vec!["echo $(TEST_VAR)"]))),
            vec!["/bin/sh", "-c", "echo test-value"]
        );
        assert!(process_args(&mk(None, None), &[], &[], &env).is_err());
        let empty_ep = vec![String::new()];
        assert_eq!(
            process_args(&mk(None, None), &empty_ep, &cmd, &env).unwrap(),
            vec!["default"]
        );
    }
}
