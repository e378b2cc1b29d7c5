//! SSL_GET against a rustls server with a self-signed certificate (rcgen), and the client
//! context built from an `SSL { }` block.

use std::sync::Arc;

use md5::{Digest, Md5};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::test_util::*;
use super::{probe, tls_config, ProbeCx, ProbeSpec, Verdict};
use crate::model::{CheckKind, HttpCheck, SslContext, Url};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the server saw of one connection.
#[derive(Debug)]
struct Seen {
    request: Vec<u8>,
    sni: Option<String>,
    client_cert: bool,
}

/// A TLS server with a fresh self-signed certificate; one reply per connection. With
/// `client_ca`, client certificates signed by it are required. `close_notify`: end each
/// reply with a TLS close_notify (else the TCP connection is just closed).
async fn tls_server(
    replies: Vec<Vec<u8>>,
    client_ca: Option<CertificateDer<'static>>,
    close_notify: bool,
) -> (u16, tokio::task::JoinHandle<Vec<Seen>>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca).unwrap();
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(v)
        }
    };
    let config = builder
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let mut seen = Vec::new();
        for reply in replies {
            let (tcp, _) = l.accept().await.unwrap();
            let Ok(mut s) = acceptor.accept(tcp).await else {
                continue;
            };
            let (_, conn) = s.get_ref();
            let sni = conn.server_name().map(str::to_string);
            let client_cert = conn.peer_certificates().is_some();
            let request = read_request(&mut s).await;
            if close_notify {
                write_and_close(&mut s, &reply).await;
            } else {
                let _ = tokio::io::AsyncWriteExt::write_all(&mut s, &reply).await;
                let _ = tokio::io::AsyncWriteExt::flush(&mut s).await;
                drop(s); // TCP FIN, no close_notify
            }
            seen.push(Seen {
                request,
                sni,
                client_cert,
            });
        }
        seen
    });
    (port, h)
}

fn ssl_get(path: &str, digest: Option<[u8; 16]>, port: u16) -> ProbeSpec {
    let url = Url {
        path: path.into(),
        digest,
        status_codes: vec![(200, 299)],
        virtualhost: None,
    };
    let kind = CheckKind::Http(HttpCheck {
        tls: true,
        urls: vec![url],
        virtualhost: None,
        http_protocol: None,
    });
    spec(kind, port, ms(3000))
}

fn cx(ssl: Option<&SslContext>) -> ProbeCx {
    ProbeCx {
        tls: Some(tls_config(ssl).unwrap()),
        syn: None,
    }
}

const BODY: &[u8] = b"<html>secure</html>";

fn ok_reply() -> Vec<u8> {
    [b"HTTP/1.0 200 OK\r\n\r\n".as_slice(), BODY].concat()
}

#[tokio::test]
async fn ssl_get_self_signed_is_up_and_unverified() {
    let (port, srv) = tls_server(vec![ok_reply()], None, true).await;
    let s = ssl_get("/secure", Some(Md5::digest(BODY).into()), port);
    assert_eq!(probe(&s, &cx(None)).await, Verdict::Up);
    let seen = srv.await.unwrap();
    assert_eq!(seen[0].request, plain_get("/secure", port));
    // keepalived sends SNI only with enable_sni.
    assert_eq!(seen[0].sni, None);
    assert!(!seen[0].client_cert);
}

#[tokio::test]
async fn ssl_get_without_configured_context_uses_the_default() {
    let (port, _srv) = tls_server(vec![ok_reply()], None, true).await;
    let s = ssl_get("/", None, port);
    assert_eq!(probe(&s, &ProbeCx::default()).await, Verdict::Up);
}

