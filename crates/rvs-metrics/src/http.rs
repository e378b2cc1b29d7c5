//! The HTTP endpoint: hyper's HTTP/1.1 server on a current-thread tokio runtime in its own
//! thread (`rvs-metrics`), so that nothing a scraper does reaches the management core but one
//! [`Source::scrape`] at a time.
//!
//! Untrusted clients are bounded: a request head larger than [`Limits::max_head`] gets hyper's
//! 431 and a close; malformed requests a 400 and a close; a head not complete within
//! [`Limits::header_timeout`] is closed without a response (hyper's behaviour); more than [`Limits::max_clients`] connections
//! at once get a 503 and a close without being read; and every connection ends after
//! [`Limits::lifetime`] (scrapers reconnect). Concurrent scrapes share one reading of the
//! appliance: a scrape that arrives while one is being gathered waits for that one.

use crate::{encode, Format, Scrape, Source};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, Mutex, Semaphore};

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

/// The last reading of the appliance, shared by concurrent scrapes.
struct Gatherer {
    source: Arc<dyn Source>,
    last: Mutex<Option<(Instant, Arc<Scrape>)>>,
}

impl Gatherer {
    /// A reading taken after `asked`: the one in progress or last finished if it started
    /// after `asked`, else a new one.
    async fn scrape(&self, asked: Instant) -> Result<Arc<Scrape>, String> {
        let mut last = self.last.lock().await;
        if let Some((at, s)) = last.as_ref() {
            if *at >= asked {
                return Ok(s.clone());
            }
        }
        let started = Instant::now();
        let source = self.source.clone();
        let s = tokio::task::spawn_blocking(move || source.scrape())
            .await
            .map_err(|e| format!("scrape failed: {e}"))??;
        let s = Arc::new(s);
        *last = Some((started, s.clone()));
        Ok(s)
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
        last: Mutex::new(None),
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
            if let Err(e) = tokio::time::timeout(limits.lifetime, conn)
                .await
                .unwrap_or(Ok(()))
            {
                tracing::debug!("metrics endpoint: {peer}: {e}");
            }
            drop(slot);
        });
    }
}

/// Too many clients: a 503 written without reading the request, then a close.
async fn refuse(mut stream: tokio::net::TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
                          Connection: close\r\nRetry-After: 1\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(BUSY).await;
        let _ = stream.shutdown().await;
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
        Ok(s) => tokio::task::spawn_blocking(move || encode(&s, format)).await,
    };
    match body {
        Ok(Ok(b)) => {
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
