//! Generates Rust bindings to the system DPDK 22.11 (found with pkg-config) and compiles the
//! wrappers of DPDK's static-inline fast-path functions (`rte_eth_rx_burst`, `rte_pktmbuf_free`,
//! `rte_ring_*` ...) that bindgen's `wrap_static_fns` writes. Linking is dynamic, so EAL loads the
//! PMD plugins (net_af_packet, net_pcap, mlx5 ...) from the system driver directory at start.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-changed=build.rs");

    let lib = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "DPDK 22.11 not found through pkg-config ({e}).\n\
                 Install it with scripts/setup-host.sh (Debian: apt-get install libdpdk-dev)."
            )
        });

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let wrap_c = out.join("rte_static_wrappers.c");

    // pkg-config's cflags carry `-include rte_config.h -march=corei7`, which the pkg-config crate
    // drops; both matter for the inline functions, so pass them explicitly.
    let mut clang_args: Vec<String> = lib
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    clang_args.extend(
        [
            "-include",
            "rte_config.h",
            "-march=corei7",
            "-DALLOW_EXPERIMENTAL_API",
        ]
        .iter()
        .map(|s| s.to_string()),
    );

    let bindings = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_args(&clang_args)
        .wrap_static_fns(true)
        .wrap_static_fns_path(out.join("rte_static_wrappers"))
        .allowlist_function("rte_(eal|eth|pktmbuf|mempool|ring|lcore|socket|flow|thash|softrss|pdump|rdtsc|get_tsc|delay|errno|strerror|exit|vdev|dev).*")
        .allowlist_function("rte_(lcore_id|get_main_lcore|get_next_lcore|get_timer_hz|get_tsc_hz|mbuf_raw_free|mbuf_raw_alloc|prefetch0|prefetch1|prefetch2|pause)")
        .allowlist_function("rvs_.*")
        .allowlist_function("rte_tel(emetry)?_.*")
        .allowlist_type("rte_(eth|mbuf|mempool|ring|flow|lcore|thash).*")
        .allowlist_var("RTE_(ETH|MBUF|MAX_ETHPORTS|MAX_LCORE|RING|PKTMBUF|ETHER|TEL_MAX).*")
        // Packed structs holding aligned(2) ether addresses are rejected by Rust (E0588);
        // rvs parses headers itself, so keep them opaque.
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_l2tpv2_.*")
        .opaque_type("rte_gtp_.*")
        .opaque_type("rte_flow_item_(arp|l2tpv2|gtp|gtp_psc).*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the DPDK headers");
    bindings
        .write_to_file(out.join("dpdk_bindings.rs"))
        .expect("cannot write bindings");

    let mut build = cc::Build::new();
    build
        .file(&wrap_c)
        .include(env::current_dir().expect("cwd"));
    for p in &lib.include_paths {
        build.include(p);
    }
    build
        .flag("-include")
        .flag("rte_config.h")
        .flag("-march=corei7")
        .define("ALLOW_EXPERIMENTAL_API", None)
        .flag_if_supported("-Wno-deprecated-declarations")
        .opt_level(3)
        .compile("rte_static_wrappers");
}
