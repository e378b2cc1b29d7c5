//! The checker thread: a single-threaded tokio runtime running one task per distinct probe,
//! the [`State`] they report to, and the commands of the control socket (list, reload). IPVS
//! changes go out through [`Apply`], all or nothing per change. Nothing here runs on a worker
//! or on the management core: a slow server or a hanging script costs a timer, not a core.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as smpsc, Arc};
use std::time::{Duration, Instant};

use rvs_ctl::checks::{CheckerReport, ChecksReport, RsReport, VsReport};
use rvs_ctl::proto::Request;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::plan::{kind_name, plan, target_of, Plan};
use crate::probe::plane::SynPlane;
use crate::probe::syn::SynProber;
use crate::probe::{self, ProbeCx};
use crate::state::{Action, ProbeId, State};
use crate::ChecksConfig;

/// How the checks change the IPVS table.
pub trait Apply: Send + Sync + 'static {
    /// Applies `ops` all or nothing; Err is the refusal's message.
    fn apply(&self, ops: Vec<Request>) -> Result<(), String>;
}

/// A script (notify_*, quorum_*) that runs longer than this is killed.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The heartbeat's period; `--list-checks` calls the thread stalled after 2 s without one.
const HEARTBEAT: Duration = Duration::from_millis(100);
/// How long a control request waits for the checker thread.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

enum Cmd {
    List(smpsc::SyncSender<ChecksReport>),
    /// Reload; the reply (if asked for) is the summary line or the error.
    Reload(Option<smpsc::SyncSender<Result<String, String>>>),
}

/// The running checks, as the appliance holds them. Dropping it stops the thread (the IPVS
/// services stay as they are: the appliance is stopping anyway).
pub struct Checks {
    tx: mpsc::UnboundedSender<Cmd>,
    heartbeat_ms: Arc<AtomicU64>,
    epoch: Instant,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Reads and checks the file: what `rvs --check` and every (re)load run.
pub fn load(path: &Path) -> Result<(ChecksConfig, Plan), String> {
    let cfg = crate::parse_file(path).map_err(|e| e.to_string())?;
    let p = plan(&cfg).map_err(|e| e.to_string())?;
    Ok((cfg, p))
}

/// How the engine runs, beyond what the checks file says (rvs.toml's `[checks]`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// TCP_CHECK by a half-open SYN instead of connect() (probe::syn).
    pub tcp_half_open: bool,
    /// The data plane that sends those SYNs (the appliance's); without it, a raw socket.
    pub plane: Option<Arc<SynPlane>>,
}

/// How the half-open prober will reach the servers, decided before the thread starts.
enum SynWire {
    Raw(socket2::Socket),
    Plane(Arc<SynPlane>),
}

type Tls = Option<Arc<rustls::ClientConfig>>;

/// The TLS context SSL_GET checks use, built once per (re)load from the `SSL` block.
fn tls_of(cfg: &ChecksConfig, p: &Plan) -> Result<Tls, String> {
    let tls = p
        .probes
        .iter()
        .any(|x| matches!(&x.spec.kind, crate::CheckKind::Http(h) if h.tls));
    if !tls {
        return Ok(None);
    }
    Ok(Some(probe::tls_config(cfg.ssl.as_ref())?))
}

struct Inner {
    state: State,
    apply: Arc<dyn Apply>,
    cx: Rc<ProbeCx>,
    syn: Option<Rc<SynProber>>,
    tasks: HashMap<ProbeId, AbortHandle>,
    /// Probes whose result changed what the table should hold, for the flush task: the
    /// results of one moment (1,000 servers failing together) become one IPVS change, not
    /// 1,000 configuration snapshots built one after the other.
    dirty: Vec<ProbeId>,
    flush: Rc<tokio::sync::Notify>,
    file: PathBuf,
    loaded: Instant,
}

type Shared = Rc<RefCell<Inner>>;

fn act(acts: Vec<Action>) {
    for a in acts {
        match a {
            Action::Info(l) => tracing::info!(target: "rvs::checks", "{l}"),
            Action::Warn(l) => tracing::warn!(target: "rvs::checks", "{l}"),
            Action::Run(s) => {
                tokio::task::spawn_local(run_script(s));
            }
        }
    }
}

