//! HTTP_GET and SSL_GET (keepalived/check/check_http.c, check_ssl.c, lib/html.c).
//!
//! Per url, in order, on a fresh connection: send keepalived's GET, read until the server
//! closes, find the header end, take the status code and Content-Length from the header and
//! MD5 the body (at most Content-Length bytes of it), as http_process_response() does. No
//! chunked decoding: keepalived (and genhash) digest the body as sent.

use std::sync::Arc;

use md5::{Digest, Md5};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tcp::{self, ConnectError};
use super::{io_reason, tls, Failure, Phase, ProbeCx, ProbeSpec, Trio, Verdict};
use crate::model::{HttpCheck, HttpProtocol, Url};

/// MAX_BUFFER_LENGTH - 1 (check_http.h): the header must arrive within this many bytes;
/// past it keepalived's read() of 0 bytes reads as end of stream.
const BUF: usize = 4096 - 1;

pub(crate) async fn probe(
    spec: &ProbeSpec,
    h: &HttpCheck,
    cx: &ProbeCx,
    phase: &mut Phase,
) -> Verdict {
    let tls = match (h.tls, &cx.tls) {
        (false, _) => None,
        (true, Some(c)) => Some(c.clone()),
        (true, None) => match tls::default_config() {
            Ok(c) => Some(c),
            Err(e) => return super::down(e.clone(), format!("SSL error: {e}")),
        },
    };
    // http_connect_thread(): no url means up without checking.
    for url in &h.urls {
        *phase = Phase::Connect;
        if let Err(f) = one_url(spec, h, url, tls.as_ref(), phase).await {
            return Verdict::Down(f);
        }
    }
    Verdict::Up
}

/// timeout_epilog()'s line: "<what> server <trio>."
fn epilog(what: &str, at: &Trio) -> String {
    format!("{what} server {at}.")
}

pub(crate) fn timeout_log(h: &HttpCheck, phase: Phase, at: &Trio) -> String {
    let what = match phase {
        // TLS handshake included (http_check_thread()).
        Phase::Connect => "Timeout connecting",
        Phase::Wait => "Timeout WEB read",
        Phase::Read if h.tls => "Timeout SSL read",
        Phase::Read => "Timeout HTTP read",
    };
    epilog(what, at)
}

async fn one_url(
    spec: &ProbeSpec,
    h: &HttpCheck,
    url: &Url,
    tls: Option<&Arc<rustls::ClientConfig>>,
    phase: &mut Phase,
) -> Result<(), Failure> {
    let at = Trio::of(spec);
    let stream = tcp::connect(spec).await.map_err(|e| match e {
        ConnectError::Setup(f) => f,
        ConnectError::Io(e) => {
            let what = if tcp::is_connect_fail(&e) {
                "Connection failed"
            } else {
                "Error connecting"
            };
            Failure::new(io_reason(&e), epilog(what, &at))
        }
    })?;
    let req = request(spec, h, url);
    match tls {
        None => exchange(stream, &req, url, false, &at, phase).await,
        Some(cfg) => {
            let name = ServerName::IpAddress(spec.connect_ip.into());
            let stream = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(name, stream)
                .await
                .map_err(|e| {
                    Failure::new(
                        format!("TLS handshake: {}", e.to_string().to_lowercase()),
                        epilog("SSL handshake/communication error connecting to", &at),
                    )
                })?;
            exchange(stream, &req, url, true, &at, phase).await
        }
    }
}

