//! The Unix-socket server of the control API. It runs on the management core's side (its own
//! threads, never a worker), one thread per client so a slow or stuck client cannot hold up
//! others.

use super::proto::{Envelope, Response, MAX_REQUEST, VERSION};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Answers decoded requests.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: super::proto::Request) -> Response;
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("control socket {0} is in use by a running rvs")]
    InUse(String),
    #[error("control socket {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("control socket group {0:?} does not exist")]
    NoGroup(String),
}

/// A bound control socket (not yet serving). Dropped without serving (start-up failed later),
/// it removes the socket file so no stale socket is left behind.
pub struct Bound {
    listener: Option<UnixListener>,
    path: PathBuf,
}

impl Drop for Bound {
    fn drop(&mut self) {
        if self.listener.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Checks the socket path is free and binds it: directory 0750, socket 0660, both owned by
/// root and `group`. A stale socket (nobody answering) is replaced; a live one is an error.
pub fn bind(path: &Path, group: &str) -> Result<Bound, ServerError> {
    let io = |err| ServerError::Io {
        path: path.display().to_string(),
        err,
    };
    let gid = nix::unistd::Group::from_name(group)
        .ok()
        .flatten()
        .ok_or_else(|| ServerError::NoGroup(group.to_string()))?
        .gid;
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).map_err(io)?;
        nix::unistd::chown(dir, None, Some(gid)).map_err(|e| io(e.into()))?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    nix::unistd::chown(path, None, Some(gid)).map_err(|e| io(e.into()))?;
    Ok(Bound {
        listener: Some(listener),
        path: path.to_path_buf(),
    })
}

/// A serving control socket; dropping it stops accepting, disconnects every client and joins
/// their threads (no request is being handled once the drop returns), and removes the socket
/// file.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bound {
    pub fn serve<H: Handler>(mut self, handler: Arc<H>) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = self.listener.take().and_then(|listener| {
            let _ = listener.set_nonblocking(true);
            std::thread::Builder::new()
                .name("rvs-control".into())
                .spawn(move || accept_loop(listener, handler, stop2))
                .ok()
        });
        Server {
            path: self.path.clone(),
            stop,
            thread,
        }
    }
}

/// A client's thread and a handle on its socket to cut it off with at shutdown.
struct Client {
    thread: std::thread::JoinHandle<()>,
    socket: UnixStream,
}

fn accept_loop<H: Handler>(listener: UnixListener, handler: Arc<H>, stop: Arc<AtomicBool>) {
    let mut clients: Vec<Client> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let Ok(socket) = stream.try_clone() else {
                    continue; // dropping `stream` closes it: the client sees EOF
                };
                let h = handler.clone();
                let spawned = std::thread::Builder::new()
                    .name("rvs-client".into())
                    .spawn(move || serve_client(stream, &*h));
                if let Ok(thread) = spawned {
                    clients.push(Client { thread, socket });
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
        let (done, live): (Vec<Client>, Vec<Client>) =
            clients.into_iter().partition(|c| c.thread.is_finished());
        for c in done {
            let _ = c.thread.join();
        }
        clients = live;
    }
    // Stopping: the handler reaches into DPDK (port statistics), so every client thread must
    // be finished before the caller goes on to stop ports and clean up the EAL. Shutting the
    // sockets down wakes readers blocked on idle clients; a request being handled completes.
    for c in &clients {
        let _ = c.socket.shutdown(std::net::Shutdown::Both);
    }
    for c in clients {
        let _ = c.thread.join();
    }
}

/// Serves one client: requests line by line until it closes, sends garbage, or stalls.
pub fn serve_client<H: Handler + ?Sized>(stream: UnixStream, handler: &H) {
    let _ = stream.set_nonblocking(false);
    // A client that starts a message and never finishes it is cut off, not waited for forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            Err(e) => {
                let msg = if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    "request incomplete: timed out waiting for the end of the line".to_string()
                } else {
                    format!("read error: {e}")
                };
                reply(&mut writer, &Response::err(msg, 255));
                return;
            }
        };
        if n == 0 {
            return;
        }
        if line.len() > MAX_REQUEST {
            reply(
                &mut writer,
                &Response::err(format!("request larger than {MAX_REQUEST} bytes"), 255),
            );
            return;
        }
        if line.last() != Some(&b'\n') {
            reply(
                &mut writer,
                &Response::err("request incomplete: connection closed mid-line", 255),
            );
            return;
        }
        let resp = match serde_json::from_slice::<Envelope>(&line) {
            Ok(env) if env.v != VERSION => Response::err(
                format!(
                    "unsupported protocol version {} (this rvs speaks {VERSION})",
                    env.v
                ),
                255,
            ),
            Ok(env) => handler.handle(env.req),
            Err(e) => {
                reply(
                    &mut writer,
                    &Response::err(format!("malformed request: {e}"), 255),
                );
                return;
            }
        };
        if !reply(&mut writer, &resp) {
            return;
        }
    }
}

