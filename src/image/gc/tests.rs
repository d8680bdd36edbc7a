//! Collection policy (pure) and prune / sweep / collection on a real store: shared layers stay, images
//! in use or leased stay, a crash mid-way leaves a store that loads.

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, SystemTime};

use super::*;
use crate::image::testutil::{commit_layers, is_root, Tar};

fn layer(name: &str, size: usize) -> Vec<u8> {
    Tar::default().file(name, &vec![b'x'; size]).finish()
}

fn open() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path().join("images")).expect("open");
    (dir, store)
}

fn ids(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn bytes_to_free_follows_the_kubelet() {
    let policy = GcPolicy::default();
    let cases = [
        // capacity, available, usage percent, bytes to free
        (1000, 200, 80, None),
        (1000, 151, 85, Some(49)), // 100 - 151*100/1000 = 85 with integer division, as the kubelet has it
        (1000, 150, 85, Some(50)), // free down to 80 %: 200 available
        (1000, 0, 100, Some(200)),
        (100_000, 5_000, 95, Some(15_000)),
    ];
    for (capacity, available, percent, want) in cases {
        let usage = FsUsage { capacity, available };
        assert_eq!(usage.percent(), percent, "{capacity}/{available}");
        assert_eq!(bytes_to_free(usage, &policy), want, "{capacity}/{available}");
    }
    let unknown = FsUsage {
        capacity: 0,
        available: 0,
    };
    assert_eq!(bytes_to_free(unknown, &policy), None);
    let disabled = GcPolicy {
        high_threshold: 100,
        ..policy
    };
    let nearly_full = FsUsage {
        capacity: 1000,
        available: 1,
    };
    assert_eq!(bytes_to_free(nearly_full, &disabled), None);
}

#[test]
fn eviction_order_is_lru_and_skips_in_use_leased_and_young_images() {
    let now = SystemTime::now();
    let ago = |secs: u64| now - Duration::from_secs(secs);
    let image = |id: &str, added: u64, used: Option<u64>| StoredImage {
        id: id.into(),
        names: vec![format!("localhost/{id}:1")],
        manifests: Vec::new(),
        added: ago(added),
        last_used: used.map(ago),
    };
    let images = [
        image("in-use", 9000, None),
        image("leased", 9000, Some(10)),
        image("young", 30, None),
        image("used-an-hour-ago", 9000, Some(3600)),
        image("never-used-old", 8000, None),
        image("used-yesterday", 90_000, Some(86_400)),
    ];
    let order = eviction_order(&images, &ids(&["in-use"]), now, Duration::from_secs(120));
    assert_eq!(order, ["used-yesterday", "never-used-old", "used-an-hour-ago"]);
    let prune = eviction_order(&images, &ids(&["in-use"]), now, Duration::ZERO);
    assert!(prune.contains(&"young".to_owned()) && !prune.contains(&"leased".to_owned()));
}

#[test]
fn prune_keeps_shared_layers_and_images_in_use() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    let (base, only_a, only_b) = (layer("base", 4096), layer("a", 4096), layer("b", 4096));
    let a = commit_layers(&store, "localhost/a:1", &[base.clone(), only_a]).expect("a");
    let b = commit_layers(&store, "localhost/b:1", &[base, only_b]).expect("b");
    let report = store.prune(|| Ok(ids(&[&b.id]))).expect("prune");
    assert_eq!(report.removed, [(a.id.clone(), vec!["localhost/a:1".to_owned()])]);
    assert!(report.reclaimed > 4096, "{report:?}");
    assert!(!a.layers[1].exists(), "a's own layer is gone");
    assert!(
        a.layers[0].exists() && b.layers[1].exists(),
        "the shared and b's layers stay"
    );
    assert!(store.lookup("localhost/a:1").expect("lookup").is_none());
    let again = store.lookup("localhost/b:1").expect("lookup").expect("b stays");
    assert_eq!(again.layers, b.layers);
    assert_eq!(
        store.prune(|| Ok(ids(&[&b.id]))).expect("again"),
        GcReport::default()
    );
}