/// keepalived splits a script line into words itself (quotes and escapes as for misc_path);
/// no shell is involved.
async fn run_script(line: String) {
    use std::os::unix::ffi::OsStringExt;
    let words = match probe::split_args(&line) {
        Ok(w) if !w.is_empty() => w,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(target: "rvs::checks", "script {line}: {e}");
            return;
        }
    };
    let mut words = words.into_iter().map(std::ffi::OsString::from_vec);
    let Some(prog) = words.next() else { return };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(words).kill_on_drop(true);
    match cmd.spawn() {
        Ok(mut child) => match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await {
            Ok(Ok(st)) if !st.success() => {
                tracing::warn!(target: "rvs::checks", "script {line}: {st}")
            }
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(target: "rvs::checks", "script {line}: killed after {}s", SCRIPT_TIMEOUT.as_secs());
                let _ = child.kill().await;
            }
        },
        Err(e) => tracing::warn!(target: "rvs::checks", "script {line}: cannot run: {e}"),
    }
}

impl Inner {
    /// Reconciles and applies. A refused batch is retried one operation at a time so that
    /// one stale entry (say, a real server an operator deleted by hand) does not freeze the
    /// checks of everything else.
    fn sync_table(&mut self, ids: &[ProbeId], now: Instant) {
        let mut acts = Vec::new();
        let mut change = self.state.reconcile_probes(ids, now, &mut acts);
        act(acts);
        let ops = std::mem::take(&mut change.ops);
        if ops.is_empty() {
            self.state.commit(change);
            return;
        }
        if let Err(e) = self.apply.apply(ops.clone()) {
            tracing::warn!(target: "rvs::checks", "IPVS change refused ({e}); applying it operation by operation");
            for op in ops {
                let name = op.name();
                if let Err(e) = self.apply.apply(vec![op]) {
                    tracing::warn!(target: "rvs::checks", "{name}: {e}");
                }
            }
        }
        self.state.commit(change);
    }
}

async fn run_probe(id: ProbeId, sh: Shared) {
    let (spec, warmup, cx) = {
        let s = sh.borrow();
        let Some(p) = s.state.probes.get(&id) else {
            return;
        };
        (p.plan.spec.clone(), p.plan.warmup, s.cx.clone())
    };
    // keepalived spreads the first checks over 0..warmup so a restart is not a thundering herd.
    let ms = warmup.as_millis().min(u128::from(u32::MAX)) as u64;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ms))).await;
    loop {
        let v = probe::probe(&spec, &cx).await;
        let next = {
            let mut inner = sh.borrow_mut();
            let now = Instant::now();
            let mut acts = Vec::new();
            let r = inner.state.on_result(id, v, now, &mut acts);
            act(acts);
            if let Some((_, true)) = r {
                inner.dirty.push(id);
                inner.flush.notify_one();
            }
            r
        };
        match next {
            Some((d, _)) => tokio::time::sleep(d).await,
            None => return,
        }
    }
}

/// Applies what the probes' results changed, batched: it runs once the results ready at
/// the same moment have all been taken.
async fn flush_changes(sh: Shared) {
    let flush = sh.borrow().flush.clone();
    loop {
        flush.notified().await;
        tokio::task::yield_now().await;
        let mut inner = sh.borrow_mut();
        let ids = std::mem::take(&mut inner.dirty);
        if !ids.is_empty() {
            inner.sync_table(&ids, Instant::now());
        }
    }
}

fn spawn_probes(sh: &Shared, ids: &[ProbeId]) {
    for &id in ids {
        let h = tokio::task::spawn_local(run_probe(id, sh.clone()));
        sh.borrow_mut().tasks.insert(id, h.abort_handle());
    }
}

fn reload(sh: &Shared) -> Result<String, String> {
    let file = sh.borrow().file.clone();
    let (cfg, p) = load(&file)?;
    let tls = tls_of(&cfg, &p)?;
    let now = Instant::now();
    let mut inner = sh.borrow_mut();
    let mut next = inner.state.clone();
    let (started, stopped) = next.reload(p, now);
    let mut acts = Vec::new();
    let mut change = next.reconcile(now, &mut acts);
    let ops = std::mem::take(&mut change.ops);
    let nops = ops.len();
    if !ops.is_empty() {
        inner.apply.apply(ops).map_err(|e| {
            format!(
                "{}: not applied, the running checks are unchanged: {e}",
                file.display()
            )
        })?;
    }
    act(acts);
    next.commit(change);
    inner.state = next;
    inner.cx = Rc::new(ProbeCx {
        tls,
        syn: inner.syn.clone(),
    });
    inner.loaded = now;
    for id in &stopped {
        if let Some(h) = inner.tasks.remove(id) {
            h.abort();
        }
    }
    let summary = format!(
        "{}: reloaded, {} services, {} probes ({} new, {} stopped, the others keep their state), {} IPVS operations",
        file.display(),
        inner.state.plan.services.len(),
        inner.state.plan.probes.len(),
        started.len(),
        stopped.len(),
        nops
    );
    drop(inner);
    spawn_probes(sh, &started);
    Ok(summary)
}

