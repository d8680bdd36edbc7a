//! Writing status back: every report of a pod worker ends up as one server-side apply of the whole status
//! (`cluster::status`), bursts coalesced, failures retried with a backoff per PodGroup so status catches up
//! after an API outage and one PodGroup whose writes are refused does not hold back the others. A finished
//! (terminated and cleaned up) pod also loses its finalizer, which lets the API server delete it.

use std::collections::HashMap;
use std::time::Duration;

use kube::Client;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cluster::status::{
    apply_status, is_gone, is_not_served, is_unreachable, remove_finalizer, StatusUpdate,
};

/// How long a burst of reports is gathered before writing.
const COALESCE: Duration = Duration::from_millis(200);
/// Wait before the first retry of a refused write; it doubles with every further refusal. While the API
/// server cannot be reached at all, writes are retried at this pace, so status catches up within about
/// a second of its return however long it was away (a refused connection costs it nothing).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Writes every update it receives, coalescing by uid and retrying failures. Each PodGroup has its own
/// backoff: a write the API server refuses delays only that PodGroup's next attempt, never the others'.
pub async fn writer(client: Client, mut rx: mpsc::UnboundedReceiver<StatusUpdate>) {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut closed = false;
    loop {
        if closed && pending.is_empty() {
            return;
        }
        let due = pending.values().map(|p| p.due).min();
        // Far enough to never fire; the branch is disabled anyway when nothing is pending.
        let wake = due.unwrap_or_else(|| Instant::now() + MAX_BACKOFF);
        tokio::select! {
            u = rx.recv(), if !closed => match u {
                Some(u) => queue(&mut pending, u, Instant::now()),
                None => {
                    // Shutting down: flush what is waiting for its burst to end; backoffs still apply.
                    closed = true;
                    let now = Instant::now();
                    for p in pending.values_mut().filter(|p| p.backoff.is_zero()) {
                        p.due = now;
                    }
                }
            },
            () = tokio::time::sleep_until(wake), if due.is_some() => write_due(&client, &mut pending).await,
        }
    }
}

/// The latest status of one PodGroup not written yet.
struct Pending {
    update: StatusUpdate,
    /// When to (re)try writing it.
    due: Instant,
    /// The wait after the last refused write (zero if none failed yet).
    backoff: Duration,
}

/// Adds `u` to what is pending: a new PodGroup waits for its burst to end, a known one keeps its due time (the
/// end of its burst, or of its backoff).
fn queue(pending: &mut HashMap<String, Pending>, u: StatusUpdate, now: Instant) {
    match pending.get_mut(&u.uid) {
        Some(p) => {
            let release = u.release || p.update.release;
            p.update = StatusUpdate { release, ..u };
        }
        None => {
            let uid = u.uid.clone();
            pending.insert(
                uid,
                Pending {
                    update: u,
                    due: now + COALESCE,
                    backoff: Duration::ZERO,
                },
            );
        }
    }
}

/// Writes every pending status that is due; a refused one backs off on its own.
async fn write_due(client: &Client, pending: &mut HashMap<String, Pending>) {
    let now = Instant::now();
    let due: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.due <= now)
        .map(|(uid, _)| uid.clone())
        .collect();
    for uid in due {
        let Some(p) = pending.get_mut(&uid) else {
            continue;
        };
        match write_one(client, &p.update).await {
            Ok(()) => {
                pending.remove(&uid);
            }
            Err(e) => {
                let u = &p.update;
                // A server out of reach or not yet serving PodGroups is retried at the first pace, so the
                // status is written within about a second of its return; refusals double the wait.
                p.backoff = if p.backoff.is_zero() || is_unreachable(&e) || is_not_served(&e) {
                    FIRST_BACKOFF
                } else {
                    (p.backoff * 2).min(MAX_BACKOFF)
                };
                p.due = Instant::now() + p.backoff;
                tracing::warn!(pod = %format!("{}/{}", u.namespace, u.name), error = %e, retry_in = ?p.backoff, "failed to write status; will retry");
            }
        }
    }
}

