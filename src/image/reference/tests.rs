//! Reference grammar table tests: valid names split into parts, invalid names name the reason.

use super::*;

const D: &str = "sha256:1ad94f5d392be4066f4b2870c8bc185bc3901430d919862fcf83672f30f392e6";

struct Case {
    input: &'static str,
    domain: Option<&'static str>,
    path: &'static str,
    tag: Option<&'static str>,
    digest: bool,
}

const fn ok(
    input: &'static str,
    domain: Option<&'static str>,
    path: &'static str,
    tag: Option<&'static str>,
) -> Case {
    Case {
        input,
        domain,
        path,
        tag,
        digest: false,
    }
}

#[test]
fn valid_references_parse_into_parts() {
    let cases = [
        ok("busybox", None, "busybox", None),
        ok("busybox:1.36", None, "busybox", Some("1.36")),
        ok("library/busybox:latest", None, "library/busybox", Some("latest")),
        ok("localhost/busybox", Some("localhost"), "busybox", None),
        ok(
            "localhost:5000/busybox:v1",
            Some("localhost:5000"),
            "busybox",
            Some("v1"),
        ),
        ok(
            "127.0.0.1:5000/a/b/c:t",
            Some("127.0.0.1:5000"),
            "a/b/c",
            Some("t"),
        ),
        ok("[::1]:5000/busybox", Some("[::1]:5000"), "busybox", None),
        ok("[fe80::1]/x", Some("[fe80::1]"), "x", None),
        ok(
            "registry.example/team/app",
            Some("registry.example"),
            "team/app",
            None,
        ),
        ok("Registry.Example/app", Some("Registry.Example"), "app", None),
        ok("a-b_c__d---e/f.g_h", None, "a-b_c__d---e/f.g_h", None),
        ok("app:Tag_1.2-rc", None, "app", Some("Tag_1.2-rc")),
        ok("app:_underscore", None, "app", Some("_underscore")),
        ok("localhost", None, "localhost", None),
        ok("localhost:5000", None, "localhost", Some("5000")),
        Case {
            input: "app@sha256:1ad94f5d392be4066f4b2870c8bc185bc3901430d919862fcf83672f30f392e6",
            domain: None,
            path: "app",
            tag: None,
            digest: true,
        },
        Case {
            input: "h.io/app:v1@sha256:1ad94f5d392be4066f4b2870c8bc185bc3901430d919862fcf83672f30f392e6",
            domain: Some("h.io"),
            path: "app",
            tag: Some("v1"),
            digest: true,
        },
    ];
    for case in cases {
        let r = Reference::parse(case.input).unwrap_or_else(|e| panic!("{}: {e}", case.input));
        assert_eq!(r.domain(), case.domain, "{}", case.input);
        assert_eq!(r.path(), case.path, "{}", case.input);
        assert_eq!(r.tag(), case.tag, "{}", case.input);
        assert_eq!(r.digest().is_some(), case.digest, "{}", case.input);
        assert_eq!(r.to_string(), case.input, "display round-trips {}", case.input);
    }
}

