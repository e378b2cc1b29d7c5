use super::*;

const LAB: &str = r#"
[public]
device = "net_af_packet0"
devargs = "iface=rvs-pub"
addresses = ["10.0.0.13/24"]
kernel_interface = "rvs-pub-k"
[private]
device = "net_af_packet1"
devargs = "iface=rvs-priv"
addresses = ["192.168.8.13/24"]
"#;

fn parse(s: &str) -> Result<ApplianceConfig, ApplianceConfigError> {
    ApplianceConfig::parse(s, Path::new("t.toml"))
}

#[test]
fn a_twin_has_a_name_an_auto_backend_and_a_default_rate() {
    let c = parse(LAB).unwrap();
    assert_eq!(
        c.public.kernel,
        Some(KernelTwin {
            name: "rvs-pub-k".into(),
            backend: KernelBackend::Auto,
            rate: DEFAULT_KERNEL_RATE,
        })
    );
    assert_eq!(c.private.kernel, None);
    let c = parse(&LAB.replace(
        "kernel_interface = \"rvs-pub-k\"",
        "kernel_interface = \"k0\"\nkernel_backend = \"tap\"\nkernel_rate = 500",
    ))
    .unwrap();
    let k = c.public.kernel.unwrap();
    assert_eq!(
        (k.name.as_str(), k.backend, k.rate),
        ("k0", KernelBackend::Tap, 500)
    );
}

#[test]
fn bad_twins_give_one_clear_line() {
    let k = "kernel_interface = \"rvs-pub-k\"";
    let cases = [
        (
            LAB.replace(k, "kernel_interface = \"a-name-far-too-long\""),
            "1..15 characters",
        ),
        (
            LAB.replace(k, "kernel_interface = \"\""),
            "1..15 characters",
        ),
        (
            LAB.replace(k, "kernel_interface = \"a/b\""),
            "not a valid interface name",
        ),
        (
            LAB.replace(k, "kernel_interface = \"a b\""),
            "not a valid interface name",
        ),
        (
            LAB.replace(k, "kernel_interface = \"rvs-pub\""),
            "needs a name of its own",
        ),
        (
            LAB.replace(k, &format!("{k}\nkernel_backend = \"kni\"")),
            "unknown variant",
        ),
        (
            LAB.replace(k, &format!("{k}\nkernel_rate = 0")),
            "kernel_rate",
        ),
        (
            LAB.replace(
                "addresses = [\"192.168.8.13/24\"]",
                "addresses = [\"192.168.8.13/24\"]\nkernel_interface = \"rvs-pub-k\"",
            ),
            "same kernel_interface",
        ),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(want), "{want:?} not in {e:?}");
        assert!(!e.contains('\n'), "one line: {e:?}");
    }
}

#[test]
fn subnet_broadcasts() {
    let c = parse(LAB).unwrap();
    assert!(c.public.is_subnet_broadcast(Ipv4Addr::new(10, 0, 0, 255)));
    assert!(!c.public.is_subnet_broadcast(Ipv4Addr::new(10, 0, 0, 254)));
    assert!(!c.public.is_subnet_broadcast(Ipv4Addr::new(10, 0, 1, 255)));
}

#[test]
fn checks_need_the_private_twin() {
    let with = format!("{LAB}\n[checks]\nfile = \"/etc/rvs/keepalived.conf\"\n");
    // LAB has a public twin only: the checks would have no way to the real servers.
    let e = parse(&with).unwrap_err().to_string();
    assert!(
        e.contains("checks.file needs private.kernel_interface"),
        "{e}"
    );
    let both = with.replace(
        "addresses = [\"192.168.8.13/24\"]",
        "addresses = [\"192.168.8.13/24\"]\nkernel_interface = \"rvs-priv-k\"",
    );
    let c = parse(&both).unwrap();
    assert_eq!(
        c.checks.file.as_deref(),
        Some(std::path::Path::new("/etc/rvs/keepalived.conf"))
    );
}
