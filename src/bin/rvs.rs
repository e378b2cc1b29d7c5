//! rvs: the appliance daemon. See `rvs --help` and docs/operations.md.
// Input paths never panic: no unwrap, expect or panic outside tests (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use clap::Parser;
use std::path::PathBuf;

/// Rust Virtual Server: an LVS-NAT load balancer on DPDK.
///
/// Starts the appliance described by the config file (EAL options, the public and private
/// ports with their addresses, worker count, table sizes, control socket), serves the control
/// socket for rvsadm, and runs until SIGINT or SIGTERM, when it stops the workers and ports
/// and removes the socket. Exit status 0 after a clean stop, 1 when it cannot start (the
/// reason is printed on one line).
#[derive(Parser, Debug)]
#[command(name = "rvs", version)]
struct Args {
    /// Configuration file (TOML); see docs/config.md and dpdk-config/.
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration file and exit without starting anything.
    #[arg(long)]
    check: bool,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RVS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cfg = match rvs::config::ApplianceConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvs: error: config {e}");
            std::process::exit(1);
        }
    };
    if args.check {
        println!("{}: ok", args.config.display());
        if let Some(f) = &cfg.checks.file {
            match rvs_checks::engine::load(f) {
                Ok((_, plan)) => println!(
                    "{}: ok ({} services, {} probes)",
                    f.display(),
                    plan.services.len(),
                    plan.probes.len()
                ),
                Err(e) => {
                    eprintln!("rvs: error: checks {e}");
                    std::process::exit(1);
                }
            }
        }
        return;
    }
    if let Err(e) = rvs::control::app::run(cfg) {
        eprintln!("rvs: error: {e}");
        std::process::exit(1);
    }
}
