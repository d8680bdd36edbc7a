//! TLS for HTTPS probes and hooks: like the kubelet's `InsecureSkipVerify`, the server certificate is not
//! checked (the handshake signatures still are), no ALPN (HTTP/1.1 only), SNI only for DNS names.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Runs the TLS handshake over `stream` for `host`; the error is worded as Go's crypto/tls and net/http.
pub(super) async fn connect(stream: TcpStream, host: &str) -> Result<TlsStream<TcpStream>, String> {
    let config = config().map_err(|e| format!("tls: {e}"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let name = match literal.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(literal.to_string()).map_err(|e| format!("tls: {e}"))?,
    };
    TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| handshake_error(&e))
}

/// Go's words for a failed handshake; a plain-HTTP answer gets net/http's own message.
pub(super) fn handshake_error(e: &std::io::Error) -> String {
    let plain_http = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            )
        });
    if plain_http {
        "http: server gave HTTP response to HTTPS client".to_string()
    } else {
        format!("tls: {e}")
    }
}

fn config() -> Result<Arc<ClientConfig>, Error> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// Accepts any server certificate, as `InsecureSkipVerify: true` does.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
