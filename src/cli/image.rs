//! `peapod image`: import archives, list, pull and remove images in the node's store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CliError, Global};
use crate::image::{ImageStore, PullOptions};

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
    /// Remove image names from the store.
    Rm {
        /// Image names.
        #[arg(required = true)]
        names: Vec<String>,
    },
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
}

/// `peapod image ...`.
pub fn image(global: &Global, cmd: ImageCommand) -> Result<ExitCode, CliError> {
    crate::sys::fs::create_dir_all_mode(&global.state_dir, 0o711)
        .map_err(|e| CliError::context(global.state_dir.display(), e))?;
    let store = ImageStore::open(global.state_dir.join("images"))
        .map_err(|e| CliError::context("open image store", e))?;
    match cmd {
        ImageCommand::Import { files } => {
            for f in files {
                let names = store
                    .import(&f)
                    .map_err(|e| CliError::context(f.display(), crate::runtime::chain(&e)))?;
                for n in names {
                    println!("Loaded image: {n}");
                }
            }
        }
        ImageCommand::Ls => {
            let list = store.list().map_err(|e| CliError::context("list images", e))?;
            let rows: Vec<[String; 4]> = list
                .iter()
                .map(|i| {
                    let (repo, tag) = split_tag(&i.name);
                    let id =
                        i.id.trim_start_matches("sha256:")
                            .chars()
                            .take(13)
                            .collect::<String>();
                    [repo, tag, id, human_size(i.size)]
                })
                .collect();
            let header = [
                "IMAGE".to_string(),
                "TAG".to_string(),
                "IMAGE ID".to_string(),
                "SIZE".to_string(),
            ];
            let mut widths = [0usize; 4];
            for r in std::iter::once(&header).chain(rows.iter()) {
                for (w, c) in widths.iter_mut().zip(r.iter()) {
                    *w = (*w).max(c.len());
                }
            }
            for r in std::iter::once(&header).chain(rows.iter()) {
                println!(
                    "{:w0$}   {:w1$}   {:w2$}   {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2]
                );
            }
        }
        ImageCommand::Pull(a) => {
            let options = PullOptions {
                default_registry: a.default_registry,
                insecure_registries: a.insecure_registry,
                ..PullOptions::default()
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::context("runtime", e))?;
            let image = rt
                .block_on(store.pull(&a.name, &options))
                .map_err(|e| CliError::context(&a.name, crate::runtime::chain(&e)))?;
            println!("Image is up to date for {}", image.id);
        }
        ImageCommand::Rm { names } => {
            for n in names {
                let removed = store.remove(&n).map_err(|e| CliError::context(&n, e))?;
                println!("Untagged: {removed}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn split_tag(name: &str) -> (String, String) {
    let (repo, digest) = name
        .split_once('@')
        .map(|(r, d)| (r, Some(d)))
        .unwrap_or((name, None));
    let slash = repo.rfind('/').map(|i| i + 1).unwrap_or(0);
    match repo[slash..].rfind(':') {
        Some(i) => (repo[..slash + i].to_string(), repo[slash + i + 1..].to_string()),
        None => (
            repo.to_string(),
            digest
                .map(|_| "<none>".to_string())
                .unwrap_or_else(|| "<none>".into()),
        ),
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
        format!("{v:.3}{}", units[i]).replace(".000", "")
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
}
