//! Request construction, header rules and outcome wording of HTTP probes.

use super::*;

fn req(path: &str, headers: &[(&str, &str)], purpose: &str) -> Request {
    let list = headers.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Request::new("http", "10.1.2.3", 8080, path, list, purpose).unwrap()
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn urls_print_as_go_prints_them() {
    assert_eq!(req("", &[], "probe").display(), "http://10.1.2.3:8080");
    assert_eq!(
        req("/healthz", &[], "probe").display(),
        "http://10.1.2.3:8080/healthz"
    );
    assert_eq!(
        req("healthz?x=1", &[], "probe").url.as_str(),
        "http://10.1.2.3:8080/healthz?x=1"
    );
    let v6 = Request::new("https", "::1", 443, "/", std::iter::empty(), "probe").unwrap();
    assert_eq!(v6.display(), "https://[::1]:443/");
    assert_eq!(v6.plain_http().display(), "http://[::1]:443/");
}

#[test]
fn default_headers_follow_the_kubelet() {
    let r = req("/", &[], "probe");
    assert_eq!(header(&r, "User-Agent"), Some("kube-probe/1.33"));
    assert_eq!(header(&r, "Accept"), Some("*/*"));
    let hook = req("/", &[], "lifecycle");
    assert_eq!(header(&hook, "User-Agent"), Some("kube-lifecycle/1.33"));
    let custom = req(
        "/",
        &[
            ("user-agent", "mine"),
            ("accept", ""),
            ("host", "example.test"),
            ("x-custom-header", "v"),
        ],
        "probe",
    );
    assert_eq!(header(&custom, "User-Agent"), Some("mine"));
    assert_eq!(header(&custom, "Accept"), None, "an empty Accept removes it");
    assert_eq!(header(&custom, "X-Custom-Header"), Some("v"));
    assert_eq!(header(&custom, "Host"), None);
    assert_eq!(custom.host_override.as_deref(), Some("example.test"));
}

#[test]
fn header_names_are_canonicalised() {
    assert_eq!(canonical("x-custom-header"), "X-Custom-Header");
    assert_eq!(canonical("USER-AGENT"), "User-Agent");
    assert_eq!(canonical("bad header"), "bad header");
}

#[test]
fn redirects_keep_credentials_only_on_the_same_host() {
    let r = req("/", &[("Authorization", "x"), ("X-A", "1")], "lifecycle");
    let same = Url::parse("http://10.1.2.3:9090/next").unwrap();
    let other = Url::parse("http://10.9.9.9:8080/next").unwrap();
    let hop = hop_headers(&r, &same, Some("http://10.1.2.3:8080/"));
    assert!(hop.contains(&("Authorization".into(), "x".into())));
    assert!(hop.contains(&("Referer".into(), "http://10.1.2.3:8080/".into())));
    assert!(hop.contains(&("Connection".into(), "close".into())));
    let hop = hop_headers(&r, &other, None);
    assert!(!hop.iter().any(|(k, _)| k == "Authorization"));
    assert!(hop.iter().any(|(k, _)| k == "X-A"));
}

#[test]
fn outcomes_by_status() {
    assert_eq!(outcome(200, b"ok"), Outcome::Success);
    assert_eq!(
        outcome(399, b""),
        Outcome::Warning("Probe terminated redirects, Response body: ".into())
    );
    assert_eq!(
        outcome(302, b"moved"),
        Outcome::Warning("Probe terminated redirects, Response body: moved".into())
    );
    assert_eq!(
        outcome(500, b"boom"),
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(
        outcome(199, b""),
        Outcome::Failure("HTTP probe failed with statuscode: 199".into())
    );
}
