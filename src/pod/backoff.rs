//! The kubelet's crash-loop backoff (client-go `flowcontrol.Backoff` as the kubelet configures it): 10 s,
//! doubling, capped at 300 s, forgotten once a container has run for twice the cap (10 minutes) since the
//! last restart decision. Keyed by container name and spec hash, so a changed spec starts fresh. Time is a
//! parameter; nothing here reads the clock.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// First backoff period.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Longest backoff period (`MaxContainerBackOff`).
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    backoff: Duration,
    last_update: Timestamp,
}

/// Per-container backoff state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

/// The key of a container's backoff entry.
pub fn key(name: &str, spec_hash: &str) -> String {
    format!("{name}_{spec_hash}")
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    let d = to.as_nanosecond() - from.as_nanosecond();
    Duration::from_nanos(u64::try_from(d).unwrap_or(0))
}

fn has_expired(event: Timestamp, last_update: Timestamp) -> bool {
    event.as_nanosecond() - last_update.as_nanosecond() > (MAX * 2).as_nanos() as i128
}

impl Backoff {
    /// Whether a restart must still wait: less than the current period has passed since `finished_at`.
    pub fn in_backoff_since(&self, key: &str, finished_at: Timestamp, now: Timestamp) -> bool {
        match self.entries.get(key) {
            None => false,
            Some(e) if has_expired(finished_at, e.last_update) => false,
            Some(e) => elapsed(finished_at, now) < e.backoff,
        }
    }

    /// When the restart may happen (for the worker's timer).
    pub fn ready_at(&self, key: &str, finished_at: Timestamp) -> Option<Timestamp> {
        let e = self.entries.get(key)?;
        finished_at
            .checked_add(k8s_openapi::jiff::SignedDuration::try_from(e.backoff).ok()?)
            .ok()
    }

    /// Records a restart decision: starts at [`INITIAL`], or doubles up to [`MAX`].
    pub fn next(&mut self, key: &str, finished_at: Timestamp, now: Timestamp) {
        let backoff = match self.entries.get(key) {
            Some(e) if !has_expired(finished_at, e.last_update) => (e.backoff * 2).min(MAX),
            _ => INITIAL,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }

    /// The current period for `key`.
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or_default()
    }

    /// Forgets entries whose container is gone.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|k, _| keep(k));
    }
}

/// The image manager's pull backoff: the same rule keyed by image, counted from each failed pull.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullBackoff {
    backoff: Backoff,
    /// When each image's last pull failed.
    failures: HashMap<String, Timestamp>,
}

fn pull_key(image: &str) -> String {
    format!("pull_{image}")
}

impl PullBackoff {
    /// Whether a pull of `image` must still wait at `now`.
    pub fn in_backoff(&self, image: &str, now: Timestamp) -> bool {
        let key = pull_key(image);
        self.failures
            .get(image)
            .is_some_and(|failed| self.backoff.in_backoff_since(&key, *failed, now))
    }

    /// A pull of `image` failed at `now`: its period starts or doubles.
    pub fn failed(&mut self, image: &str, now: Timestamp) {
        self.backoff.next(&pull_key(image), now, now);
        self.failures.insert(image.to_string(), now);
    }

    /// A pull of `image` succeeded: it no longer waits.
    pub fn succeeded(&mut self, image: &str) {
        self.failures.remove(image);
    }

    /// When each image that failed may be pulled again (for the worker's timer).
    pub fn ready_at(&self) -> impl Iterator<Item = Timestamp> + '_ {
        self.failures
            .iter()
            .filter_map(|(image, failed)| self.backoff.ready_at(&pull_key(image), *failed))
    }
}

/// Formats a duration the way Go prints a `time.Duration` in the kubelet's messages (`10s`, `5m0s`).
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{}m{}s", secs / 3600, (secs % 3600) / 60, secs % 60)
    } else if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn doubles_to_the_cap_and_gates_on_finish_time() {
        let mut b = Backoff::default();
        let k = key("c", "h");
        // First exit: no entry, restart at once.
        assert!(!b.in_backoff_since(&k, at(0), at(0)));
        b.next(&k, at(0), at(0));
        assert_eq!(b.get(&k), INITIAL);
        // Second exit at t=1: must wait 10 s from its finish.
        assert!(b.in_backoff_since(&k, at(1), at(5)));
        assert!(!b.in_backoff_since(&k, at(1), at(11)));
        let mut periods = Vec::new();
        for t in 11..19 {
            b.next(&k, at(t), at(t));
            periods.push(b.get(&k).as_secs());
        }
        assert_eq!(periods, vec![20, 40, 80, 160, 300, 300, 300, 300]);
        assert_eq!(b.ready_at(&k, at(100)), Some(at(400)));
    }

    #[test]
    fn resets_after_ten_minutes_of_running() {
        let mut b = Backoff::default();
        let k = key("c", "h");
        b.next(&k, at(0), at(0));
        b.next(&k, at(20), at(20));
        assert_eq!(b.get(&k).as_secs(), 20);
        // Finished more than 600 s after the last decision: the entry has expired.
        assert!(!b.in_backoff_since(&k, at(700), at(701)));
        b.next(&k, at(700), at(701));
        assert_eq!(b.get(&k), INITIAL);
    }

    #[test]
    fn pulls_back_off_by_image_from_each_failure() {
        let mut b = PullBackoff::default();
        assert!(!b.in_backoff("img", at(0)));
        b.failed("img", at(0));
        assert!(b.in_backoff("img", at(9)) && !b.in_backoff("img", at(10)));
        assert!(!b.in_backoff("other", at(1)));
        b.failed("img", at(10));
        assert_eq!(b.ready_at().collect::<Vec<_>>(), vec![at(30)]);
        b.succeeded("img");
        assert!(!b.in_backoff("img", at(11)));
        assert_eq!(b.ready_at().count(), 0);
    }

    #[test]
    fn go_duration_format() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(160)), "2m40s");
    }
}
