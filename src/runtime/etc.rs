//! The sandbox's managed files: `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, in the kubelet's
//! formats (pkg/kubelet/kubelet_pods.go `managedHostsFileContent`, pkg/kubelet/network/dns). Pure content
//! builders; the sandbox writes the results.

use k8s_openapi::api::core::v1::{PodDNSConfig, PodSpec};

/// Kubelet's limits on the resolv.conf it writes.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// Cluster DNS settings of the node (`--cluster-dns`, `--cluster-domain`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterDns {
    /// Cluster DNS server addresses; empty when the node has none.
    pub servers: Vec<String>,
    /// Cluster domain, e.g. `cluster.local`.
    pub domain: String,
}

/// The pod's hostname and, with `subdomain`, its fully qualified name (kubelet `GeneratePodHostNameAndDomain`).
pub fn hostname_and_fqdn(
    pod_name: &str,
    namespace: &str,
    spec: &PodSpec,
    domain: &str,
) -> (String, Option<String>) {
    let mut hostname = spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod_name.to_string());
    hostname.truncate(63);
    let hostname = hostname.trim_end_matches(['-', '.']).to_string();
    let fqdn = spec
        .subdomain
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|sub| format!("{hostname}.{sub}.{namespace}.svc.{domain}"));
    (hostname, fqdn)
}

/// `/etc/hosts` for a pod with its own network namespace.
pub fn hosts(spec: &PodSpec, hostname: &str, fqdn: Option<&str>, pod_ips: &[String]) -> String {
    let mut out = String::from("# Kubernetes-managed hosts file.\n");
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in pod_ips {
        match fqdn {
            Some(f) => out.push_str(&format!("{ip}\t{f}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    out.push_str(&host_aliases(spec));
    out
}

/// `/etc/hosts` for a `hostNetwork` pod: the node's file plus the aliases.
pub fn host_network_hosts(spec: &PodSpec, node_hosts: &str) -> String {
    let mut out = String::from("# Kubernetes-managed hosts file (host network).\n");
    out.push_str(node_hosts);
    if !node_hosts.is_empty() && !node_hosts.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&host_aliases(spec));
    out
}

fn host_aliases(spec: &PodSpec) -> String {
    let aliases = spec.host_aliases.as_deref().unwrap_or_default();
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        let names = a.hostnames.as_deref().unwrap_or_default();
        out.push_str(&format!("{}\t{}\n", a.ip, names.join("\t")));
    }
    out
}

/// A parsed resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolv {
    /// `nameserver` lines.
    pub nameservers: Vec<String>,
    /// `search` (or `domain`) entries.
    pub searches: Vec<String>,
    /// `options` entries.
    pub options: Vec<String>,
}

impl Resolv {
    /// Parses resolv.conf text; unknown lines are ignored as the resolver does.
    pub fn parse(text: &str) -> Self {
        let mut r = Resolv::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => r.nameservers.extend(fields.next().map(String::from)),
                Some("search") | Some("domain") => r.searches = fields.map(String::from).collect(),
                Some("options") => r.options.extend(fields.map(String::from)),
                _ => {}
            }
        }
        r
    }

    /// Renders as containerd writes it: search, nameserver lines, options.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

/// The effective DNS policy and whether the kubelet would warn that it fell back (`MissingClusterDNS`).
pub fn effective_policy(spec: &PodSpec, cluster: &ClusterDns) -> (&'static str, bool) {
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network.unwrap_or(false);
    match policy {
        "None" => ("None", false),
        "Default" => ("Default", false),
        "ClusterFirst" if host_network => ("Default", false),
        _ if cluster.servers.is_empty() => ("Default", true),
        _ => ("ClusterFirst", false),
    }
}

