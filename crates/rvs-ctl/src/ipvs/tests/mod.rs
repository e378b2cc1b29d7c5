//! The control state's tests, by topic in the files below; the fake dataplane and helpers here.

//! Tests of the IPVS control state, driven as rvsadm drives it: listings, edits, refusals,
//! restore, connections, trash purging, mark rules, rules files and the socket.

use super::listings::conn_proto_name;
use super::*;
use crate::ipvsadm::args::parse_with;
use crate::ipvsadm::client::{execute, ClientOpts, Outcome};
use crate::ipvsadm::names::NumericNames;
use crate::model::{self, ConnEntry, ListSnapshot, MarkRuleEntry};
use crate::proto::{self, DestRef, Envelope, ServiceConf, ServiceRef};
use rvs_lb::config::{Proto, ServiceId, ServiceKey};
use rvs_lb::NANOS_PER_SEC;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Two workers, capacity 4096 each, connections as given.
struct Fake {
    snap: Mutex<Arc<Snapshot>>,
    published: AtomicUsize,
    cores: Vec<Arc<CoreStats>>,
    conns: Vec<ConnInfo>,
    expired: Mutex<Vec<DestId>>,
}

impl Dataplane for Fake {
    fn current(&self) -> Arc<Snapshot> {
        self.snap.lock().unwrap().clone()
    }
    fn publish(&self, snapshot: Snapshot) {
        *self.snap.lock().unwrap() = Arc::new(snapshot);
        self.published.fetch_add(1, Ordering::SeqCst);
    }
    fn core_stats(&self) -> &[Arc<CoreStats>] {
        &self.cores
    }
    fn conn_tab_size(&self) -> u32 {
        4096 * self.cores.len() as u32
    }
    fn list_conns(&self) -> Result<Vec<ConnInfo>, String> {
        Ok(self.conns.clone())
    }
    fn expire_dest_conns(&self, dest: DestId) {
        self.expired.lock().unwrap().push(dest);
    }
}

fn setup_with(conns: Vec<ConnInfo>) -> (Arc<Fake>, Ipvs) {
    let fake = Arc::new(Fake {
        snap: Mutex::new(Arc::new(Snapshot::empty())),
        published: AtomicUsize::new(0),
        cores: vec![Arc::new(CoreStats::new(0)), Arc::new(CoreStats::new(1))],
        conns,
        expired: Mutex::new(Vec::new()),
    });
    let ipvs = Ipvs::new(fake.clone());
    (fake, ipvs)
}

fn setup() -> (Arc<Fake>, Ipvs) {
    setup_with(Vec::new())
}

/// Sends a request through its JSON wire form, as the socket server would.
fn wire(ipvs: &Ipvs, req: &Request) -> Response {
    let line = serde_json::to_string(&Envelope {
        v: 1,
        req: req.clone(),
    })
    .unwrap();
    let env: Envelope = serde_json::from_str(&line).unwrap();
    // The appliance's handler answers ping itself (liveness), everything else goes to Ipvs.
    let resp = match env.req {
        Request::Ping => Response::ok(serde_json::json!({ "version": "test" })),
        req => ipvs.handle(req),
    };
    serde_json::from_str(&serde_json::to_string(&resp).unwrap()).unwrap()
}

/// Runs an rvsadm command line (numeric names) against `ipvs`, exactly as the binary does.
fn rvsadm_full(ipvs: &Ipvs, line: &str, opts: ClientOpts, stdin: &str) -> Outcome {
    let argv: Vec<String> = std::iter::once("rvsadm")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect();
    let cmd = match parse_with(&argv, &NumericNames) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(&e.message, e.exit_code),
    };
    let mut call = |r: &Request| -> Result<Response, Outcome> { Ok(wire(ipvs, r)) };
    let mut input = || Ok(stdin.to_string());
    execute(cmd, opts, &mut call, &NumericNames, &mut input)
}

fn rvsadm(ipvs: &Ipvs, line: &str) -> Outcome {
    rvsadm_full(ipvs, line, ClientOpts::default(), "")
}

/// stdout of a command that must succeed.
fn ok(ipvs: &Ipvs, line: &str) -> String {
    let o = rvsadm(ipvs, line);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{line}");
    o.stdout
}

fn err(ipvs: &Ipvs, line: &str) -> (String, i32) {
    let o = rvsadm(ipvs, line);
    assert_eq!(o.stdout, "", "{line}");
    (o.stderr, o.code)
}

const SETUP: &[&str] = &[
    "-A -t 192.0.2.10:80 -s rr",
    "-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 3",
    "-a -t 192.0.2.10:80 -r 10.0.0.1:8080 -m",
    "-A -u 192.0.2.10:53 -s sh -b sh-port",
    "-a -u 192.0.2.10:53 -r 10.0.0.3 -m -w 0 -x 100 -y 10",
    "-A -t 192.0.2.11:0 -p 600 -M 255.255.255.0",
    "-A -f 7 -s wrr -p",
    "-a -f 7 -r 10.0.0.4 -m",
];

fn configured() -> (Arc<Fake>, Ipvs) {
    let (fake, ipvs) = setup();
    for l in SETUP {
        ok(&ipvs, l);
    }
    (fake, ipvs)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Client options asking for JSON output.
fn json() -> ClientOpts {
    ClientOpts {
        json: true,
        ..ClientOpts::default()
    }
}

mod conns_and_rules;
mod ldirectord;
mod listings;
mod ops;
