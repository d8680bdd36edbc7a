//! Unit tests of container instances: the downward API, stop signals, and the bundle a container gets, run
//! through the recording host without root (what is mounted where, which files are written, which
//! namespaces the spec joins).
use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

#[test]
fn field_values_follow_the_downward_api() {
    let pod = PodGroup {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("prod".into()),
            uid: Some("u-1".into()),
            labels: Some([("app".to_string(), "x".to_string())].into()),
            ..Default::default()
        },
        spec: Default::default(),
        status: None,
    };
    let ips = vec!["10.0.0.5".to_string(), "fd00::5".to_string()];
    let v = |p: &str| field_value(&pod, p, Some("192.168.1.2"), &ips);
    assert_eq!(v("metadata.name").unwrap(), "web");
    assert_eq!(v("metadata.namespace").unwrap(), "prod");
    assert_eq!(v("metadata.labels['app']").unwrap(), "x");
    assert_eq!(v("metadata.labels['missing']").unwrap(), "");
    assert_eq!(v("status.podIP").unwrap(), "10.0.0.5");
    assert_eq!(v("status.podIPs").unwrap(), "10.0.0.5,fd00::5");
    assert_eq!(v("status.hostIP").unwrap(), "192.168.1.2");
    assert!(v("spec.containers").is_err());
}

#[test]
fn stop_signal_parsing() {
    let img = |s: Option<&str>| ImageInfo {
        stop_signal: s.map(String::from),
        ..Default::default()
    };
    assert_eq!(stop_signal(&img(None)), Signal::SIGTERM);
    assert_eq!(stop_signal(&img(Some("SIGQUIT"))), Signal::SIGQUIT);
    assert_eq!(stop_signal(&img(Some("int"))), Signal::SIGINT);
    assert_eq!(stop_signal(&img(Some("9"))), Signal::SIGKILL);
    assert_eq!(stop_signal(&img(Some("bogus"))), Signal::SIGTERM);
}
