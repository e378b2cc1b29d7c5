//! The state machine against keepalived's behaviour, with exact times and no sockets.

use std::time::{Duration, Instant};

use rvs_ctl::proto::Request;

use crate::plan::plan;
use crate::probe::{Failure, Verdict};
use crate::state::{Action, State};

fn state(conf: &str, now: Instant) -> State {
    let cfg = crate::parse_str(conf, "test.conf").unwrap();
    State::new(plan(&cfg).unwrap(), now)
}

fn down(reason: &str) -> Verdict {
    Verdict::Down(Failure {
        reason: reason.into(),
        log: format!("failed: {reason}"),
    })
}

/// Reconciles, commits and returns the operations as (name, addr, weight) for brevity.
fn sync(s: &mut State, now: Instant, acts: &mut Vec<Action>) -> Vec<(String, String, u32)> {
    let c = s.reconcile(now, acts);
    let ops = c.ops.clone();
    s.commit(c);
    named(&ops)
}

/// As `sync`, but only the services probe `id` is part of, as the engine does after a result.
fn sync_probe(
    s: &mut State,
    id: u64,
    now: Instant,
    acts: &mut Vec<Action>,
) -> Vec<(String, String, u32)> {
    let c = s.reconcile_probe(id, now, acts);
    let ops = c.ops.clone();
    s.commit(c);
    named(&ops)
}

fn named(ops: &[Request]) -> Vec<(String, String, u32)> {
    ops.iter()
        .map(|op| match op {
            Request::AddService { service } => (
                "add_service".into(),
                format!("{}:{}", service.addr, service.port),
                0,
            ),
            Request::EditService { service } => (
                "edit_service".into(),
                format!("{}:{}", service.addr, service.port),
                0,
            ),
            Request::DeleteService { service } => (
                "delete_service".into(),
                format!("{}:{}", service.addr, service.port),
                0,
            ),
            Request::AddDest { dest, .. } => (
                "add_dest".into(),
                format!("{}:{}", dest.addr, dest.port),
                dest.weight,
            ),
            Request::EditDest { dest, .. } => (
                "edit_dest".into(),
                format!("{}:{}", dest.addr, dest.port),
                dest.weight,
            ),
            Request::DeleteDest { dest, .. } => (
                "delete_dest".into(),
                format!("{}:{}", dest.addr, dest.port),
                0,
            ),
            other => (other.name().into(), String::new(), 0),
        })
        .collect()
}

fn op(n: &str, a: &str, w: u32) -> (String, String, u32) {
    (n.into(), a.into(), w)
}

