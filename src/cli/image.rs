//! `peapod image`: import archives, list, pull, remove and prune images in the node's store; and the
//! image flags `run` and `agent` share (credentials, registry CAs, garbage collection thresholds).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::run::NodeArgs;
use super::{CliError, Global};
use crate::image::auth::Keyring;
use crate::image::{GcPolicy, GcReport, ImageStore, PullOptions};
use crate::pod::store_images::{images_in_use, StoreImages};
use crate::runtime::layout::RuntimeConfig;

/// Image commands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import OCI archives (`skopeo copy ... oci-archive:`) or `docker save` archives.
    Import {
        /// Archive files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List stored images.
    #[command(alias = "list")]
    Ls,
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Remove image names, then the content no other name and no container on this node uses.
    Rm {
        /// Image names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every image no container on this node uses (like `crictl rmi --prune`), then unreferenced
    /// content. Images handed to a starting container within the last minute are kept.
    Prune,
}

/// Where credentials and registry CAs come from.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Docker config.json whose `auths` (auth, username/password, identitytoken, registrytoken) are
    /// matched to registries the way the kubelet's keyring does; in cluster mode, Pods' imagePullSecrets
    /// are tried first.
    #[arg(long, env = "PEAPOD_REGISTRY_CONFIG")]
    pub registry_config: Option<PathBuf>,
    /// Directory of per-registry CA certificates: <dir>/<host:port>/*.crt are trusted for that registry
    /// (as in docker's and podman's certs.d); a loopback registry with such a directory is spoken to over
    /// HTTPS.
    #[arg(
        long,
        env = "PEAPOD_REGISTRY_CERTS_DIR",
        default_value = "/etc/peapod/certs.d"
    )]
    pub registry_certs_dir: PathBuf,
}

impl RegistryArgs {
    fn keyring(&self) -> Result<Keyring, CliError> {
        match &self.registry_config {
            Some(path) => Keyring::load(path).map_err(|e| CliError(crate::sys::chain(&e))),
            None => Ok(Keyring::default()),
        }
    }
}

/// Image flags of `run` and `agent`.
#[derive(Debug, Clone, Args)]
pub struct NodeImageArgs {
    /// Credentials and registry CAs.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Disk usage percent of the image filesystem at or above which unused images are garbage collected
    /// (100 disables collection).
    #[arg(long, env = "PEAPOD_IMAGE_GC_HIGH_THRESHOLD", default_value_t = 85)]
    pub image_gc_high_threshold: u8,
    /// Disk usage percent garbage collection frees down to.
    #[arg(long, env = "PEAPOD_IMAGE_GC_LOW_THRESHOLD", default_value_t = 80)]
    pub image_gc_low_threshold: u8,
    /// Minimum age of an unused image before it is garbage collected (Go duration: 2m, 90s, 1h30m).
    #[arg(long, env = "PEAPOD_MINIMUM_IMAGE_TTL_DURATION", default_value = "2m", value_parser = parse_go_duration)]
    pub minimum_image_ttl_duration: Duration,
}

impl NodeImageArgs {
    /// The garbage collection policy, checked as the kubelet checks its configuration.
    pub fn gc_policy(&self) -> Result<GcPolicy, CliError> {
        let (high, low) = (self.image_gc_high_threshold, self.image_gc_low_threshold);
        if high > 100 {
            return Err(CliError(format!(
                "invalid configuration: imageGCHighThresholdPercent (--image-gc-high-threshold) {high} must be \
                 between 0 and 100, inclusive"
            )));
        }
        if low > 100 {
            return Err(CliError(format!(
                "invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {low} must be \
                 between 0 and 100, inclusive"
            )));
        }
        if low >= high {
            return Err(CliError(format!(
                "invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) {low} must be less \
                 than imageGCHighThresholdPercent (--image-gc-high-threshold) {high}"
            )));
        }
        Ok(GcPolicy {
            high_threshold: high,
            low_threshold: low,
            min_age: self.minimum_image_ttl_duration,
        })
    }
}

/// Arguments of `peapod image pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference.
    pub name: String,
    /// Registry short names are pulled from.
    #[arg(long, env = "PEAPOD_DEFAULT_REGISTRY")]
    pub default_registry: Option<String>,
    /// Registry spoken to over plain HTTP (repeatable); loopback registries always are.
    #[arg(long, env = "PEAPOD_INSECURE_REGISTRY", value_delimiter = ',')]
    pub insecure_registry: Vec<String>,
    /// Credentials and registry CAs.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// The node's images for `run` and `agent`: the store, pulls with the node's flags, and the GC policy.
pub fn node_images(cfg: &RuntimeConfig, node: &NodeArgs) -> Result<(StoreImages, GcPolicy), CliError> {
    let policy = node.images.gc_policy()?;
    let store = ImageStore::open(cfg.images_dir()).map_err(|e| CliError::context("open image store", e))?;
    let options = PullOptions {
        default_registry: node.default_registry.clone(),
        insecure_registries: node.insecure_registry.clone(),
        keyring: node.images.registry.keyring()?,
        certs_dir: Some(node.images.registry.registry_certs_dir.clone()),
    };
    Ok((StoreImages::new(Arc::new(store), options), policy))
}

/// Starts the periodic image garbage collection on the current tokio runtime.
pub fn spawn_image_gc(images: Arc<StoreImages>, cfg: &RuntimeConfig, policy: GcPolicy) {
    let pods = cfg.pods_dir();
    tokio::spawn(images.run_gc(pods, policy, crate::pod::store_images::GC_PERIOD));
}

