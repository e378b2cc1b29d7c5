//! The latency benchmark's machinery works: `scripts/bench-latency.sh --smoke` runs rvs with
//! net_memif ports fed by `rvs-pktgen` (a second DPDK process), unpaced and then paced, and
//! reads rvs's own RX-to-TX latency histogram from the control socket. Asserts that packets
//! went through both ways and that latency samples were taken with sane percentiles; never how
//! fast or how low. Needs root, hugepages and DPDK (scripts/test.sh runs it).

use std::path::PathBuf;
use std::process::Command;

#[test]
#[ignore = "needs root, hugepages and DPDK: scripts/test.sh runs it"]
fn latency_smoke_measures_through_memif() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_rvs-pktgen"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let results = std::env::temp_dir().join(format!("rvs-lat-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&results);
    let out = Command::new("bash")
        .arg(root.join("scripts/bench-latency.sh"))
        .args(["--smoke", "--results"])
        .arg(&results)
        .env("RVS_BIN_DIR", &bin_dir)
        .output()
        .expect("run scripts/bench-latency.sh");
    let text = format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "bench-latency.sh --smoke failed: {text}"
    );
    let file = std::fs::read_dir(&results)
        .expect("results dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no JSON result\n{text}"));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "the unpaced run and the 10% run: {v}");
    for r in runs {
        let gen = &r["generator"];
        assert_eq!(gen["primed"].as_u64(), Some(256), "every flow primed: {r}");
        assert!(gen["sent"].as_u64().unwrap_or(0) > 0, "{r}");
        // rvs forwarded what it was sent: requests and replies found their connections.
        assert!(gen["received"].as_u64().unwrap_or(0) > 0, "{r}");
        assert!(r["tx_pps"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
        assert!(r["samples"].as_u64().unwrap_or(0) > 0, "{r}");
        let (p50, p99, p999, max) = (
            r["p50_ns"].as_f64().unwrap(),
            r["p99_ns"].as_f64().unwrap(),
            r["p999_ns"].as_f64().unwrap(),
            r["max_ns"].as_f64().unwrap(),
        );
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "percentiles in order: {r}"
        );
        let lb_drops: u64 = r["drops_by_reason"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.ends_with(":lb"))
                    .map(|(_, v)| v.as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(lb_drops, 0, "no packet missed its connection: {r}");
    }
    // The paced run offered less than the unpaced one did.
    let (max, paced) = (&runs[0], &runs[1]);
    assert!(
        paced["rate_asked"].as_u64().unwrap() > 0
            && paced["rate_asked"].as_f64().unwrap() < max["tx_pps"].as_f64().unwrap(),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(&results);
}