/// Seconds since the checker thread's last heartbeat (milliseconds since `epoch` in `hb`).
fn heartbeat_age(hb: &AtomicU64, epoch: Instant) -> f64 {
    let last = Duration::from_millis(hb.load(Ordering::Relaxed));
    epoch.elapsed().saturating_sub(last).as_secs_f64()
}

fn report(inner: &Inner, heartbeat_secs: f64) -> ChecksReport {
    let now = Instant::now();
    let secs = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
    let st = &inner.state;
    let services = st
        .plan
        .services
        .iter()
        .map(|vs| {
            let key = vs.key();
            let quorum_up = st.quorum_up.get(&key).copied().unwrap_or(true);
            VsReport {
                service: match vs.conf.proto {
                    rvs_ctl::model::ServiceProto::Fwmark => format!("FWM  {}", vs.conf.fwmark),
                    p => format!(
                        "{}  {}:{}",
                        if p == rvs_ctl::model::ServiceProto::Udp {
                            "UDP"
                        } else {
                            "TCP"
                        },
                        vs.conf.addr,
                        vs.conf.port
                    ),
                },
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                alive_weight: st.live_weight(vs),
                quorum_up,
                sorry_server: vs.sorry_dest(0).map(|d| format!("{}:{}", d.addr, d.port)),
                sorry_active: !quorum_up && vs.sorry.is_some(),
                real_servers: vs
                    .real_servers
                    .iter()
                    .map(|rs| {
                        let m = st.members.get(&(key, rs.addr, rs.port));
                        RsReport {
                            server: format!("{}:{}", rs.addr, rs.port),
                            up: m.is_some_and(|m| m.alive),
                            weight: rs.weight,
                            table_weight: st.table_weight(&key, rs.addr, rs.port),
                            inhibit_on_failure: rs.inhibit_on_failure,
                            changed_secs: m.map(|m| secs(m.changed)).unwrap_or(0.0),
                            checkers: rs
                                .probes
                                .iter()
                                .filter_map(|&i| st.probes.get(&st.ids[i]))
                                .map(|p| CheckerReport {
                                    kind: kind_name(&p.plan.spec.kind).to_string(),
                                    target: target_of(&p.plan.spec),
                                    up: p.up,
                                    last_result: p.last.as_ref().map(|(_, r)| {
                                        r.clone().unwrap_or_else(|| "ok".to_string())
                                    }),
                                    last_secs: p.last.as_ref().map(|(t, _)| secs(*t)),
                                    changed_secs: secs(p.changed),
                                    failures: p.failures,
                                    attempts: p.attempts,
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    ChecksReport {
        file: inner.file.display().to_string(),
        loaded_secs: secs(inner.loaded),
        heartbeat_secs,
        probes: st.probes.len(),
        half_open: inner.syn.as_ref().map(|p| p.report()),
        virtual_servers: services,
    }
}

impl Checks {
    /// Loads the file, puts its services into the IPVS table (all or nothing: an error here
    /// means rvs must not start) and starts the checker thread.
    pub fn start(file: &Path, apply: Arc<dyn Apply>, opts: Options) -> Result<Checks, String> {
        let (cfg, p) = load(file)?;
        for ig in &cfg.ignored {
            tracing::info!(target: "rvs::checks", "{}:{}: {}: ignored (not about LVS)", ig.at.file, ig.at.line, ig.keyword);
        }
        let tls = tls_of(&cfg, &p)?;
        let wire = match (opts.tcp_half_open, opts.plane) {
            (false, _) => None,
            (true, Some(plane)) => Some(SynWire::Plane(plane)),
            (true, None) => Some(SynWire::Raw(SynProber::open().map_err(|e| {
                format!("half-open TCP checks need a raw socket (CAP_NET_RAW): {e}")
            })?)),
        };
        let now = Instant::now();
        let mut state = State::new(p, now);
        let mut acts = Vec::new();
        let mut change = state.reconcile(now, &mut acts);
        let ops = std::mem::take(&mut change.ops);
        if !ops.is_empty() {
            apply
                .apply(ops)
                .map_err(|e| format!("{}: cannot set up its services: {e}", file.display()))?;
        }
        state.commit(change);
        tracing::info!(
            target: "rvs::checks",
            "{}: {} services, {} real servers, {} probes",
            file.display(),
            state.plan.services.len(),
            state.members.len(),
            state.probes.len()
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let heartbeat_ms = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let hb = heartbeat_ms.clone();
        let file = file.to_path_buf();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("checker runtime: {e}"))?;
        let thread = std::thread::Builder::new()
            .name("rvs-checks".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                let inner = Inner {
                    state,
                    apply,
                    cx: Rc::new(ProbeCx::default()),
                    syn: None,
                    tasks: HashMap::new(),
                    dirty: Vec::new(),
                    flush: Rc::new(tokio::sync::Notify::new()),
                    file,
                    loaded: now,
                };
                local.block_on(
                    &rt,
                    serve(Rc::new(RefCell::new(inner)), tls, wire, rx, hb, epoch),
                );
            })
            .map_err(|e| format!("checker thread: {e}"))?;
        Ok(Checks {
            tx,
            heartbeat_ms,
            epoch,
            thread: Some(thread),
        })
    }

    /// Seconds since the checker thread last ticked (every 100 ms when healthy).
    pub fn heartbeat_secs(&self) -> f64 {
        heartbeat_age(&self.heartbeat_ms, self.epoch)
    }

    /// The state of every checker, or why the checker thread cannot say.
    pub fn list(&self) -> Result<ChecksReport, String> {
        let (tx, rx) = smpsc::sync_channel(1);
        self.tx
            .send(Cmd::List(tx))
            .map_err(|_| "the checker thread has stopped".to_string())?;
        rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| {
            format!(
                "the checker thread does not answer (last heartbeat {:.1} s ago)",
                self.heartbeat_secs()
            )
        })
    }

    /// Re-reads the file and applies the difference; the summary or why nothing changed.
    pub fn reload(&self) -> Result<String, String> {
        let (tx, rx) = smpsc::sync_channel(1);
        self.tx
            .send(Cmd::Reload(Some(tx)))
            .map_err(|_| "the checker thread has stopped".to_string())?;
        rx.recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| "the checker thread does not answer".to_string())?
    }

    /// [`Checks::reload`] without waiting (SIGHUP): the outcome is logged.
    pub fn reload_async(&self) {
        let _ = self.tx.send(Cmd::Reload(None));
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        // Closing the channel ends `serve`; the runtime drops (aborts) every probe task.
        let (dead, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.tx, dead));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    sh: Shared,
    tls: Tls,
    wire: Option<SynWire>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    hb: Arc<AtomicU64>,
    epoch: Instant,
) {
    // The half-open prober registers with this runtime, so it is made here.
    let syn = wire.and_then(|w| {
        match w {
        SynWire::Plane(plane) => Some(SynProber::on_plane(plane)),
        SynWire::Raw(r) => SynProber::new(r)
            .map_err(|e| {
                tracing::error!(target: "rvs::checks", "half-open TCP checks: {e}; using connect()")
            })
            .ok(),
    }
    });
    if let Some(p) = &syn {
        tokio::task::spawn_local(p.clone().receive());
    }
    {
        let mut inner = sh.borrow_mut();
        inner.cx = Rc::new(ProbeCx {
            tls,
            syn: syn.clone(),
        });
        inner.syn = syn;
    }
    let ids = sh.borrow().state.ids.clone();
    tokio::task::spawn_local(flush_changes(sh.clone()));
    spawn_probes(&sh, &ids);
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                hb.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            cmd = rx.recv() => match cmd {
                None => break,
                Some(Cmd::List(reply)) => {
                    let age = heartbeat_age(&hb, epoch);
                    let _ = reply.try_send(report(&sh.borrow(), age));
                }
                Some(Cmd::Reload(reply)) => {
                    let r = reload(&sh);
                    match &r {
                        Ok(s) => tracing::info!(target: "rvs::checks", "{s}"),
                        Err(e) => tracing::error!(target: "rvs::checks", "reload: {e}"),
                    }
                    if let Some(reply) = reply {
                        let _ = reply.try_send(r);
                    }
                }
            }
        }
    }
    let tasks: Vec<AbortHandle> = sh.borrow_mut().tasks.drain().map(|(_, h)| h).collect();
    for h in tasks {
        h.abort();
    }
    // omega: the down notifiers run (bounded: shutdown must not hang on a script).
    let scripts = sh.borrow().state.omega_scripts();
    if !scripts.is_empty() {
        let all = futures_join(scripts.into_iter().map(run_script).collect());
        if tokio::time::timeout(OMEGA_TIMEOUT, all).await.is_err() {
            tracing::warn!(target: "rvs::checks", "omega scripts still running after {}s; stopping anyway", OMEGA_TIMEOUT.as_secs());
        }
    }
}

/// How long shutdown waits for the omega scripts.
const OMEGA_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the futures concurrently on the local set and waits for all of them.
async fn futures_join(fs: Vec<impl std::future::Future<Output = ()> + 'static>) {
    let hs: Vec<_> = fs.into_iter().map(tokio::task::spawn_local).collect();
    for h in hs {
        let _ = h.await;
    }
}