/// The pod's resolv.conf (kubelet `GetPodDNS`): the policy's base, then `dnsConfig` merged on top.
pub fn resolv_conf(spec: &PodSpec, namespace: &str, cluster: &ClusterDns, host: &Resolv) -> Resolv {
    let mut r = match effective_policy(spec, cluster).0 {
        "None" => Resolv::default(),
        "Default" => host.clone(),
        _ => {
            let d = &cluster.domain;
            let mut searches = vec![format!("{namespace}.svc.{d}"), format!("svc.{d}"), d.clone()];
            searches.extend(host.searches.iter().cloned());
            Resolv {
                nameservers: cluster.servers.clone(),
                searches,
                options: vec!["ndots:5".to_string()],
            }
        }
    };
    if let Some(cfg) = &spec.dns_config {
        merge(&mut r, cfg);
    }
    dedup(&mut r.nameservers);
    r.nameservers.truncate(MAX_NAMESERVERS);
    dedup(&mut r.searches);
    r.searches.truncate(MAX_SEARCHES);
    while r.searches.join(" ").len() > MAX_SEARCH_CHARS {
        r.searches.pop();
    }
    r
}

fn merge(r: &mut Resolv, cfg: &PodDNSConfig) {
    r.nameservers.extend(cfg.nameservers.iter().flatten().cloned());
    r.searches.extend(cfg.searches.iter().flatten().cloned());
    for opt in cfg.options.iter().flatten() {
        let rendered = match &opt.value {
            Some(v) => format!("{}:{v}", opt.name.as_deref().unwrap_or("")),
            None => opt.name.clone().unwrap_or_default(),
        };
        let key = opt.name.clone().unwrap_or_default();
        r.options.retain(|o| o.split(':').next() != Some(key.as_str()));
        r.options.push(rendered);
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodDNSConfigOption};

    #[test]
    fn hosts_matches_kubelet_layout() {
        let spec = PodSpec {
            host_aliases: Some(vec![HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: Some(vec!["foo.remote".into(), "bar.remote".into()]),
            }]),
            ..Default::default()
        };
        let got = hosts(&spec, "web", None, &["10.200.0.5".into()]);
        let want = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.200.0.5\tweb\n\
\n# Entries added by HostAliases.\n10.1.2.3\tfoo.remote\tbar.remote\n";
        assert_eq!(got, want);
        let fq = hosts(
            &PodSpec::default(),
            "h",
            Some("h.sub.default.svc.cluster.local"),
            &["1.2.3.4".into()],
        );
        assert!(fq.ends_with("1.2.3.4\th.sub.default.svc.cluster.local\th\n"));
    }

    #[test]
    fn hostname_truncates_and_builds_fqdn() {
        let spec = PodSpec {
            subdomain: Some("sub".into()),
            ..Default::default()
        };
        let (h, f) = hostname_and_fqdn("web", "ns1", &spec, "cluster.local");
        assert_eq!(
            (h.as_str(), f.as_deref()),
            ("web", Some("web.sub.ns1.svc.cluster.local"))
        );
        let long = format!("{}-{}", "a".repeat(62), "b");
        assert_eq!(
            hostname_and_fqdn(&long, "d", &PodSpec::default(), "c").0,
            "a".repeat(62)
        );
    }

    #[test]
    fn resolv_conf_per_policy() {
        let host = Resolv::parse("# comment\nnameserver 10.0.0.2\nsearch corp.example\noptions rotate\n");
        assert_eq!(host.nameservers, vec!["10.0.0.2"]);
        let cluster = ClusterDns {
            servers: vec!["10.96.0.10".into()],
            domain: "cluster.local".into(),
        };
        let r = resolv_conf(&PodSpec::default(), "default", &cluster, &host);
        assert_eq!(
            r.render(),
            "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        // No cluster DNS on this node: ClusterFirst falls back to Default, as the kubelet does.
        let fallback = resolv_conf(&PodSpec::default(), "default", &ClusterDns::default(), &host);
        assert_eq!(fallback, host);
        assert!(effective_policy(&PodSpec::default(), &ClusterDns::default()).1);
        let none = PodSpec {
            dns_policy: Some("None".into()),
            dns_config: Some(PodDNSConfig {
                nameservers: Some(vec!["1.1.1.1".into()]),
                searches: Some(vec!["a.b".into()]),
                options: Some(vec![PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                }]),
            }),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&none, "x", &cluster, &host).render(),
            "search a.b\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
    }
}