const LAB: &str = r#"
virtual_server 10.0.0.13 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.168.8.14 80 {
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 192.168.8.15 80 {
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
"#;

#[test]
fn start_adds_the_service_and_servers_then_a_failure_after_retries_removes_one() {
    let t0 = Instant::now();
    let mut s = state(LAB, t0);
    let mut acts = Vec::new();
    assert_eq!(
        sync(&mut s, t0, &mut acts),
        vec![
            op("add_service", "10.0.0.13:80", 0),
            op("add_dest", "192.168.8.14:80", 1),
            op("add_dest", "192.168.8.15:80", 1)
        ]
    );
    let rs1 = s.ids[0];
    // First failure: a retry after delay_before_retry, nothing changes.
    let (next, changed) = s
        .on_result(rs1, down("connection refused"), t0, &mut acts)
        .unwrap();
    assert_eq!((next, changed), (Duration::from_secs(1), false));
    assert!(sync_probe(&mut s, rs1, t0, &mut acts).is_empty());
    // Second: retry exhausted, down, removed.
    let (next, changed) = s
        .on_result(rs1, down("connection refused"), t0, &mut acts)
        .unwrap();
    assert_eq!((next, changed), (Duration::from_secs(1), true));
    acts.clear();
    assert_eq!(
        sync_probe(&mut s, rs1, t0, &mut acts),
        vec![op("delete_dest", "192.168.8.14:80", 0)]
    );
    assert!(acts.contains(&Action::Warn(
        "Removing service [192.168.8.14]:tcp:80 from VS [10.0.0.13]:tcp:80".into()
    )));
    // Further failures while down change nothing and are not logged.
    acts.clear();
    let (_, changed) = s
        .on_result(rs1, down("connection refused"), t0, &mut acts)
        .unwrap();
    assert!(!changed && acts.is_empty());
    // One success brings it back.
    let (_, changed) = s.on_result(rs1, Verdict::Up, t0, &mut acts).unwrap();
    assert!(changed);
    acts.clear();
    assert_eq!(
        sync_probe(&mut s, rs1, t0, &mut acts),
        vec![op("add_dest", "192.168.8.14:80", 1)]
    );
    assert!(acts.contains(&Action::Info(
        "Adding service [192.168.8.14]:tcp:80 to VS [10.0.0.13]:tcp:80".into()
    )));
}

#[test]
fn inhibit_on_failure_sets_weight_zero_instead_of_removing() {
    let conf = LAB.replace("protocol TCP", "protocol TCP\n    inhibit_on_failure");
    let t0 = Instant::now();
    let mut s = state(&conf, t0);
    let mut acts = Vec::new();
    sync(&mut s, t0, &mut acts);
    let rs1 = s.ids[0];
    s.on_result(rs1, down("x"), t0, &mut acts);
    s.on_result(rs1, down("x"), t0, &mut acts);
    acts.clear();
    assert_eq!(
        sync(&mut s, t0, &mut acts),
        vec![op("edit_dest", "192.168.8.14:80", 0)]
    );
    assert!(acts.contains(&Action::Warn(
        "Disabling service [192.168.8.14]:tcp:80 from VS [10.0.0.13]:tcp:80".into()
    )));
    s.on_result(rs1, Verdict::Up, t0, &mut acts);
    assert_eq!(
        sync(&mut s, t0, &mut acts),
        vec![op("edit_dest", "192.168.8.14:80", 1)]
    );
}

#[test]
fn quorum_lost_brings_in_the_sorry_server_and_regained_takes_it_out() {
    let conf = LAB.replace(
        "protocol TCP",
        "protocol TCP\n    quorum 2\n    quorum_down \"/bin/true down\"\n    sorry_server 192.168.8.16 80",
    );
    let t0 = Instant::now();
    let mut s = state(&conf, t0);
    let mut acts = Vec::new();
    sync(&mut s, t0, &mut acts);
    let rs1 = s.ids[0];
    s.on_result(rs1, down("x"), t0, &mut acts);
    s.on_result(rs1, down("x"), t0, &mut acts);
    acts.clear();
    let ops = sync_probe(&mut s, rs1, t0, &mut acts);
    assert_eq!(
        ops,
        vec![
            op("delete_dest", "192.168.8.14:80", 0),
            op("delete_dest", "192.168.8.15:80", 0),
            op("add_dest", "192.168.8.16:80", 1)
        ]
    );
    assert!(acts.contains(&Action::Warn(
        "Lost quorum 2-0=2 > 1 for VS [10.0.0.13]:tcp:80".into()
    )));
    assert!(acts.contains(&Action::Info(
        "Adding sorry server [192.168.8.16]:tcp:80 to VS [10.0.0.13]:tcp:80".into()
    )));
    assert!(acts.contains(&Action::Run("/bin/true down".into())));
    s.on_result(rs1, Verdict::Up, t0, &mut acts);
    acts.clear();
    let ops = sync_probe(&mut s, rs1, t0, &mut acts);
    assert_eq!(
        ops,
        vec![
            op("delete_dest", "192.168.8.16:80", 0),
            op("add_dest", "192.168.8.14:80", 1),
            op("add_dest", "192.168.8.15:80", 1)
        ]
    );
    assert!(acts.contains(&Action::Info(
        "Gained quorum 2+0=2 <= 2 for VS [10.0.0.13]:tcp:80".into()
    )));
}

#[test]
fn alpha_servers_start_outside_the_table_and_enter_on_first_success() {
    let conf = LAB.replace("protocol TCP", "protocol TCP\n    alpha");
    let t0 = Instant::now();
    let mut s = state(&conf, t0);
    let mut acts = Vec::new();
    assert_eq!(
        sync(&mut s, t0, &mut acts),
        vec![op("add_service", "10.0.0.13:80", 0)]
    );
    let rs2 = s.ids[1];
    s.on_result(rs2, Verdict::Up, t0, &mut acts);
    assert_eq!(
        sync(&mut s, t0, &mut acts),
        vec![op("add_dest", "192.168.8.15:80", 1)]
    );
}

#[test]
fn one_probe_per_server_and_spec_across_virtual_servers() {
    let conf = format!("{LAB}\n{}", LAB.replace("10.0.0.13 80", "10.0.0.13 8080"));
    let t0 = Instant::now();
    let mut s = state(&conf, t0);
    assert_eq!(s.plan.services.len(), 2);
    assert_eq!(s.probes.len(), 2, "two servers, one spec each: two probes");
    let mut acts = Vec::new();
    assert_eq!(sync(&mut s, t0, &mut acts).len(), 6);
    // RS1's one probe fails: it leaves both services, nothing else changes.
    let rs1 = s.ids[0];
    s.on_result(rs1, down("x"), t0, &mut acts);
    s.on_result(rs1, down("x"), t0, &mut acts);
    assert_eq!(
        sync_probe(&mut s, rs1, t0, &mut acts),
        vec![
            op("delete_dest", "192.168.8.14:80", 0),
            op("delete_dest", "192.168.8.14:80", 0)
        ]
    );
    assert!(
        sync(&mut s, t0, &mut acts).is_empty(),
        "the partial change was recorded whole"
    );
}

#[test]
fn misc_dynamic_weight_changes_the_table_weight() {
    let conf = r#"
virtual_server 10.0.0.13 80 {
    lb_kind NAT
    real_server 192.168.8.14 80 {
        weight 3
        MISC_CHECK {
            misc_path "/bin/check"
            misc_dynamic
        }
    }
}"#;
    let t0 = Instant::now();
    let mut s = state(conf, t0);
    let mut acts = Vec::new();
    assert_eq!(
        sync(&mut s, t0, &mut acts)[1],
        op("add_dest", "192.168.8.14:80", 3)
    );
    let id = s.ids[0];
    let (_, changed) = s
        .on_result(id, Verdict::UpWeight(7), t0, &mut acts)
        .unwrap();
    assert!(changed);
    assert_eq!(
        sync(&mut s, t0, &mut acts),
        vec![op("edit_dest", "192.168.8.14:80", 7)]
    );
    // misc retry defaults to 0: the first failure is down.
    let (_, changed) = s
        .on_result(id, down("exit status 1"), t0, &mut acts)
        .unwrap();
    assert!(changed);
    assert_eq!(
        sync(&mut s, t0, &mut acts),
        vec![op("delete_dest", "192.168.8.14:80", 0)]
    );
}

#[test]
fn reload_keeps_unchanged_probes_and_applies_only_the_difference() {
    let t0 = Instant::now();
    let mut s = state(LAB, t0);
    let mut acts = Vec::new();
    sync(&mut s, t0, &mut acts);
    let (rs1, rs2) = (s.ids[0], s.ids[1]);
    // RS2 is down before the reload.
    s.on_result(rs2, down("x"), t0, &mut acts);
    s.on_result(rs2, down("x"), t0, &mut acts);
    sync(&mut s, t0, &mut acts);
    // The reload changes RS1's checker only.
    let changed = LAB.replacen("connect_timeout 1", "connect_timeout 2", 1);
    let cfg = crate::parse_str(&changed, "test.conf").unwrap();
    let t1 = t0 + Duration::from_secs(5);
    let (started, stopped) = s.reload(plan(&cfg).unwrap(), t1);
    assert_eq!(stopped, vec![rs1]);
    assert_eq!(started.len(), 1);
    assert_eq!(s.ids[1], rs2, "RS2's probe is the same probe");
    assert!(!s.probes[&rs2].up, "and keeps its state");
    acts.clear();
    assert!(
        sync(&mut s, t1, &mut acts).is_empty(),
        "no flap: nothing to apply"
    );
    assert!(acts.is_empty(), "{acts:?}");
    // A reload that removes the service deletes it.
    let cfg = crate::parse_str("", "test.conf").unwrap();
    s.reload(plan(&cfg).unwrap(), t1);
    assert_eq!(
        sync(&mut s, t1, &mut acts),
        vec![op("delete_service", "10.0.0.13:80", 0)]
    );
}

#[test]
fn plan_refuses_a_service_defined_twice_naming_the_line() {
    let twice = format!("{LAB}{LAB}");
    let cfg = crate::parse_str(&twice, "k.conf").unwrap();
    let e = plan(&cfg).unwrap_err().to_string();
    assert!(
        e.starts_with("k.conf:23: virtual_server: [10.0.0.13]:tcp:80 is defined twice"),
        "{e}"
    );
}

#[test]
fn omega_runs_the_down_notifiers_of_what_is_up() {
    let conf = LAB
        .replace(
            "protocol TCP",
            "protocol TCP\n    omega\n    quorum_down /bin/qdown",
        )
        .replacen("weight 1", "", 0)
        .replacen(
            "real_server 192.168.8.14 80 {",
            "real_server 192.168.8.14 80 {\n        notify_down /bin/down1",
            1,
        )
        .replacen(
            "real_server 192.168.8.15 80 {",
            "real_server 192.168.8.15 80 {\n        notify_down /bin/down2",
            1,
        );
    let t0 = Instant::now();
    let mut s = state(&conf, t0);
    let mut acts = Vec::new();
    sync(&mut s, t0, &mut acts);
    // RS2 is down already: only RS1's notifier, and quorum's.
    let rs2 = s.ids[1];
    s.on_result(rs2, down("x"), t0, &mut acts);
    s.on_result(rs2, down("x"), t0, &mut acts);
    sync(&mut s, t0, &mut acts);
    assert_eq!(
        s.omega_scripts(),
        vec!["/bin/down1".to_string(), "/bin/qdown".to_string()]
    );
    let without = state(LAB, t0);
    assert!(without.omega_scripts().is_empty());
}

#[test]
fn results_of_one_moment_are_one_change() {
    // The engine batches the probes whose results changed the table: both servers failing
    // together are one change with both removals, and a stopped probe's id is skipped.
    let t0 = Instant::now();
    let mut s = state(LAB, t0);
    let mut acts = Vec::new();
    sync(&mut s, t0, &mut acts);
    let (rs1, rs2) = (s.ids[0], s.ids[1]);
    for _ in 0..2 {
        for id in [rs1, rs2] {
            s.on_result(id, down("connection refused"), t0, &mut acts);
        }
    }
    let c = s.reconcile_probes(&[rs2, rs1, rs2, 9999], t0, &mut acts);
    let ops = named(&c.ops);
    s.commit(c);
    assert_eq!(
        ops,
        vec![
            op("delete_dest", "192.168.8.14:80", 0),
            op("delete_dest", "192.168.8.15:80", 0)
        ]
    );
    assert!(
        sync(&mut s, t0, &mut acts).is_empty(),
        "the batch left work"
    );
}