/// `peapod image ...`.
pub fn image(global: &Global, cmd: ImageCommand) -> Result<ExitCode, CliError> {
    crate::sys::fs::create_dir_all_mode(&global.state_dir, 0o711)
        .map_err(|e| CliError::context(global.state_dir.display(), e))?;
    let store = ImageStore::open(global.state_dir.join("images"))
        .map_err(|e| CliError::context("open image store", e))?;
    let pods = global.state_dir.join("pods");
    match cmd {
        ImageCommand::Import { files } => {
            for f in files {
                let names = store
                    .import(&f)
                    .map_err(|e| CliError::context(f.display(), crate::sys::chain(&e)))?;
                for n in names {
                    println!("Loaded image: {n}");
                }
            }
        }
        ImageCommand::Ls => {
            let list = store.list().map_err(|e| CliError::context("list images", e))?;
            print_table(&list);
        }
        ImageCommand::Pull(a) => {
            let options = PullOptions {
                default_registry: a.default_registry,
                insecure_registries: a.insecure_registry,
                keyring: a.registry.keyring()?,
                certs_dir: Some(a.registry.registry_certs_dir),
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::context("runtime", e))?;
            let image = rt
                .block_on(store.pull(&a.name, &options))
                .map_err(|e| CliError(crate::sys::chain(&e)))?;
            println!("Image is up to date for {}", image.id);
        }
        ImageCommand::Rm { names } => {
            for n in names {
                let removed = store.remove(&n).map_err(|e| CliError::context(&n, e))?;
                println!("Untagged: {removed}");
            }
            store
                .sweep_unreferenced(|| images_in_use(&pods))
                .map_err(|e| CliError::context("remove unreferenced content", crate::sys::chain(&e)))?;
        }
        ImageCommand::Prune => {
            let report = store
                .prune(|| images_in_use(&pods))
                .map_err(|e| CliError::context("prune images", crate::sys::chain(&e)))?;
            print_pruned(&report);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_pruned(report: &GcReport) {
    for (id, names) in &report.removed {
        for name in names {
            println!("Deleted: {name}");
        }
        println!("Deleted: {id}");
    }
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
}

fn print_table(list: &[crate::image::ImageSummary]) {
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|i| {
            let (repo, tag) = split_tag(&i.name);
            let id: String = i.id.trim_start_matches("sha256:").chars().take(13).collect();
            [repo, tag, id, human_size(i.size)]
        })
        .collect();
    let header = ["IMAGE", "TAG", "IMAGE ID", "SIZE"].map(String::from);
    let mut widths = [0usize; 4];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    for [repo, tag, id, size] in std::iter::once(&header).chain(rows.iter()) {
        let [w0, w1, w2, _] = widths;
        println!("{repo:w0$}   {tag:w1$}   {id:w2$}   {size}");
    }
}

/// Go's `time.ParseDuration` for the units a TTL needs: `0`, `90s`, `2m`, `1h30m`, `1.5h`, `500ms`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += value * scale;
        rest = after;
    }
    if s.is_empty() || !total.is_finite() {
        return Err(invalid());
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

fn split_tag(name: &str) -> (String, String) {
    let repo = name.split_once('@').map_or(name, |(r, _)| r);
    let slash = repo.rfind('/').map_or(0, |i| i + 1);
    match repo
        .get(slash..)
        .and_then(|last| last.rfind(':'))
        .map(|i| slash + i)
    {
        Some(colon) => (
            repo.get(..colon).unwrap_or(repo).to_string(),
            repo.get(colon + 1..).unwrap_or_default().to_string(),
        ),
        None => (repo.to_string(), "<none>".to_string()),
    }
}

/// Sizes as crictl prints them (decimal units).
fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}{}", units.get(i).copied().unwrap_or("B")).replace(".000", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags_and_sizes() {
        assert_eq!(
            split_tag("localhost/busybox:1.35.0"),
            ("localhost/busybox".into(), "1.35.0".into())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x/y:t"),
            ("127.0.0.1:5000/x/y".into(), "t".into())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x".into(), "<none>".into())
        );
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_234_567), "1.235MB");
    }

    #[test]
    fn go_durations_parse() {
        for (input, secs) in [
            ("0", 0.0),
            ("0s", 0.0),
            ("2m", 120.0),
            ("1h30m", 5400.0),
            ("1.5s", 1.5),
            ("250ms", 0.25),
        ] {
            assert_eq!(
                parse_go_duration(input),
                Ok(Duration::from_secs_f64(secs)),
                "{input}"
            );
        }
        for bad in ["", "5", "2d", "-1s", "m", "1..5s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gc_thresholds_are_checked_like_the_kubelet() {
        let args = |high, low| NodeImageArgs {
            registry: RegistryArgs {
                registry_config: None,
                registry_certs_dir: PathBuf::from("/nonexistent"),
            },
            image_gc_high_threshold: high,
            image_gc_low_threshold: low,
            minimum_image_ttl_duration: Duration::from_secs(120),
        };
        assert_eq!(args(85, 80).gc_policy().ok(), Some(GcPolicy::default()));
        let err = |high, low| args(high, low).gc_policy().err().map(|e| e.0).unwrap_or_default();
        assert_eq!(
            err(80, 80),
            "invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) 80 must be less than \
             imageGCHighThresholdPercent (--image-gc-high-threshold) 80"
        );
        assert!(err(101, 80).contains("--image-gc-high-threshold) 101 must be between 0 and 100"));
        assert!(err(100, 101).contains("--image-gc-low-threshold) 101 must be between 0 and 100"));
    }
}