#[test]
fn an_unnamed_image_in_use_keeps_what_it_runs_from() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    let image = commit_layers(&store, "localhost/running:1", &[layer("x", 100)]).expect("commit");
    store.remove("localhost/running:1").expect("rm");
    store.sweep_unreferenced(|| Ok(ids(&[&image.id]))).expect("sweep");
    assert!(
        image.layers[0].join("x").is_file(),
        "the running container's layer stays"
    );
    let config = Digest::parse(&image.id).expect("id");
    assert!(store.has_blob(&config), "and its config");
    store
        .sweep_unreferenced(|| Ok(BTreeSet::new()))
        .expect("sweep after it stopped");
    assert!(!image.layers[0].exists() && !store.has_blob(&config));
    assert_eq!(store.stored_items().expect("items"), []);
}

#[test]
fn a_lease_protects_an_image_about_to_be_used() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    let image = commit_layers(&store, "localhost/soon:1", &[layer("x", 100)]).expect("commit");
    store
        .lookup_for_use("localhost/soon:1", None)
        .expect("lookup")
        .expect("found");
    assert_eq!(store.prune(|| Ok(BTreeSet::new())).expect("prune").removed, []);
    assert!(image.layers[0].exists());
}

#[test]
fn collection_frees_least_recently_used_images_until_the_target() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    let old = commit_layers(&store, "localhost/old:1", &[layer("o", 64 * 1024)]).expect("old");
    let newer = commit_layers(&store, "localhost/newer:1", &[layer("n", 64 * 1024)]).expect("newer");
    let used = commit_layers(&store, "localhost/used:1", &[layer("u", 64 * 1024)]).expect("used");
    store
        .update_refs(|index| {
            for (name, added) in [
                ("localhost/old:1", 1000),
                ("localhost/newer:1", 2000),
                ("localhost/used:1", 500),
            ] {
                if let Some(entry) = index.images.get_mut(name) {
                    entry.added = added;
                }
            }
        })
        .expect("age the images");
    let policy = GcPolicy::default();
    let below = FsUsage {
        capacity: 1 << 30,
        available: 1 << 29,
    };
    let (report, wanted) = store
        .collect_garbage(&policy, below, || Ok(BTreeSet::new()))
        .expect("gc");
    assert_eq!((report, wanted), (GcReport::default(), 0));
    // 86 % used, 84 % wanted: about 41 KB to free, less than one image.
    let close = GcPolicy {
        high_threshold: 85,
        low_threshold: 84,
        ..policy
    };
    let capacity = 4 << 20;
    let over = FsUsage {
        capacity,
        available: capacity / 100 * 15,
    };
    let (report, wanted) = store
        .collect_garbage(&close, over, || Ok(ids(&[&used.id])))
        .expect("gc");
    assert_eq!(wanted, 41_943);
    assert_eq!(
        report.removed,
        [(old.id.clone(), vec!["localhost/old:1".to_owned()])]
    );
    assert!(report.reclaimed >= wanted, "{report:?}");
    assert!(store.lookup("localhost/newer:1").expect("lookup").is_some());
    // Everything over the line: every unused image goes, never the one in use.
    let full = FsUsage {
        capacity,
        available: 0,
    };
    let (report, _) = store
        .collect_garbage(&policy, full, || Ok(ids(&[&used.id])))
        .expect("gc");
    assert_eq!(
        report.removed,
        [(newer.id.clone(), vec!["localhost/newer:1".to_owned()])]
    );
    assert!(store.lookup("localhost/used:1").expect("lookup").is_some());
}

#[test]
fn a_crash_in_the_middle_of_a_layer_delete_leaves_a_store_that_loads() {
    if !is_root() {
        return;
    }
    let (_dir, store) = open();
    let image = commit_layers(&store, "localhost/c:1", &[layer("c", 100)]).expect("commit");
    store.remove("localhost/c:1").expect("rm");
    // What delete_layer leaves if killed between its rename and its removal.
    let half = store.layers_dir().join(format!("{LAYER_TEMP}crashed"));
    fs::rename(&image.layers[0], &half).expect("rename");
    let reopened = ImageStore::open(store.root()).expect("reopen");
    assert!(!half.exists(), "swept at open");
    assert!(reopened.list().expect("list").is_empty());
    reopened
        .sweep_unreferenced(|| Ok(BTreeSet::new()))
        .expect("sweep");
    assert_eq!(reopened.stored_items().expect("items"), []);
}

const LAYER_TEMP: &str = crate::image::store::LAYER_TEMP_PREFIX;