fn reply(w: &mut UnixStream, r: &Response) -> bool {
    let mut s = serde_json::to_vec(r).unwrap_or_else(|_| b"{\"v\":1,\"ok\":false}".to_vec());
    s.push(b'\n');
    w.write_all(&s).is_ok()
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side: sends one request and reads one response.
pub fn call(path: &Path, req: &super::proto::Request) -> std::io::Result<Response> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(&Envelope {
        v: VERSION,
        req: req.clone(),
    })?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut r = BufReader::new(s);
    let mut resp = Vec::new();
    r.read_until(b'\n', &mut resp)?;
    serde_json::from_slice(&resp)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::super::proto::Request;
    use super::*;

    struct Echo;
    impl Handler for Echo {
        fn handle(&self, req: Request) -> Response {
            Response::ok(serde_json::json!({ "got": format!("{req:?}") }))
        }
    }

    fn tmp_sock(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rvs-test-{}-{name}", std::process::id()));
        d.join("rvs.sock")
    }

    fn root_group() -> String {
        nix::unistd::Group::from_gid(nix::unistd::getgid())
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| "root".into())
    }

    #[test]
    fn serves_requests_and_survives_garbage() {
        let p = tmp_sock("garbage");
        let srv = bind(&p, &root_group()).unwrap().serve(Arc::new(Echo));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let r = call(&p, &Request::Ping).unwrap();
        assert!(r.ok);
        assert_eq!(r.data["got"], "Ping");

        // Malformed JSON: error reply, connection closed.
        let mut s = UnixStream::connect(&p).unwrap();
        s.write_all(b"{not json}\n").unwrap();
        let mut out = String::new();
        BufReader::new(&s).read_line(&mut out).unwrap();
        let r: Response = serde_json::from_str(&out).unwrap();
        assert!(!r.ok);
        assert!(r.error.unwrap().starts_with("malformed request"));
        let mut rest = Vec::new();
        assert_eq!((&s).read_to_end(&mut rest).unwrap(), 0, "closed");

        // Half-sent message: the client closes its write side mid-line.
        let s = UnixStream::connect(&p).unwrap();
        (&s).write_all(b"{\"v\":1,\"cmd\":").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        BufReader::new(&s).read_line(&mut out).unwrap();
        assert!(out.contains("incomplete"), "{out}");

        // Oversized message.
        let s = UnixStream::connect(&p).unwrap();
        let big = vec![b'x'; MAX_REQUEST + 10];
        let _ = (&s).write_all(&big);
        let mut out = String::new();
        BufReader::new(&s).read_line(&mut out).unwrap();
        assert!(out.contains("larger than"), "{out}");

        // Wrong version.
        let s = UnixStream::connect(&p).unwrap();
        (&s).write_all(b"{\"v\":9,\"cmd\":\"ping\"}\n").unwrap();
        let mut out = String::new();
        BufReader::new(&s).read_line(&mut out).unwrap();
        assert!(out.contains("unsupported protocol version 9"), "{out}");

        // Still serving.
        assert!(call(&p, &Request::Ping).unwrap().ok);
        drop(srv);
        assert!(!p.exists(), "socket removed on shutdown");
    }

    #[test]
    fn live_socket_is_in_use_stale_one_is_replaced() {
        let p = tmp_sock("inuse");
        let srv = bind(&p, &root_group()).unwrap().serve(Arc::new(Echo));
        match bind(&p, &root_group()) {
            Err(ServerError::InUse(_)) => {}
            other => panic!("expected InUse, got {:?}", other.err()),
        }
        drop(srv);
        // A stale socket file (no listener) is replaced.
        let l = UnixListener::bind(&p).unwrap();
        drop(l);
        assert!(p.exists());
        let srv = bind(&p, &root_group()).unwrap().serve(Arc::new(Echo));
        assert!(call(&p, &Request::Ping).unwrap().ok);
        drop(srv);
    }

    #[test]
    fn many_clients_at_once() {
        let p = tmp_sock("many");
        let srv = bind(&p, &root_group()).unwrap().serve(Arc::new(Echo));
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || (0..20).all(|_| call(&p, &Request::Ping).unwrap().ok))
            })
            .collect();
        for h in hs {
            assert!(h.join().unwrap());
        }
        drop(srv);
    }

    /// Polls `f` for up to 30 s (a liveness bound, not a timing assertion).
    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Counts requests in progress and completed; each takes `delay` to answer.
    struct Slow {
        delay: Duration,
        busy: std::sync::atomic::AtomicUsize,
        done: std::sync::atomic::AtomicUsize,
    }
    impl Handler for Slow {
        fn handle(&self, _req: Request) -> Response {
            self.busy.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            self.done.fetch_add(1, Ordering::SeqCst);
            self.busy.fetch_sub(1, Ordering::SeqCst);
            Response::ok(serde_json::json!({}))
        }
    }

    #[test]
    fn dropping_the_server_joins_every_client_first() {
        let p = tmp_sock("join");
        let h = Arc::new(Slow {
            delay: Duration::from_millis(400),
            busy: Default::default(),
            done: Default::default(),
        });
        let srv = bind(&p, &root_group()).unwrap().serve(h.clone());
        // One idle client (connected, sends nothing) and one whose request is being handled.
        let idle = UnixStream::connect(&p).unwrap();
        let p2 = p.clone();
        let caller = std::thread::spawn(move || call(&p2, &Request::Ping).map(|r| r.ok));
        assert!(wait_until(|| h.busy.load(Ordering::SeqCst) == 1));
        drop(srv);
        // The request in progress was finished before the drop returned: nothing that serves
        // clients can still be running when the caller cleans up the EAL.
        assert_eq!(h.busy.load(Ordering::SeqCst), 0);
        assert_eq!(h.done.load(Ordering::SeqCst), 1);
        let _ = caller.join().unwrap();
        // The idle client was disconnected.
        let mut rest = Vec::new();
        assert_eq!((&idle).read_to_end(&mut rest).unwrap_or(0), 0);
        assert!(!p.exists());
    }

    #[test]
    fn a_bound_socket_dropped_unserved_is_removed() {
        let p = tmp_sock("unserved");
        let b = bind(&p, &root_group()).unwrap();
        assert!(p.exists());
        drop(b);
        assert!(!p.exists(), "no stale socket after a failed start");
    }

    #[test]
    fn unknown_group_is_an_error() {
        let p = tmp_sock("group");
        assert!(matches!(
            bind(&p, "no-such-group-rvs"),
            Err(ServerError::NoGroup(_))
        ));
    }
}