/// http_request(): request_template with the url's virtualhost, else the spec's; with no
/// virtualhost the Host is the connect address and port.
pub(crate) fn request(spec: &ProbeSpec, h: &HttpCheck, url: &Url) -> String {
    let (minor, close) = match h.http_protocol {
        None | Some(HttpProtocol::V1_0) => (0, ""),
        Some(HttpProtocol::V1_0C) => (0, "Connection: close\r\n"),
        Some(HttpProtocol::V1_1) => (1, "Connection: close\r\n"),
    };
    let path = &url.path;
    let head = format!("GET {path} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: ");
    // "If vhost was defined we don't need to override it's port".
    match url.virtualhost.as_deref().or(spec.virtualhost.as_deref()) {
        Some(vhost) => format!("{head}{vhost}\r\n\r\n"),
        None => format!("{head}{}:{}\r\n\r\n", spec.connect_ip, spec.connect_port),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    req: &str,
    url: &Url,
    tls: bool,
    at: &Trio,
    phase: &mut Phase,
) -> Result<(), Failure> {
    *phase = Phase::Wait;
    let sent = async {
        s.write_all(req.as_bytes()).await?;
        s.flush().await
    };
    sent.await
        .map_err(|e| Failure::new(io_reason(&e), epilog("Cannot send get request to", at)))?;
    let mut r = Reply::new(url.digest.is_some());
    loop {
        let n = match s.read(r.spare()).await {
            Ok(n) => n,
            // ssl_read_thread(): an SSL error or a close without close_notify ends the
            // stream like a close does, and the reply read so far is judged.
            Err(_) if tls => 0,
            Err(e) => return Err(Failure::new(io_reason(&e), epilog("Read error with", at))),
        };
        *phase = Phase::Read;
        if n == 0 || !r.push(n) {
            break;
        }
    }
    r.judge(url, at)
}

/// A reply being read: the header part kept until its end is seen, the body only hashed.
pub(crate) struct Reply {
    buf: Vec<u8>,
    len: usize,
    head: Option<Head>,
    md5: Option<Md5>,
    /// Body bytes received (rx_bytes).
    rx: usize,
}

struct Head {
    status: u16,
    content_len: Option<usize>,
}

impl Reply {
    pub(crate) fn new(digest: bool) -> Self {
        Reply {
            buf: vec![0; BUF],
            len: 0,
            head: None,
            md5: digest.then(Md5::new),
            rx: 0,
        }
    }

    pub(crate) fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Takes `n` bytes just read into `spare()`; false when no more can be taken (the
    /// header did not fit: keepalived then reads 0 bytes, which ends the stream).
    pub(crate) fn push(&mut self, n: usize) -> bool {
        if self.head.is_some() {
            self.hash(0, n);
            return true;
        }
        self.len += n;
        let Some(end) = find_header_end(&self.buf[..self.len]) else {
            return self.len < self.buf.len();
        };
        self.head = Some(Head {
            status: status_code(&self.buf[..self.len]),
            content_len: content_length(&self.buf[..end]),
        });
        self.hash(end + 4, self.len);
        self.len = 0;
        true
    }

    /// MD5 of buf[from..to], never past Content-Length bytes of body.
    fn hash(&mut self, from: usize, to: usize) {
        let n = to - from;
        if let (Some(md5), Some(head)) = (self.md5.as_mut(), self.head.as_ref()) {
            let take = match head.content_len {
                Some(cl) => cl.saturating_sub(self.rx).min(n),
                None => n,
            };
            md5.update(&self.buf[from..from + take]);
        }
        self.rx += n;
    }

    /// http_handle_response(): header seen, status accepted, then the digest.
    pub(crate) fn judge(self, url: &Url, at: &Trio) -> Result<(), Failure> {
        let Some(head) = self.head else {
            // keepalived's words, double space included.
            return Err(Failure::new(
                "bad HTTP response",
                epilog("Read, no data received from ", at),
            ));
        };
        let code = head.status;
        let ok = (100..=599).contains(&code)
            && url
                .status_codes
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&code));
        if !ok {
            let reason = if code == 0 {
                "bad HTTP response".to_string()
            } else {
                format!("HTTP status {code}")
            };
            return Err(Failure::new(
                reason,
                epilog("HTTP status code error to", at),
            ));
        }
        if let (Some(want), Some(md5)) = (url.digest, self.md5) {
            if md5.finalize()[..] != want[..] {
                return Err(Failure::new(
                    "digest mismatch",
                    epilog("MD5 digest error to", at),
                ));
            }
        }
        Ok(())
    }
}

/// extract_html(): the offset of "\r\n\r\n".
fn find_header_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

/// extract_status_code(): the three digits after the first space of the status line, which
/// must be followed by a space (so "HTTP/1.1 200\r\n", without a reason phrase, is 0).
pub(crate) fn status_code(b: &[u8]) -> u16 {
    let Some(sp) = b.iter().position(|&c| c == b' ' || c == b'\r') else {
        return 0;
    };
    if b[sp] != b' ' {
        return 0;
    }
    match b.get(sp + 1..sp + 5) {
        Some([d0, d1, d2, b' ']) if [d0, d1, d2].iter().all(|d| d.is_ascii_digit()) => {
            u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0')
        }
        _ => 0,
    }
}

/// extract_content_length(): "Content-Length:" (case as written), digits, then end of line.
pub(crate) fn content_length(head: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"Content-Length:";
    let at = head.windows(TAG.len()).position(|w| w == TAG)? + TAG.len();
    let rest = &head[at..];
    let start = rest.iter().position(|&c| c != b' ' && c != b'\t')?;
    let rest = &rest[start..];
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || !matches!(rest.get(digits), None | Some(b'\r' | b'\n')) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}
