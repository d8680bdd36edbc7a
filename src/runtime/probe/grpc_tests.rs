//! Protobuf and gRPC framing of the health check, and the kubelet's wording.

use super::*;

#[test]
fn request_encoding() {
    assert_eq!(encode_request(""), Vec::<u8>::new());
    assert_eq!(encode_request("db"), vec![0x0a, 2, b'd', b'b']);
    let long = "s".repeat(200);
    let enc = encode_request(&long);
    assert_eq!(&enc[..3], &[0x0a, 0xc8, 0x01]);
    assert_eq!(enc.len(), 203);
}

#[test]
fn response_decoding_skips_unknown_fields() {
    assert_eq!(decode_response(&[]), Some(0));
    assert_eq!(decode_response(&[0x08, 1]), Some(1));
    assert_eq!(decode_response(&[0x12, 2, b'h', b'i', 0x08, 2]), Some(2));
    assert_eq!(decode_response(&[0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 3]), Some(3));
    assert_eq!(decode_response(&[0x08]), None);
    assert_eq!(decode_response(&[0x12, 9]), None);
}

#[test]
fn framing_round_trips() {
    let framed = frame(&[0x08, 1]);
    assert_eq!(framed, vec![0, 0, 0, 0, 2, 0x08, 1]);
    assert_eq!(unframe(&framed), Some(&[0x08, 1][..]));
    assert_eq!(unframe(&framed[..6]), None);
    assert_eq!(
        unframe(&[1, 0, 0, 0, 0]),
        None,
        "compressed messages are not accepted"
    );
}

#[test]
fn wording_matches_the_kubelet() {
    let t = Duration::from_secs(1);
    assert_eq!(status_name(2), "NOT_SERVING");
    assert_eq!(status_name(7), "7");
    let unimplemented = Status {
        code: 12,
        message: "unknown service grpc.health.v1.Health".into(),
    };
    assert_eq!(
        unimplemented.message(t),
        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"
    );
    assert_eq!(
        Status::deadline().message(t),
        "timeout: health rpc did not complete within 1s"
    );
    assert_eq!(
        rpc_error("NotFound", "unknown service").message(t),
        "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
    );
    assert_eq!(percent_decode("a%20b%zz"), "a b%zz");
}