#[test]
fn invalid_references_name_the_reason() {
    let long_path = "a".repeat(256);
    let long_tag = format!("app:{}", "t".repeat(129));
    let hex = "a".repeat(64);
    let cases: Vec<(&str, ReferenceReason)> = vec![
        ("", ReferenceReason::Empty),
        ("Busybox", ReferenceReason::Uppercase("Busybox".into())),
        (
            "localhost/BusyBox:1",
            ReferenceReason::Uppercase("BusyBox".into()),
        ),
        ("busybox:", ReferenceReason::InvalidFormat),
        ("busybox:-tag", ReferenceReason::InvalidFormat),
        ("busybox:a/b", ReferenceReason::InvalidFormat),
        (&long_tag, ReferenceReason::InvalidFormat),
        ("a//b", ReferenceReason::InvalidFormat),
        ("/abs", ReferenceReason::InvalidFormat),
        ("-lead", ReferenceReason::InvalidFormat),
        ("trail-", ReferenceReason::InvalidFormat),
        ("a..b", ReferenceReason::InvalidFormat),
        ("a___b", ReferenceReason::InvalidFormat),
        ("a._b", ReferenceReason::InvalidFormat),
        ("host:port/x", ReferenceReason::InvalidFormat),
        ("-host.io/x", ReferenceReason::InvalidFormat),
        ("[zz::1]/x", ReferenceReason::InvalidFormat),
        ("localhost/", ReferenceReason::InvalidFormat),
        ("with space", ReferenceReason::InvalidFormat),
        ("app@sha256:abc", ReferenceReason::InvalidFormat),
        (
            "app@md5:0123456789abcdef0123456789abcdef",
            ReferenceReason::UnsupportedDigest,
        ),
        (
            "app@sha256:0123456789abcdef0123456789abcdef",
            ReferenceReason::DigestLength,
        ),
        (
            "app@sha256:1AD94F5D392BE4066F4B2870C8BC185BC3901430D919862FCF83672F30F392E6",
            ReferenceReason::DigestFormat,
        ),
        (&long_path, ReferenceReason::NameTooLong),
        (&hex, ReferenceReason::HexIdentifier(hex.clone())),
    ];
    for (input, reason) in cases {
        let err = Reference::parse(input).expect_err(input);
        assert_eq!(err.reason, reason, "{input:?}");
        assert_eq!(err.input, input);
    }
}

#[test]
fn error_message_matches_kubelet_wording() {
    let err = Reference::parse("a b").expect_err("space");
    assert_eq!(
        err.to_string(),
        "couldn't parse image name \"a b\": invalid reference format"
    );
}

#[test]
fn short_names_and_local_only_hosts() {
    let table = [
        ("busybox", true, false),
        ("team/app", true, false),
        ("localhost/app", false, true),
        ("localhost:5000/app", false, false),
        ("reg.io/app", false, false),
    ];
    for (input, short, local) in table {
        let r = Reference::parse(input).expect(input);
        assert_eq!(r.is_short(), short, "{input}");
        assert_eq!(r.is_local_only(), local, "{input}");
    }
}

#[test]
fn local_candidates_try_exact_then_localhost() {
    let names = |s: &str| -> Vec<String> {
        let r = Reference::parse(s).expect(s);
        r.local_candidates().iter().map(ToString::to_string).collect()
    };
    assert_eq!(names("busybox"), ["busybox:latest", "localhost/busybox:latest"]);
    assert_eq!(names("team/app:1"), ["team/app:1", "localhost/team/app:1"]);
    assert_eq!(names("localhost/busybox"), ["localhost/busybox:latest"]);
    assert_eq!(names("reg.io/a"), ["reg.io/a:latest"]);
    let pinned = format!("reg.io/a@{D}");
    assert_eq!(names(&pinned), std::slice::from_ref(&pinned));
}

#[test]
fn default_tag_only_when_untagged_and_undigested() {
    let tagged = Reference::parse("a:1").expect("a:1").with_default_tag();
    assert_eq!(tagged.to_string(), "a:1");
    let pinned = Reference::parse(&format!("a@{D}"))
        .expect("pinned")
        .with_default_tag();
    assert_eq!(pinned.tag(), None);
    let bare = Reference::parse("a").expect("a").with_default_tag();
    assert_eq!(bare.to_string(), "a:latest");
}

#[test]
fn repository_and_digest_only_forms() {
    let r = Reference::parse("127.0.0.1:5000/busybox:1").expect("parse");
    assert_eq!(r.repository(), "127.0.0.1:5000/busybox");
    assert_eq!(
        r.with_digest_only(D).to_string(),
        format!("127.0.0.1:5000/busybox@{D}")
    );
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(s in ".{0,300}") {
        let _ = Reference::parse(&s);
    }

    #[test]
    fn parsed_references_round_trip(s in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10})?") {
        let r = Reference::parse(&s).expect("generated names are valid");
        proptest::prop_assert_eq!(r.to_string(), s);
    }
}
