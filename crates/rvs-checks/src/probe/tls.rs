//! The SSL_GET client context from the `SSL { }` block (build_ssl_ctx() in
//! keepalived/check/check_ssl.c).
//!
//! keepalived never calls SSL_CTX_set_verify(), so OpenSSL's default SSL_VERIFY_NONE holds:
//! the server certificate is never verified, not even when `ca` is given (the CA file is
//! only loaded, and a file that does not load stops keepalived). rvs does the same: `ca`
//! must parse, and is otherwise unused. The handshake signatures are still checked, as
//! OpenSSL does: the server must hold the key of the certificate it sends. No SNI is sent
//! (keepalived sends it only with `enable_sni`, which rvs does not parse).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::model::SslContext;

/// Builds the client configuration; `None` (no `SSL` block) is keepalived's auto-generated
/// context: no client certificate. Errors name the file and what is wrong with it.
pub fn tls_config(ssl: Option<&SslContext>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)));
    let ssl = ssl.cloned().unwrap_or_default();
    if let Some(ca) = &ssl.ca {
        let n = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("ca {ca}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ca {ca}: {e}"))?
            .len();
        if n == 0 {
            return Err(format!("ca {ca}: no certificate found"));
        }
    }
    let mut config = match (&ssl.certificate, &ssl.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("certificate {cert}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("certificate {cert}: {e}"))?;
            if chain.is_empty() {
                return Err(format!("certificate {cert}: no certificate found"));
            }
            let key_der = load_key(key, ssl.password.is_some())?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("certificate {cert} / key {key}: {e}"))?
        }
        (Some(_), None) => return Err("SSL: certificate without key".into()),
        (None, Some(_)) => return Err("SSL: key without certificate".into()),
    };
    config.enable_sni = false;
    Ok(Arc::new(config))
}

fn load_key(key: &str, password: bool) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read(key).map_err(|e| format!("key {key}: {e}"))?;
    // rustls reads unencrypted PEM keys only; keepalived's `password` decrypts with OpenSSL.
    if text.windows(9).any(|w| w == b"ENCRYPTED") {
        let why = if password {
            "encrypted keys (password) are not supported: decrypt it"
        } else {
            "the key is encrypted"
        };
        return Err(format!("key {key}: {why}"));
    }
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| format!("key {key}: {e}"))
}

/// The configuration SSL_GET uses when the engine gives none, built once per process.
pub(crate) fn default_config() -> Result<Arc<rustls::ClientConfig>, &'static String> {
    static DEFAULT: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    DEFAULT.get_or_init(|| tls_config(None)).as_ref().cloned()
}

/// SSL_VERIFY_NONE: any certificate chain, but real handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
