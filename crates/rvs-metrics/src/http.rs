//! The HTTP endpoint: hyper's HTTP/1.1 server on a current-thread tokio runtime in its own
//! thread (`rvs-metrics`), so that nothing a scraper does reaches the management core but one
//! [`Source::scrape`] at a time.
//!
//! Untrusted clients are bounded: a request head larger than [`Limits::max_head`] gets hyper's
//! 431 and a close; malformed requests a 400 and a close; a head not complete within
//! [`Limits::header_timeout`] is closed without a response (hyper's behaviour; the same timer
//! closes a keep-alive connection idle that long); more than [`Limits::max_clients`]
//! connections at once get a 503 and a close; and after [`Limits::lifetime`] a connection is
//! shut down gracefully (a request in flight is answered first; scrapers reconnect).
//!
//! Readings of the appliance never overlap, and one a client gave up on still completes and
//! serves the next scrape: the reading runs on a blocking thread that holds the lock, and a
//! scrape whose request arrived before a reading finished is answered from it. Encodings run
//! [`ENCODERS`] at a time.

use crate::{encode, Format, Scrape, Source};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, Mutex, Semaphore};

/// Encodings running at once (each on a blocking thread); more wait.
pub const ENCODERS: usize = 2;

/// How much an untrusted client may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are answered 503 and closed.
    pub max_clients: usize,
    /// Time to send a complete request head.
    pub header_timeout: Duration,
    /// Bytes of request head (request line and headers); hyper's minimum is 8 KiB.
    pub max_head: usize,
    /// Time a connection may stay open, idle keep-alive included.
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 16,
            header_timeout: Duration::from_secs(5),
            max_head: 8192,
            lifetime: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("metrics listen address {addr}: {err}")]
    Bind {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("metrics endpoint: {0}")]
    Runtime(std::io::Error),
}

/// A running endpoint; dropping it stops it (the listener is closed before drop returns).
pub struct Endpoint {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    /// The address it listens on (the port chosen when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The endpoint's socket, bound (so a bad or busy address fails the start before anything
/// else is set up) but not served yet.
pub struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

/// Binds `listen`.
pub fn bind(listen: SocketAddr) -> Result<Bound, HttpError> {
    let bind = |err| HttpError::Bind { addr: listen, err };
    let listener = std::net::TcpListener::bind(listen).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    Ok(Bound { listener, addr })
}

impl Bound {
    /// Serves `source` on a new thread until the returned endpoint is dropped.
    pub fn serve(self, source: Arc<dyn Source>, limits: Limits) -> Result<Endpoint, HttpError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(2)
            .build()
            .map_err(HttpError::Runtime)?;
        let (stop, stopped) = oneshot::channel();
        let listener = self.listener;
        let thread = std::thread::Builder::new()
            .name("rvs-metrics".into())
            .spawn(move || {
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => serve(l, source, limits, stopped).await,
                        Err(e) => tracing::error!("metrics endpoint: {e}"),
                    }
                })
            })
            .map_err(HttpError::Runtime)?;
        Ok(Endpoint {
            addr: self.addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// When a reading finished, and the reading.
type Reading = (Instant, Arc<Scrape>);

/// The last reading of the appliance, shared by concurrent scrapes.
struct Gatherer {
    source: Arc<dyn Source>,
    last: Arc<Mutex<Option<Reading>>>,
    encoders: Arc<Semaphore>,
}

impl Gatherer {
    /// A reading that finished after `asked` (when the request arrived): the last one if it
    /// did, else a new one. The lock travels with the blocking reading, so a request dropped
    /// while waiting leaves the reading to finish and be reused, never to be started again.
    async fn scrape(&self, asked: Instant) -> Result<Arc<Scrape>, String> {
        let mut last = self.last.clone().lock_owned().await;
        if let Some((done, s)) = last.as_ref() {
            if *done >= asked {
                return Ok(s.clone());
            }
        }
        let source = self.source.clone();
        tokio::task::spawn_blocking(move || {
            let s = Arc::new(source.scrape()?);
            *last = Some((Instant::now(), s.clone()));
            Ok(s)
        })
        .await
        .map_err(|e| format!("scrape failed: {e}"))?
    }

    /// Encodes on a blocking thread, at most [`ENCODERS`] at once.
    async fn encode(&self, s: Arc<Scrape>, format: Format) -> Option<String> {
        let permit = self.encoders.clone().acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let out = encode(&s, format).ok();
            drop(permit);
            out
        })
        .await
        .ok()
        .flatten()
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    source: Arc<dyn Source>,
    limits: Limits,
    mut stopped: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_clients));
    let gatherer = Arc::new(Gatherer {
        source,
        last: Arc::new(Mutex::new(None)),
        encoders: Arc::new(Semaphore::new(ENCODERS)),
    });
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: wait instead of spinning on the error.
                    tracing::warn!("metrics endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let gatherer = gatherer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let gatherer = gatherer.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(req, &gatherer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_head.max(8192))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = tokio::time::sleep(limits.lifetime) => {
                    // Answer what is in flight, then close; bounded like a request.
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(limits.header_timeout * 2, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(e) = r {
                tracing::debug!("metrics endpoint: {peer}: {e}");
            }
            drop(slot);
        });
    }
}

/// Too many clients: a 503 and a close. What the client sent is read and discarded for up to
/// a second, so that closing with unread data (which makes the kernel send a reset) does not
/// destroy the 503 before the client reads it.
async fn refuse(mut stream: tokio::net::TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
                          Connection: close\r\nRetry-After: 1\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(BUSY).await;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn respond(req: Request<Incoming>, gatherer: &Gatherer) -> Response<Full<Bytes>> {
    let asked = Instant::now();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {}
        "/" => return text(StatusCode::OK, "rvs: metrics are at /metrics\n"),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "not found: metrics are at /metrics\n",
            )
        }
    }
    let format = Format::from_accept(req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
    let body = match gatherer.scrape(asked).await {
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, &format!("{e}\n")),
        Ok(s) => gatherer.encode(s, format).await,
    };
    match body {
        Some(b) => {
            let mut r = Response::new(Full::new(Bytes::from(b)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            r
        }
        _ => text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