async fn write_one(client: &Client, u: &StatusUpdate) -> Result<(), kube::Error> {
    match apply_status(client, u).await {
        Ok(()) => {}
        Err(e) if is_gone(&e, &u.name) => return Ok(()),
        Err(e) => return Err(e),
    }
    if u.release {
        remove_finalizer(client, &u.namespace, &u.name, &u.uid).await?;
        tracing::info!(pod = %format!("{}/{}", u.namespace, u.name), "released finalizer");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The writer against a mocked API server (tower-test), in real time: the margins (a 200 ms burst
    //! against a 1 s backoff) are wide enough for a loaded machine.

    use std::time::Duration;

    use http::{Request, Response};
    use kube::client::Body;
    use kube::Client;
    use serde_json::{json, Value};
    use tokio::sync::mpsc;
    use tokio::time::{timeout, Instant};

    use super::{writer, StatusUpdate};
    use crate::api::PodGroupStatus;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    /// A writer against a mocked API server: the server's handle, the writer's input and its task.
    fn start_writer() -> (
        Handle,
        mpsc::UnboundedSender<StatusUpdate>,
        tokio::task::JoinHandle<()>,
    ) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(writer(Client::new(service, "default"), rx));
        (handle, tx, task)
    }

    fn update(name: &str, message: &str) -> StatusUpdate {
        let status: PodGroupStatus =
            serde_json::from_value(json!({"phase": "Running", "message": message})).unwrap();
        StatusUpdate {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            status,
            release: false,
        }
    }

    /// The next request: the PodGroup whose status it writes and the message in its body; answered with
    /// `code` (200 returns the PodGroup, anything else is an API error Status).
    async fn answer(handle: &mut Handle, code: u16) -> (String, String) {
        let (request, send) = timeout(Duration::from_secs(10), handle.next_request())
            .await
            .expect("a request within 10 s")
            .expect("a request");
        assert_eq!(request.method().as_str(), "PATCH");
        let path = request.uri().path().to_string();
        let name = path
            .strip_prefix("/apis/peapod.dev/v1alpha1/namespaces/default/podgroups/")
            .and_then(|p| p.strip_suffix("/status"))
            .unwrap_or_else(|| panic!("unexpected request {path}"))
            .to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let message = body["status"]["message"].as_str().unwrap_or_default().to_string();
        let reply = if code == 200 {
            let mut pg = body;
            pg["spec"] = json!({"containers": [{"name": "c", "image": "localhost/img:1"}]});
            pg
        } else {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "refused",
                   "reason": "InternalError", "code": code})
        };
        send.send_response(
            Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        (name, message)
    }

    /// One PodGroup's refused write backs off that PodGroup only: another one's update is written after its
    /// burst, long before the refused one is retried; the retry carries the newest status of the refused
    /// PodGroup, and a burst of updates is still one write.
    #[tokio::test]
    async fn a_refused_write_backs_off_only_its_podgroup() {
        let (mut handle, tx, task) = start_writer();

        tx.send(update("a", "a1")).unwrap();
        assert_eq!(answer(&mut handle, 500).await, ("a".into(), "a1".into()));
        let refused = Instant::now();
        // While `a` backs off: a new status for it, and a burst of two for `b`.
        tx.send(update("a", "a2")).unwrap();
        tx.send(update("b", "b1")).unwrap();
        tx.send(update("b", "b2")).unwrap();
        assert_eq!(answer(&mut handle, 200).await, ("b".into(), "b2".into()));
        let b_written = refused.elapsed();
        assert!(
            b_written < Duration::from_millis(900),
            "b waited {b_written:?} for a's backoff"
        );
        // `a` is retried once its own backoff is over, with its newest status.
        assert_eq!(answer(&mut handle, 500).await, ("a".into(), "a2".into()));
        let retried = refused.elapsed();
        assert!(
            retried >= Duration::from_millis(900),
            "a retried after {retried:?}"
        );
        // The second refusal doubles a's backoff; b is still written promptly meanwhile.
        let refused = Instant::now();
        tx.send(update("b", "b3")).unwrap();
        assert_eq!(answer(&mut handle, 200).await, ("b".into(), "b3".into()));
        assert!(refused.elapsed() < Duration::from_millis(900));
        assert_eq!(answer(&mut handle, 200).await, ("a".into(), "a2".into()));
        assert!(
            refused.elapsed() >= Duration::from_millis(1800),
            "{:?}",
            refused.elapsed()
        );

        // Nothing left: closing the channel ends the writer without another request.
        drop(tx);
        timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert!(timeout(Duration::from_millis(100), handle.next_request())
            .await
            .map_or(true, |r| r.is_none()));
    }

    /// While the API server cannot be reached (no answer at all), the pending status is retried at the first
    /// backoff's pace however long that lasts, so it is written within about a second of the server's
    /// return; once the server answers and refuses (409, 422, 500), the backoff doubles; the write that
    /// finally succeeds carries the newest status. Virtual time: the intervals are exact.
    #[tokio::test(start_paused = true)]
    async fn unreachable_keeps_the_first_pace_and_refusals_double() {
        let (mut handle, tx, task) = start_writer();
        tx.send(update("a", "a1")).unwrap();
        let mut last = None;
        let mut intervals = Vec::new();
        for _ in 0..6 {
            let (_, send) = timeout(Duration::from_secs(60), handle.next_request())
                .await
                .expect("a retry")
                .expect("a request");
            let now = Instant::now();
            intervals.extend(last.map(|l| now - l));
            last = Some(now);
            send.send_error("connection refused");
        }
        assert_eq!(
            intervals,
            [Duration::from_secs(1); 5],
            "unreachable: no growing backoff"
        );
        tx.send(update("a", "a2")).unwrap();
        let mut intervals = Vec::new();
        for code in [409, 422, 500, 200] {
            let (name, message) = answer(&mut handle, code).await;
            assert_eq!((name.as_str(), message.as_str()), ("a", "a2"));
            let now = Instant::now();
            intervals.extend(last.map(|l| now - l));
            last = Some(now);
        }
        let secs: Vec<u64> = intervals.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8], "refusals double the backoff");
        drop(tx);
        timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    }

    /// Replies to the next status write with a 404 carrying `message`.
    async fn not_found(handle: &mut Handle, message: &str) {
        let (_, send) = timeout(Duration::from_secs(10), handle.next_request())
            .await
            .expect("a request within 10 s")
            .expect("a request");
        let reply = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                           "reason": "NotFound", "code": 404});
        send.send_response(
            Response::builder()
                .status(404)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
    }

    /// Right after an API server starts, a custom resource's endpoint answers 404 until its CRD is served:
    /// the write is retried (it used to be dropped as if the PodGroup were gone) every second, as while the
    /// server was unreachable (a doubling backoff let a status wait past 5 s after the server's return); a
    /// 404 naming the PodGroup itself ends it.
    #[tokio::test(start_paused = true)]
    async fn a_404_before_the_crd_is_served_is_retried_and_one_naming_the_podgroup_is_not() {
        let (mut handle, tx, task) = start_writer();
        tx.send(update("a", "a1")).unwrap();
        let mut times = Vec::new();
        for _ in 0..3 {
            not_found(&mut handle, "the server could not find the requested resource").await;
            times.push(Instant::now());
        }
        let (name, message) = answer(&mut handle, 200).await;
        times.push(Instant::now());
        assert_eq!((name.as_str(), message.as_str()), ("a", "a1"), "retried");
        let intervals: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(
            intervals,
            [Duration::from_secs(1); 3],
            "a server not serving PodGroups yet is retried at the first pace, not a doubling one"
        );
        tx.send(update("a", "a2")).unwrap();
        not_found(&mut handle, r#"podgroups.peapod.dev "a" not found"#).await;
        assert!(
            timeout(Duration::from_secs(60), handle.next_request())
                .await
                .is_err(),
            "a PodGroup that is gone is not written again"
        );
        drop(tx);
        timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    }
}
