//! Table tests of the lifecycle: every transition, and what each state means for plan and status.

use super::*;
use Lifecycle::*;

fn deadline() -> Failure {
    Failure {
        reason: "DeadlineExceeded".into(),
        message: "Pod was active on the node longer than the specified deadline".into(),
    }
}

fn other() -> Failure {
    Failure {
        reason: "Other".into(),
        message: "later".into(),
    }
}

fn terminating(grace: Option<i64>, failure: Option<Failure>) -> Lifecycle {
    Terminating { grace, failure }
}

fn terminated(grace: Option<i64>, failure: Option<Failure>) -> Lifecycle {
    Terminated { grace, failure }
}

fn term(grace: Option<i64>) -> Transition {
    Transition::Terminate { grace }
}

fn fail(failure: Failure) -> Transition {
    Transition::Fail(failure)
}

struct Row {
    from: Lifecycle,
    on: Transition,
    to: Lifecycle,
}

#[test]
fn transitions() {
    let failing = || Failing { failure: deadline() };
    let stopped = Transition::Stopped;
    #[rustfmt::skip]
    let rows = [
        Row { from: Syncing, on: term(Some(5)), to: terminating(Some(5), None) },
        Row { from: Syncing, on: fail(deadline()), to: failing() },
        Row { from: Syncing, on: stopped.clone(), to: Done { failure: None } },
        Row { from: failing(), on: term(None), to: terminating(None, Some(deadline())) },
        Row { from: failing(), on: fail(other()), to: failing() },
        Row { from: failing(), on: stopped.clone(), to: Done { failure: Some(deadline()) } },
        Row { from: Done { failure: None }, on: fail(deadline()), to: Done { failure: Some(deadline()) } },
        Row { from: Done { failure: None }, on: term(Some(0)), to: terminated(Some(0), None) },
        Row { from: Done { failure: None }, on: stopped.clone(), to: Done { failure: None } },
        Row { from: terminating(Some(5), None), on: term(Some(1)), to: terminating(Some(5), None) },
        Row { from: terminating(None, None), on: fail(deadline()), to: terminating(None, Some(deadline())) },
        Row { from: terminating(Some(3), None), on: stopped.clone(), to: terminated(Some(3), None) },
        Row { from: terminated(None, None), on: fail(deadline()), to: terminated(None, Some(deadline())) },
        Row { from: terminated(None, None), on: term(Some(1)), to: terminated(None, None) },
        Row { from: terminated(None, None), on: stopped, to: terminated(None, None) },
    ];
    for row in rows {
        let label = format!("{:?} on {:?}", row.from, row.on);
        assert_eq!(row.from.on(row.on), row.to, "{label}");
    }
}

struct Meaning {
    state: Lifecycle,
    stopping: bool,
    terminating: bool,
    terminal: bool,
    finished: bool,
}

#[test]
fn what_each_state_means() {
    let failed = || Some(deadline());
    #[rustfmt::skip]
    let rows = [
        Meaning { state: Syncing, stopping: false, terminating: false, terminal: false, finished: false },
        Meaning { state: Failing { failure: deadline() }, stopping: true, terminating: false, terminal: false, finished: false },
        Meaning { state: Done { failure: None }, stopping: false, terminating: false, terminal: true, finished: false },
        Meaning { state: Done { failure: failed() }, stopping: true, terminating: false, terminal: true, finished: false },
        Meaning { state: terminating(None, None), stopping: true, terminating: true, terminal: false, finished: false },
        Meaning { state: terminated(None, None), stopping: true, terminating: true, terminal: true, finished: true },
    ];
    for row in rows {
        let s = &row.state;
        let got = (s.stopping(), s.terminating(), s.terminal(), s.finished());
        let want = (row.stopping, row.terminating, row.terminal, row.finished);
        assert_eq!(got, want, "{s:?}");
    }
}

#[test]
fn failure_and_grace_are_carried() {
    let s = Syncing.on(fail(deadline())).on(term(Some(7)));
    assert_eq!(s.failure(), Some(&deadline()));
    assert_eq!(s.grace(), Some(7));
    let s = s.on(Transition::Stopped);
    assert_eq!((s.failure(), s.grace()), (Some(&deadline()), Some(7)));
    assert_eq!(Done { failure: None }.grace(), None);
}
