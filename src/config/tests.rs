use super::*;

const LAB: &str = r#"
[eal]
cpus = [0, 1]
memory_mb = 512
[public]
device = "net_af_packet0"
devargs = "iface=rvs-pub"
addresses = ["10.0.0.13/24"]
[private]
device = "net_af_packet1"
devargs = "iface=rvs-priv"
addresses = ["192.168.8.13/24"]
[workers]
count = 2
"#;

fn parse(s: &str) -> Result<ApplianceConfig, ApplianceConfigError> {
    ApplianceConfig::parse(s, Path::new("t.toml"))
}

#[test]
fn lab_config_parses_with_defaults() {
    let c = parse(LAB).unwrap();
    assert_eq!(c.public.primary(), Ipv4Addr::new(10, 0, 0, 13));
    assert_eq!(c.public.kernel_iface(), Some("rvs-pub"));
    assert_eq!(c.private.mtu, 1500);
    assert_eq!(c.control.socket, PathBuf::from("/run/rvs/rvs.sock"));
    assert_eq!(c.tables.connections, 1 << 20);
    assert!(c.public.tx_checksum_offload && c.private.tx_checksum_offload);
    let a = c.eal_args();
    let lc = a.iter().position(|x| x == "--lcores").unwrap();
    assert_eq!(a[lc + 1], "0@0,1@1,2@1");
    assert!(a.contains(&"--no-pci".to_string()));
    assert!(a.contains(&"net_af_packet0,iface=rvs-pub".to_string()));
}

#[test]
fn static_neighbours_parse() {
    let c = parse(&LAB.replace(
        "[private]",
        "neighbours = { \"10.0.0.1\" = \"02:00:00:00:00:01\" }\n[private]",
    ))
    .unwrap();
    assert_eq!(
        c.public.neighbours,
        vec![(
            Ipv4Addr::new(10, 0, 0, 1),
            "02:00:00:00:00:01".parse().unwrap()
        )]
    );
}

#[test]
fn tx_checksum_offload_can_be_turned_off_per_port() {
    let c = parse(&LAB.replace(
        "devargs = \"iface=rvs-priv\"",
        "devargs = \"iface=rvs-priv\"\ntx_checksum_offload = false",
    ))
    .unwrap();
    assert!(c.public.tx_checksum_offload);
    assert!(!c.private.tx_checksum_offload);
}

#[test]
fn next_hop_on_link_or_gateway() {
    let c = parse(&LAB.replace(
        "addresses = [\"10.0.0.13/24\"]",
        "addresses = [\"10.0.0.13/24\"]\ngateway = \"10.0.0.1\"",
    ))
    .unwrap();
    assert_eq!(
        c.public.next_hop(Ipv4Addr::new(10, 0, 0, 12)),
        Some(Ipv4Addr::new(10, 0, 0, 12))
    );
    assert_eq!(
        c.public.next_hop(Ipv4Addr::new(8, 8, 8, 8)),
        Some(Ipv4Addr::new(10, 0, 0, 1))
    );
    assert_eq!(c.private.next_hop(Ipv4Addr::new(8, 8, 8, 8)), None);
}

#[test]
fn bad_configs_give_one_clear_line() {
    let cases = [
        (
            LAB.replace("10.0.0.13/24", "10.0.0.13"),
            "needs a prefix length",
        ),
        (
            LAB.replace("10.0.0.13/24", "10.0.0.300/24"),
            "not an IPv4 address",
        ),
        (LAB.replace("count = 2", "count = 0"), "workers.count"),
        (
            LAB.replace("net_af_packet1", "net_af_packet0"),
            "same device",
        ),
        (LAB.replace("[workers]", "[wrkers]"), "unknown field"),
        (
            LAB.replace("memory_mb = 512", "memory_mb = \"x\""),
            "invalid type",
        ),
        ("garbage = [".to_string(), "t.toml"),
        (
            LAB.replace(
                "devargs = \"iface=rvs-pub\"",
                "devargs = \"iface=rvs-pub\"\ntx_checksum_offload = \"auto\"",
            ),
            "invalid type: string \"auto\", expected a boolean",
        ),
        (
            LAB.replace(
                "devargs = \"iface=rvs-pub\"",
                "devargs = \"iface=rvs-pub\"\ntx_checksum_offlaod = true",
            ),
            "unknown field `tx_checksum_offlaod`",
        ),
        (
            LAB.replace(
                "[private]",
                "neighbours = { \"10.0.0.1\" = \"ff:ff:ff:ff:ff:ff\" }\n[private]",
            ),
            "not a unicast MAC",
        ),
        (
            LAB.replace(
                "[private]",
                "neighbours = { \"10.9.0.1\" = \"02:00:00:00:00:01\" }\n[private]",
            ),
            "not on any subnet",
        ),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} should contain {want:?}");
        assert!(!e.contains('\n'), "{e:?} should be one line");
    }
}