#[tokio::test]
async fn ssl_close_without_close_notify_still_judges_the_reply() {
    let (port, _srv) = tls_server(
        vec![ok_reply(), b"HTTP/1.0 503 No\r\n\r\n".to_vec()],
        None,
        false,
    )
    .await;
    let s = ssl_get("/", Some(Md5::digest(BODY).into()), port);
    assert_eq!(probe(&s, &cx(None)).await, Verdict::Up);
    let s = ssl_get("/", None, port);
    let f = failure(probe(&s, &cx(None)).await);
    assert_eq!(f.reason, "HTTP status 503");
}

#[tokio::test]
async fn ssl_get_against_plain_http_fails_the_handshake() {
    // A plain server answering at once, whatever comes (a ClientHello has no blank line).
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut c, _) = l.accept().await.unwrap();
        write_and_close(&mut c, b"HTTP/1.0 200 OK\r\n\r\n").await;
    });
    let s = ssl_get("/", None, port);
    let f = failure(probe(&s, &cx(None)).await);
    assert!(f.reason.starts_with("TLS handshake: "), "{}", f.reason);
    assert_eq!(
        f.log,
        format!("SSL handshake/communication error connecting to server [127.0.0.1]:tcp:{port}.")
    );
}

#[tokio::test]
async fn ssl_silent_server_times_out_connecting() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (c, _) = l.accept().await.unwrap();
        tokio::time::sleep(ms(5000)).await;
        drop(c);
    });
    let mut s = ssl_get("/", None, port);
    s.timeout = ms(300);
    let f = failure(probe(&s, &cx(None)).await);
    assert_eq!(f.reason, "timeout after 0.3 s");
    assert_eq!(
        f.log,
        format!("Timeout connecting server [127.0.0.1]:tcp:{port}.")
    );
}

fn write(d: &std::path::Path, name: &str, text: &str) -> Option<String> {
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    Some(p.display().to_string())
}

#[tokio::test]
async fn ssl_block_client_certificate_is_presented() {
    // A CA, and a client certificate it signs.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["checker".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    let d = scratch("clientcert");
    let ssl = SslContext {
        password: None,
        ca: write(&d, "ca.pem", &ca.pem()),
        certificate: write(&d, "cert.pem", &client.pem()),
        key: write(&d, "key.pem", &client_key.serialize_pem()),
    };
    let (port, srv) = tls_server(vec![ok_reply(), ok_reply()], Some(ca.der().clone()), true).await;
    let s = ssl_get("/", None, port);
    assert_eq!(probe(&s, &cx(Some(&ssl))).await, Verdict::Up);
    // Without the certificate the server refuses the client.
    assert!(matches!(probe(&s, &cx(None)).await, Verdict::Down(_)));
    let seen = srv.await.unwrap();
    assert!(seen[0].client_cert);
    assert_eq!(seen.len(), 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ssl_block_errors_name_the_file() {
    let d = scratch("sslerr");
    let missing = d.join("missing.pem").display().to_string();
    let e = tls_config(Some(&SslContext {
        ca: Some(missing.clone()),
        ..SslContext::default()
    }))
    .err()
    .unwrap();
    assert!(e.starts_with(&format!("ca {missing}: ")), "{e}");

    let ck = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
    let cert = write(&d, "c.pem", &ck.cert.pem());
    let e = tls_config(Some(&SslContext {
        certificate: cert.clone(),
        ..SslContext::default()
    }))
    .err()
    .unwrap();
    assert_eq!(e, "SSL: certificate without key");

    let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let ssl = SslContext {
        password: Some("secret".into()),
        certificate: cert.clone(),
        key: write(&d, "k.pem", enc),
        ca: None,
    };
    let e = tls_config(Some(&ssl)).err().unwrap();
    assert!(
        e.contains("encrypted keys (password) are not supported"),
        "{e}"
    );

    let ok = SslContext {
        certificate: cert,
        key: write(&d, "key.pem", &ck.key_pair.serialize_pem()),
        ca: write(&d, "ca.pem", &ck.cert.pem()),
        password: None,
    };
    assert!(tls_config(Some(&ok)).is_ok());
    let _ = std::fs::remove_dir_all(&d);
}
