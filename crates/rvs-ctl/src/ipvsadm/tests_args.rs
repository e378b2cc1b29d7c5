//! Parse tests. Expected messages and exit codes were checked against the real ipvsadm 1.31
//! binary (same argument vectors), except the rvsadm-specific cases marked as such.

use super::args::*;
use super::format::ListFormat;
use super::names::{inet_aton, Names, ServicesDb};
use crate::model::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The /etc/services lines the tests need (copied from Debian's file).
const SERVICES: &str = "\
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
echo\t\t7/tcp
echo\t\t7/udp
domain\t\t53/tcp\t\t\t\t# Domain Name Server
domain\t\t53/udp
finger\t\t79/tcp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
https\t\t443/tcp\t\t\t\t# http protocol over TLS/SSL
https\t\t443/udp\t\t\t\t# HTTP/3
snpp\t\t444/tcp\t\t\t\t# Simple Network Paging Protocol
microsoft-ds\t445/tcp\t\t\t\t# Microsoft Naked CIFS
sip\t\t5060/tcp\t\t\t# Session Initiation Protocol
sip\t\t5060/udp
amqp\t\t5672/tcp
amqp\t\t5672/sctp
http-alt\t8080/tcp\twebcache\t# WWW caching service
";

/// Deterministic names for tests: no resolver, no files.
pub(super) struct FakeNames {
    services: ServicesDb,
    hosts: HashMap<&'static str, Ipv4Addr>,
    reverse: HashMap<Ipv4Addr, &'static str>,
}

impl FakeNames {
    pub(super) fn new() -> FakeNames {
        let mut f = FakeNames::services_only();
        f.hosts = HashMap::from([
            ("localhost", Ipv4Addr::new(127, 0, 0, 1)),
            ("vip.example.com", Ipv4Addr::new(10, 0, 0, 1)),
            ("mask.example.com", Ipv4Addr::new(255, 255, 255, 0)),
        ]);
        f.reverse = HashMap::from([
            (
                Ipv4Addr::new(192, 168, 10, 2),
                "averyveryverylonghostname.example.com",
            ),
            (Ipv4Addr::new(10, 0, 0, 1), "vip.example.com"),
            (
                Ipv4Addr::new(100, 0, 0, 1),
                "abcdefghijklmnopqrstuvwxyz.example.org",
            ),
        ]);
        f
    }
    pub(super) fn services_only() -> FakeNames {
        FakeNames {
            services: ServicesDb::parse(SERVICES),
            hosts: HashMap::new(),
            reverse: HashMap::new(),
        }
    }
}

impl Names for FakeNames {
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.get(name).copied()
    }
    fn service_to_port(&self, name: &str, proto: ServiceProto) -> Option<u16> {
        self.services.port_of(name, proto)
    }
    fn addr_to_host(&self, addr: Ipv4Addr) -> Option<String> {
        self.reverse.get(&addr).map(|s| s.to_string())
    }
    fn port_to_service(&self, port: u16, proto: ServiceProto) -> Option<String> {
        self.services.name_of(port, proto).map(str::to_string)
    }
}

fn argv(line: &str) -> Vec<String> {
    std::iter::once("rvsadm")
        .chain(line.split(' ').filter(|s| !s.is_empty()))
        .map(str::to_string)
        .collect()
}

fn p(line: &str) -> Result<Command, ParseError> {
    parse_with(&argv(line), &FakeNames::new())
}

fn pv(args: &[&str]) -> Result<Command, ParseError> {
    let v: Vec<String> = std::iter::once("rvsadm")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    parse_with(&v, &FakeNames::new())
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey {
        proto: ServiceProto::Tcp,
        addr: ip(addr),
        port,
        fwmark: 0,
    }
}

fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey {
        proto: ServiceProto::Udp,
        ..tcp(addr, port)
    }
}

fn fwm(mark: u32) -> ServiceKey {
    ServiceKey {
        proto: ServiceProto::Fwmark,
        addr: Ipv4Addr::UNSPECIFIED,
        port: 0,
        fwmark: mark,
    }
}

fn spec(key: ServiceKey, sched: &str) -> ServiceSpec {
    ServiceSpec {
        key,
        sched: sched.to_string(),
        flags: 0,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        pe: None,
        ops: false,
    }
}

fn dest(addr: &str, port: u16, fwd: Fwd) -> DestSpec {
    DestSpec {
        addr: ip(addr),
        port,
        fwd,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tunnel: (fwd == Fwd::Tunnel).then_some(TunnelInfo {
            tun_type: TunType::Ipip,
            port: 0,
            csum: TunCsum::NoCsum,
        }),
    }
}

const TRY: &str = "Try `rvsadm -h' or 'rvsadm --help' for more information.";

/// (arguments, message, exit code)
const ERRORS: &[(&str, &str, i32)] = &[
    // popt and the first-option rule
    ("-X", TRY, 255),
    ("--bogus", TRY, 255),
    ("-Q", TRY, 255),
    ("-nL", TRY, 255),
    ("-t 10.0.0.1:80 -A", TRY, 255),
    ("-f 1 -A", TRY, 255),
    ("--start-daemon", TRY, 255),
    ("--tcp-service=10.0.0.1:80 --add-service", TRY, 255),
    ("-- -A", TRY, 255),
    ("--list=", TRY, 255),
    ("extra", TRY, 255),
    ("-L --bogus", "--bogus: unknown option", 255),
    ("-L -Q", "-Q: unknown option", 255),
    ("-LQ", "-LQ: unknown option", 255),
    ("-LnQ", "-LnQ: unknown option", 255),
    ("-L -nQ", "-nQ: unknown option", 255),
    ("-Lnx", "-Lnx: missing argument", 255),
    ("-L -n -x", "-x: missing argument", 255),
    ("-A -t", "-t: missing argument", 255),
    ("-A --tcp-service", "--tcp-service: missing argument", 255),
    ("-A -t 10.0.0.1:80 -s", "-s: missing argument", 255),
    ("-A -t 10.0.0.1:80 -b", "-b: missing argument", 255),
    ("-A -t 10.0.0.1:80 -p 30 -M", "-M: missing argument", 255),
    ("-A --tcp-service 10.0.0.1:80 --scheduler", "--scheduler: missing argument", 255),
    ("-A -t 10.0.0.1:80 -p -1", "-1: unknown option", 255),
    ("-A -t 10.0.0.1:80 --persistent -5", "-5: unknown option", 255),
    ("-A -t 10.0.0.1:80 --sched", "--sched: unknown option", 255),
    ("-A -t 10.0.0.1:80 --sched=rr", "--sched=rr: unknown option", 255),
    ("-A -t 10.0.0.1:80 --per 30", "--per: unknown option", 255),
    ("-A --bogus -t bad", "--bogus: unknown option", 255),
    ("-L --numeric=1", "--numeric=1: option does not take an argument", 255),
    ("-L --stats=yes", "--stats=yes: option does not take an argument", 255),
    ("-L -n=1", "-n=1: option does not take an argument", 255),
    ("-Ln=", "-Ln=: option does not take an argument", 255),
    // a later command letter
    ("-A -t 10.0.0.1:80 -A", "invalid option `-A'", 2),
    ("-A -E -t 10.0.0.1:80", "invalid option `-E'", 2),
    ("-LA", "invalid option `-LA'", 2),
    ("-Lnv", "invalid option `-Lnv'", 2),
    ("-L -v", "invalid option `-v'", 2),
    ("-L -h", "invalid option `-h'", 2),
    ("-L --add-service", "invalid option `--add-service'", 2),
    ("-L -n --set", "invalid option `--set'", 2),
    ("--set 1 2 3 --set", "invalid option `--set'", 2),
    ("-L --nosort -S", "invalid option `-S'", 2),
    ("-add-service", "invalid option `-add-service'", 2),
    // leftovers
    ("-A -t 10.0.0.1:80 extra", "unexpected argument extra", 2),
    ("-A -t 10.0.0.1:80 -p 30 extra", "unexpected argument extra", 2),
    ("-A -t 10.0.0.1:80 -p -- 30", "unexpected argument 30", 2),
    ("-A -t 10.0.0.1:80 -p -", "unexpected argument -", 2),
    ("-A -t 10.0.0.1:80 -", "unexpected argument -", 2),
    ("-A -- -t 10.0.0.1:80", "unexpected argument -t", 2),
    ("-A -s -t 10.0.0.1:80", "unexpected argument 10.0.0.1:80", 2),
    ("-L -n -- -c", "unexpected argument -c", 2),
    ("-L extra", "unexpected argument extra", 2),
    ("-C extra", "unexpected argument extra", 2),
    ("--set 1 2", "--set option requires 3 timeout values", 2),
    ("--set 1 2 3 4", "unexpected argument 4", 2),
    ("--set 1 -n 2 3", "Illegal 'numeric' option with the 'set' command", 2),
    ("--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command", 2),
    ("--set 0 0 2678401", "invalid timeout value `2678401' specified", 2),
    ("--set a 0 0", "invalid timeout value `a' specified", 2),
    // values
    ("-A -t 10.0.0.1:80 -p 0", "invalid timeout value `0' specified", 2),
    ("-A -t 10.0.0.1:80 -p 2678401", "invalid timeout value `2678401' specified", 2),
    ("-A -t 10.0.0.1:80 -p abc", "invalid timeout value `abc' specified", 2),
    ("-A -t 10.0.0.1:80 -p 30x", "invalid timeout value `30x' specified", 2),
    ("-A -u 10.0.0.1:80 -po", "invalid timeout value `o' specified", 2),
    ("-A -t 10.0.0.1:80 -p=", "invalid timeout value `' specified", 2),
    ("-A -t 10.0.0.1:80 --persistent=", "invalid timeout value `' specified", 2),
    ("-A -f 0", "invalid fwmark value `0' specified", 2),
    ("-A -f 4294967296", "invalid fwmark value `4294967296' specified", 2),
    ("-A -f abc", "invalid fwmark value `abc' specified", 2),
    ("-A -f -5", "invalid fwmark value `-5' specified", 2),
    ("-A -t 10.0.0.1:80 -M foo.invalid", "illegal virtual server persistent mask specified", 2),
    ("-A -t 10.0.0.1:80 -M 1.2.3.4.5", "illegal virtual server persistent mask specified", 2),
    ("-A -t 10.0.0.1:99999", "illegal virtual server address[:port] specified", 2),
    ("-A -t 10.0.0.1:65536", "illegal virtual server address[:port] specified", 2),
    ("-A -t 10.0.0.1:nosuchservice", "illegal virtual server address[:port] specified", 2),
    ("-A -t 10.0.0.1:-1", "illegal virtual server address[:port] specified", 2),
    ("-A -t 999.0.0.1:80", "illegal virtual server address[:port] specified", 2),
    ("-A -t 80", "illegal virtual server address[:port] specified", 2),
    ("-A -t :80", "illegal virtual server address[:port] specified", 2),
    ("-A -t 10.0.0.1:", "illegal virtual server address[:port] specified", 2),
    ("-A -t 1.2.3.4:80:90", "illegal virtual server address[:port] specified", 2),
    ("-A -t 1.2.3.4::80", "illegal virtual server address[:port] specified", 2),
    ("-A -t 1.2.3.256:80", "illegal virtual server address[:port] specified", 2),
    ("-A -t 4294967296:80", "illegal virtual server address[:port] specified", 2),
    ("-A -t 1.2.3.4.:80", "illegal virtual server address[:port] specified", 2),
    ("-A -t .1.2.3:80", "illegal virtual server address[:port] specified", 2),
    ("-A -t 0x:80", "illegal virtual server address[:port] specified", 2),
    ("-A -t 09:80", "illegal virtual server address[:port] specified", 2),
    ("-A --sctp-service 10.0.0.1:http", "illegal virtual server address[:port] specified", 2),
    ("-Ats 10.0.0.1:80 rr", "illegal virtual server address[:port] specified", 2),
    ("-A --tcp-service=", "illegal virtual server address[:port] specified", 2),
    ("-A -t bad --bogus", "illegal virtual server address[:port] specified", 2),
    ("-a -t 10.0.0.1:80 -r bad..addr", "illegal real server address[:port] specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4: -m", "illegal real server address[:port] specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 65536x", "illegal weight specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w -1", "illegal weight specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 2147483648", "illegal weight specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -x 2147483648", "illegal u_threshold specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -y -5", "illegal l_threshold specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -i --tun-type foo", "illegal tunnel type specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -i --tun-type gue --tun-port 0", "illegal tunnel port specified", 2),
    ("-L --syncid 500", "illegal syncid specified", 2),
    ("--start-daemon foo", "illegal start-daemon parameter specified", 2),
    ("--stop-daemon foo", "illegal start_daemon specified", 2),
    ("--start-daemon master --syncid 300", "illegal syncid specified", 2),
    ("--start-daemon master --mcast-group 1.2.3.4", "invalid IPv4 mcast-group `1.2.3.4'", 2),
    ("--start-daemon master --mcast-group 224.1", "invalid IPv4 mcast-group `224.1'", 2),
    ("--start-daemon master --mcast-group 1::1", "invalid IPv6 mcast-group `1::1'", 2),
    ("--start-daemon master --sync-maxlen 65508", "illegal sync-maxlen specified", 2),
    ("--start-daemon master --mcast-port 0", "illegal mcast-port specified", 2),
    ("--start-daemon master --mcast-ttl 0", "illegal mcast-ttl specified", 2),
    // scheduler flags
    ("-A -t 10.0.0.1:80 -b sh-port", "incompatible scheduler flag `sh-port'", 2),
    ("-A -t 10.0.0.1:80 -s mh -b sh-port", "incompatible scheduler flag `sh-port'", 2),
    ("-A -t 10.0.0.1:80 -b mh-port", "incompatible scheduler flag `mh-port'", 2),
    ("-A -t 10.0.0.1:80 -s SH -b sh-port", "incompatible scheduler flag `sh-port'", 2),
    ("-A -t 10.0.0.1:80 -b bogus", "invalid scheduler flag `bogus'", 2),
    ("-A -t 10.0.0.1:80 -b FLAG-1", "invalid scheduler flag `FLAG-1'", 2),
    ("-A -t 10.0.0.1:80 -b sh-port,bogus -s sh", "invalid scheduler flag `bogus'", 2),
    ("-A -t 10.0.0.1:80 -b bogus,sh-port", "invalid scheduler flag `bogus'", 2),
    ("-A -t 10.0.0.1:80 -b sh-port,bogus", "incompatible scheduler flag `sh-port'", 2),
    // rvsadm: ipvsadm crashes here.
    ("-A -t 10.0.0.1:80 -b ,", "invalid scheduler flag `,'", 2),
    ("-D -t 10.0.0.1:80 -b bogus", "invalid scheduler flag `bogus'", 2),
    // repeated options
    ("-A -t 10.0.0.1:80 -t 10.0.0.2:80", "multiple 'service-address' options specified", 2),
    ("-A -f 1 -f 2", "multiple 'service-address' options specified", 2),
    ("-A -t 10.0.0.1:80 -f 2", "multiple 'service-address' options specified", 2),
    ("-A -t 10.0.0.1:80 -p 30 -p 40", "multiple 'persistent' options specified", 2),
    ("-A -t 10.0.0.1:80 -p 30 -p", "multiple 'persistent' options specified", 2),
    ("-A -t 10.0.0.1:80 -s rr -s wrr", "multiple 'scheduler' options specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.1.1.1 -w 1 -w 2", "multiple 'weight' options specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -r 1.2.3.5", "multiple 'real-server' options specified", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -g", "multiple 'forwarding-method' options specified", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -m", "multiple 'forwarding-method' options specified", 2),
    ("-L -n -n", "multiple 'numeric' options specified", 2),
    ("-L -c -c", "multiple 'connection' options specified", 2),
    ("-L --stats --stats", "multiple 'stats' options specified", 2),
    ("-L --tun-info --tun-info", "multiple 'tun-info' options specified", 2),
    ("-L --nosort --nosort", "multiple 'nosort' options specified", 2),
    ("-L -n -X -X", "multiple 'exact' options specified", 2),
    ("-A -t 10.0.0.1:80 -b flag-1 -b flag-2", "multiple 'sched-flags' options specified", 2),
    ("-A -t 10.0.0.1:80 -o -o", "multiple 'ops' options specified", 2),
    ("-A -t 10.0.0.1:80 -M 255.255.255.0 -M 255.0.0.0", "multiple 'netmask' options specified", 2),
    ("-A -t 10.0.0.1:80 --pe sip --pe sip", "multiple 'pe' options specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -i --tun-type gue --tun-type gue --tun-port 1", "multiple 'tun-type' options specified", 2),
    ("-a -t 10.0.0.1:80 -r 1.2.3.4 -i --tun-type gue --tun-port 1 --tun-port 2", "multiple 'tun-port' options specified", 2),
    ("-Z -t 10.0.0.1:80 -t 10.0.0.1:80", "multiple 'service-address' options specified", 2),
    // legality table
    ("-A", "You need to supply the 'service-address' option for the 'add-service' command", 2),
    ("-a -t 10.0.0.1:80", "You need to supply the 'real-server' option for the 'add-server' command", 2),
    ("-a -r 192.168.1.1", "You need to supply the 'service-address' option for the 'add-server' command", 2),
    ("-A -t 10.0.0.1:80 -r 1.2.3.4", "Illegal 'real-server' option with the 'add-service' command", 2),
    ("-A -t 10.0.0.1:80 -w 5", "Illegal 'weight' option with the 'add-service' command", 2),
    ("-A -t 10.0.0.1:80 -n", "Illegal 'numeric' option with the 'add-service' command", 2),
    ("-A -t 10.0.0.1:80 -x 5", "Illegal 'u-threshold' option with the 'add-service' command", 2),
    ("-A -t 10.0.0.1:80 -X", "Illegal 'exact' option with the 'add-service' command", 2),
    ("-A -t 10.0.0.1:80 --mcast-interface eth0", "Illegal 'mcast-interface' option with the 'add-service' command", 2),
    ("-D -t 10.0.0.1:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command", 2),
    ("-D -t 10.0.0.1:80 -r 1.2.3.4", "Illegal 'real-server' option with the 'delete-service' command", 2),
    ("-C -n", "Illegal 'numeric' option with the 'flush' command", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -s rr", "Illegal 'scheduler' option with the 'add-server' command", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -p 10", "Illegal 'persistent' option with the 'add-server' command", 2),
    ("-d -t 10.0.0.1:80 -r 192.168.1.1 -w 3", "Illegal 'weight' option with the 'delete-server' command", 2),
    ("-L -s rr", "Illegal 'scheduler' option with the 'list' command", 2),
    ("-L -o", "Illegal 'ops' option with the 'list' command", 2),
    ("-S -c", "Illegal 'connection' option with the 'save' command", 2),
    ("-S --nosort", "Illegal 'nosort' option with the 'save' command", 2),
    ("-S -X", "Illegal 'exact' option with the 'save' command", 2),
    ("-Z -n", "Illegal 'numeric' option with the 'zero' command", 2),
    ("-Z -t 10.0.0.1:80 -r 1.2.3.4", "Illegal 'real-server' option with the 'zero' command", 2),
    ("-R -n", "Illegal 'numeric' option with the 'restore' command", 2),
    ("--stop-daemon master --mcast-interface eth0", "Illegal 'mcast-interface' option with the 'stop-daemon' command", 2),
    ("-L -t 10.0.0.1:80 -c", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2),
    ("-L -c -t 10.0.0.1:80", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2),
    ("-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command", 2),
    ("-L --timeout --daemon", "The option 'daemon' conflicts with the 'timeout' option in the 'list' command", 2),
    ("-L -t 10.0.0.1:80 --timeout", "The option 'timeout' conflicts with the 'service-address' option in the 'list' command", 2),
    ("-L -t 10.0.0.1:80 --daemon", "The option 'daemon' conflicts with the 'service-address' option in the 'list' command", 2),
    ("-L --daemon -c", "The option 'daemon' conflicts with the 'connection' option in the 'list' command", 2),
    ("-L -c --stats", "options conflicts in the list command", 2),
    ("-L --timeout --stats", "options conflicts in the list command", 2),
    ("-L --daemon --rate", "options conflicts in the list command", 2),
    ("-L -c --thresholds", "options conflicts in the list command", 2),
    ("-L --timeout --persistent-conn", "options conflicts in the list command", 2),
    ("-L --daemon --persistent-conn", "options conflicts in the list command", 2),
    // per-command rules
    ("-A -t 10.0.0.1", "Zero port specified for non-persistent service", 2),
    // ipvsadm looks for the port again inside the brackets, so a bracketed IPv4 has none.
    ("-A -t [1.2.3.4]:80", "Zero port specified for non-persistent service", 2),
    ("-A -t ::1", "Zero port specified for non-persistent service", 2),
    ("-A -t [1.2.3.4]80", "illegal virtual server address[:port] specified", 2),
    ("-A -t [1.2.3.4", "illegal virtual server address[:port] specified", 2),
    ("-A -t 10.0.0.1:0", "Zero port specified for non-persistent service", 2),
    ("-E -t 10.0.0.1:0", "Zero port specified for non-persistent service", 2),
    ("-A -t 10.0.0.1:0 -o", "Zero port specified for non-persistent service", 2),
    ("-A -t 10.0.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services", 2),
    ("-A -t 10.0.0.1:80 -op", "One-Packet Scheduling is only for UDP virtual services", 2),
    ("-A --sctp-service 10.0.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services", 2),
    ("-A -t 10.0.0.1:80 -6", "-6 used before -f\n", 2),
    ("-A -t 10.0.0.1:80 -M 24 -6", "-6 used before -f\n", 2),
    ("-A -f 1 -6 -M 129", "illegal ipv6 netmask specified", 2),
    ("-A -f 1 -6 -M 255.0.0.0", "illegal ipv6 netmask specified", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -m --tun-type gue", "Tunnel options conflict with forward method", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 --tun-csum", "Tunnel options conflict with forward method", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type gue", "You need to supply the 'tun-port' option for the 'gue' tunnel type", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-port 6080", "Illegal 'tun-port' option with the 'ipip' tunnel type", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type gue --tun-port 6080 --tun-csum --tun-nocsum", "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type gre --tun-remcsum", "Illegal 'tun-remcsum' option with the 'gre' tunnel type", 2),
    ("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type gre --tun-port 1", "Illegal 'tun-port' option with the 'gre' tunnel type", 2),
    // IPv6: ipvsadm over a kernel interface without IPv6 says exactly this.
    ("-A -t [::1]:80", "Operation not supported with specified address family", 255),
    ("-A -f 1 -6", "Operation not supported with specified address family", 255),
    ("-A -f 1 -6 -M 64", "Operation not supported with specified address family", 255),
    ("-A -f 1 -M 255.0.0.0 -6", "Operation not supported with specified address family", 255),
    ("-a -t 10.0.0.1:80 -r [::1]:80 -m", "Different address family is allowed only for tunneling servers", 2),
    ("-a -t 10.0.0.1:80 -r [::1]:80 -i", "Operation not supported with specified address family", 255),
    ("-L -u [::1]:80", "Operation not supported with specified address family", 1),
    ("-Z -u [::1]:80", "Operation not supported with specified address family", 255),
];

#[test]
fn every_error_message_and_exit_code() {
    for (line, msg, code) in ERRORS {
        let got = p(line);
        assert_eq!(
            got,
            Err(ParseError {
                message: msg.to_string(),
                exit_code: *code
            }),
            "for `{line}`"
        );
    }
}

#[test]
fn errors_with_empty_or_spaced_arguments() {
    let e = |m: &str| {
        Err(ParseError {
            message: m.to_string(),
            exit_code: 2,
        })
    };
    assert_eq!(
        pv(&["-A", "-t", "10.0.0.1:80", "-p", ""]),
        e("invalid timeout value `' specified")
    );
    assert_eq!(
        pv(&["-A", "-t", "10.0.0.1:80", "-M", ""]),
        e("illegal virtual server persistent mask specified")
    );
    assert_eq!(
        pv(&["-A", "-t", ""]),
        e("illegal virtual server address[:port] specified")
    );
    assert_eq!(
        pv(&["-A", "-t", "10.0.0.1:80 "]),
        e("illegal virtual server address[:port] specified")
    );
    assert_eq!(
        pv(&["-A", "-t", " 10.0.0.1:80"]),
        e("illegal virtual server address[:port] specified")
    );
    assert_eq!(pv(&["-L", ""]), e("unexpected argument "));
}

fn add(s: ServiceSpec) -> Result<Command, ParseError> {
    Ok(Command::AddService(s))
}

#[test]
fn add_service_forms() {
    let base = spec(tcp("10.0.0.1", 80), "wlc");
    assert_eq!(p("-A -t 10.0.0.1:80"), add(base.clone()));
    for line in [
        "-At 10.0.0.1:80",
        "-At10.0.0.1:80",
        "-A -t=10.0.0.1:80",
        "-At=10.0.0.1:80",
        "--add-service --tcp-service=10.0.0.1:80",
        "-A -t 10.0.0.1:http",
        "-A -t 10.0.0.1:www",
        "-A -t vip.example.com:80",
        "-A -t 10.1:80",
        "-A -t 0x0a000001:80",
        "-A -t 167772161:80",
        "-A -t 10.0.0.1:0080",
        "-A -t 10.0.0.1:+80",
    ] {
        assert_eq!(p(line), add(base.clone()), "for `{line}`");
    }
    assert_eq!(
        pv(&["-A", "-t", "10.0.0.1 :80"]),
        add(base.clone()),
        "inet_aton stops at whitespace"
    );
    assert_eq!(pv(&["-A", "-t", "10.0.0.1: 80"]), add(base.clone()));
    assert_eq!(
        p("-A -t 010.0.0.1:80"),
        add(spec(tcp("8.0.0.1", 80), "wlc"))
    );
    assert_eq!(p("-A -t 1.2.3.04:80"), add(spec(tcp("1.2.3.4", 80), "wlc")));
    assert_eq!(
        p("-A -t 1.2.65535:80"),
        add(spec(tcp("1.2.255.255", 80), "wlc"))
    );
    assert_eq!(
        p("-A -t 1.16777215:80"),
        add(spec(tcp("1.255.255.255", 80), "wlc"))
    );
    assert_eq!(
        p("-A -t 4294967295:80"),
        add(spec(tcp("255.255.255.255", 80), "wlc"))
    );
    assert_eq!(p("-A -t 0:80"), add(spec(tcp("0.0.0.0", 80), "wlc")));
    assert_eq!(
        p("-A -t [1.2.3.4]:80 -p"),
        add(ServiceSpec {
            persistent: Some(360),
            ..spec(tcp("1.2.3.4", 0), "wlc")
        })
    );
    assert_eq!(
        p("-A -t localhost:80"),
        add(spec(tcp("127.0.0.1", 80), "wlc"))
    );
    assert_eq!(
        p("-A -t 10.0.0.1:65535"),
        add(spec(tcp("10.0.0.1", 65535), "wlc"))
    );
    assert_eq!(
        p("-A -u 10.0.0.1:domain"),
        add(spec(udp("10.0.0.1", 53), "wlc"))
    );
    let sctp = ServiceKey {
        proto: ServiceProto::Sctp,
        ..tcp("10.0.0.1", 5672)
    };
    assert_eq!(p("-A --sctp-service 10.0.0.1:amqp"), add(spec(sctp, "wlc")));
}

#[test]
fn scheduler_persistence_mask_flags_ops() {
    let k = tcp("10.0.0.1", 80);
    let pers = |s: &str, t: u32| ServiceSpec {
        persistent: Some(t),
        ..spec(k, s)
    };
    assert_eq!(p("-A -t 10.0.0.1:80 -s rr -p"), add(pers("rr", 360)));
    assert_eq!(p("-A -t 10.0.0.1:80 -p -s rr"), add(pers("rr", 360)));
    assert_eq!(
        p("-A -t 10.0.0.1:80 --persistent -s rr"),
        add(pers("rr", 360))
    );
    assert_eq!(p("-A -t 10.0.0.1:80 --persistent"), add(pers("wlc", 360)));
    for line in [
        "-A -t 10.0.0.1:80 -p 60",
        "-A -t 10.0.0.1:80 -p60",
        "-A -t 10.0.0.1:80 -p=60",
        "-A -t 10.0.0.1:80 --persistent=60",
        "-A -t 10.0.0.1:80 --persistent 60",
        "-A -t 10.0.0.1:80 -p 060",
    ] {
        assert_eq!(p(line), add(pers("wlc", 60)), "for `{line}`");
    }
    assert_eq!(p("-A -t 10.0.0.1:80 -p 2678400"), add(pers("wlc", 2678400)));
    assert_eq!(p("-A -t 10.0.0.1:80 -p 1"), add(pers("wlc", 1)));
    assert_eq!(
        p("-A -t 10.0.0.1:0 -p"),
        add(ServiceSpec {
            persistent: Some(360),
            ..spec(tcp("10.0.0.1", 0), "wlc")
        })
    );
    // A required value is taken whatever it looks like.
    assert_eq!(p("-A -t 10.0.0.1:80 -s -p"), add(spec(k, "-p")));
    assert_eq!(
        p("-A -t 10.0.0.1:80 --scheduler --persistent"),
        add(spec(k, "--persistent"))
    );
    assert_eq!(p("-A -t10.0.0.1:80 -srr"), add(spec(k, "rr")));
    assert_eq!(p("-A -t 10.0.0.1:80 -s=rr"), add(spec(k, "rr")));
    assert_eq!(
        p("--add-service --tcp-service=10.0.0.1:80 --scheduler=rr"),
        add(spec(k, "rr"))
    );
    // Truncated to 15 bytes; an empty name means the default.
    assert_eq!(
        p("-A -t 10.0.0.1:80 -s verylongschedulername"),
        add(spec(k, "verylongschedul"))
    );
    assert_eq!(
        pv(&["-A", "-t", "10.0.0.1:80", "-s", ""]),
        add(spec(k, "wlc"))
    );
    // -M: inet_aton forms, names, "24" is 0.0.0.24 for IPv4 services.
    let mask = |m: &str| ServiceSpec {
        netmask: ip(m),
        ..spec(k, "wlc")
    };
    assert_eq!(
        p("-A -t 10.0.0.1:80 -M 255.255.255.0"),
        add(mask("255.255.255.0"))
    );
    assert_eq!(p("-A -t 10.0.0.1:80 -M 24"), add(mask("0.0.0.24")));
    assert_eq!(p("-A -t 10.0.0.1:80 -M 0.0.0.0"), add(mask("0.0.0.0")));
    assert_eq!(
        p("-A -t 10.0.0.1:80 -M 255.255.0.255"),
        add(mask("255.255.0.255"))
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -M mask.example.com"),
        add(mask("255.255.255.0"))
    );
    // -b
    let fl = |s: &str, f: u32| ServiceSpec {
        flags: f,
        ..spec(k, s)
    };
    assert_eq!(p("-A -t 10.0.0.1:80 -s sh -b sh-port"), add(fl("sh", 0x10)));
    assert_eq!(p("-A -t 10.0.0.1:80 -b sh-port -s sh"), add(fl("sh", 0x10)));
    assert_eq!(
        p("-A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port"),
        add(fl("sh", 0x18))
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -s mh -b mh-port,mh-fallback"),
        add(fl("mh", 0x18))
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -b flag-1,flag-2,flag-3"),
        add(fl("wlc", 0x38))
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -s sh -b flag-1,flag-2"),
        add(fl("sh", 0x18))
    );
    assert_eq!(p("-A -t 10.0.0.1:80 -b flag-1,"), add(fl("wlc", 0x8)));
    assert_eq!(p("-A -t 10.0.0.1:80 -b ,flag-1"), add(fl("wlc", 0x8)));
    assert_eq!(
        p("-A -t 10.0.0.1:80 -b flag-1,,flag-2"),
        add(fl("wlc", 0x18))
    );
    assert_eq!(
        pv(&["-A", "-t", "10.0.0.1:80", "-b", ""]),
        add(fl("wlc", 0))
    );
    // -o and --pe
    let u = udp("10.0.0.1", 80);
    assert_eq!(
        p("-A -u 10.0.0.1:80 -o"),
        add(ServiceSpec {
            ops: true,
            ..spec(u, "wlc")
        })
    );
    assert_eq!(
        p("-A -u 10.0.0.1:80 -p --ops"),
        add(ServiceSpec {
            ops: true,
            persistent: Some(360),
            ..spec(u, "wlc")
        })
    );
    assert_eq!(
        p("-A -u 10.0.0.1:80 -p 10 -M 255.255.255.0 -o -b flag-2 -s rr"),
        add(ServiceSpec {
            ops: true,
            persistent: Some(10),
            netmask: ip("255.255.255.0"),
            flags: 0x10,
            ..spec(u, "rr")
        })
    );
    assert_eq!(
        p("-A -f 1 -o"),
        add(ServiceSpec {
            ops: true,
            ..spec(fwm(1), "wlc")
        })
    );
    assert_eq!(
        p("-A -t 10.0.0.1:80 -p --pe sip"),
        add(ServiceSpec {
            persistent: Some(360),
            pe: Some("sip".to_string()),
            ..spec(k, "wlc")
        })
    );
    assert_eq!(p("-A -f 4294967295"), add(spec(fwm(u32::MAX), "wlc")));
    assert_eq!(p("-A -f +7"), add(spec(fwm(7), "wlc")));
    // -E is a full replacement with the same defaults.
    assert_eq!(
        p("-E -t 10.0.0.1:80"),
        Ok(Command::EditService(spec(k, "wlc")))
    );
    assert_eq!(p("-D -t 10.0.0.1:80"), Ok(Command::DeleteService(k)));
    assert_eq!(p("-D -f 9"), Ok(Command::DeleteService(fwm(9))));
}

#[test]
fn real_server_forms() {
    let k = tcp("10.0.0.1", 80);
    let a = |d: DestSpec| Ok(Command::AddDest(k, d));
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1"),
        a(dest("192.168.1.1", 80, Fwd::Route))
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1 -m"),
        a(dest("192.168.1.1", 80, Fwd::Masq))
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m"),
        a(dest("192.168.1.1", 8080, Fwd::Masq))
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1:http-alt -m"),
        a(dest("192.168.1.1", 8080, Fwd::Masq))
    );
    // -g and -i force the vport.
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -g"),
        a(dest("192.168.1.1", 80, Fwd::Route))
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -i"),
        a(dest("192.168.1.1", 80, Fwd::Tunnel))
    );
    // The vport is copied when -r is read: before -t there is none.
    assert_eq!(
        p("-a -r 1.2.3.4 -t 10.0.0.1:80 -m"),
        a(dest("1.2.3.4", 0, Fwd::Masq))
    );
    assert_eq!(
        p("-a -r 1.2.3.4 -t 10.0.0.1:80 -g"),
        a(dest("1.2.3.4", 80, Fwd::Route))
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r [1.2.3.4]:90 -m"),
        a(dest("1.2.3.4", 80, Fwd::Masq))
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r localhost -m"),
        a(dest("127.0.0.1", 80, Fwd::Masq))
    );
    let w = |weight: i32| {
        a(DestSpec {
            weight,
            ..dest("1.2.3.4", 80, Fwd::Masq)
        })
    };
    assert_eq!(p("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 0"), w(0));
    assert_eq!(p("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 65535"), w(65535));
    // ipvsadm 1.31 checks the weight against INT_MAX, not 65535.
    assert_eq!(p("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 65536"), w(65536));
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 2147483647"),
        w(i32::MAX)
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 10.0.0.1 -m -x 2147483647 -y 0"),
        a(DestSpec {
            u_threshold: 2147483647,
            ..dest("10.0.0.1", 80, Fwd::Masq)
        })
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 10.0.0.1 -m -x 5 -y 10"),
        a(DestSpec {
            u_threshold: 5,
            l_threshold: 10,
            ..dest("10.0.0.1", 80, Fwd::Masq)
        })
    );
    // fwmark services keep the given port (0 when none) whatever the method.
    assert_eq!(
        p("-a -f 7 -r 192.168.1.1 -m"),
        Ok(Command::AddDest(fwm(7), dest("192.168.1.1", 0, Fwd::Masq)))
    );
    assert_eq!(
        p("-a -f 7 -r 192.168.1.1:99 -g"),
        Ok(Command::AddDest(
            fwm(7),
            dest("192.168.1.1", 99, Fwd::Route)
        ))
    );
    // -e resets an unspecified weight to 1; an explicit :0 port stays.
    assert_eq!(
        p("-e -t 10.0.0.1:80 -r 1.2.3.4:0 -m"),
        Ok(Command::EditDest(k, dest("1.2.3.4", 0, Fwd::Masq)))
    );
    assert_eq!(
        p("-e -t 10.0.0.1:80 -r 192.168.1.1 -w 3 -m"),
        Ok(Command::EditDest(
            k,
            DestSpec {
                weight: 3,
                ..dest("192.168.1.1", 80, Fwd::Masq)
            }
        ))
    );
    assert_eq!(
        p("-d -t 10.0.0.1:80 -r 192.168.1.1"),
        Ok(Command::DeleteDest(k, dest("192.168.1.1", 80, Fwd::Route)))
    );
    // Tunnels.
    let tun = |t: TunType, port: u16, csum: TunCsum| {
        a(DestSpec {
            tunnel: Some(TunnelInfo {
                tun_type: t,
                port,
                csum,
            }),
            ..dest("192.168.1.1", 80, Fwd::Tunnel)
        })
    };
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type gue --tun-port 6080"),
        tun(TunType::Gue, 6080, TunCsum::NoCsum)
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type gue --tun-port 6080 --tun-remcsum"),
        tun(TunType::Gue, 6080, TunCsum::RemCsum)
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type gre --tun-csum"),
        tun(TunType::Gre, 0, TunCsum::Csum)
    );
    assert_eq!(
        p("-a -t 10.0.0.1:80 -r 192.168.1.1 -i --tun-type ipip"),
        tun(TunType::Ipip, 0, TunCsum::NoCsum)
    );
}

fn list(target: ListTarget, format: ListFormat) -> Result<Command, ParseError> {
    Ok(Command::List(ListOpts { target, format }))
}

#[test]
fn list_and_other_commands() {
    let n = ListFormat {
        numeric: true,
        ..ListFormat::default()
    };
    assert_eq!(
        parse_with(&argv(""), &FakeNames::new()),
        list(ListTarget::All, ListFormat::default())
    );
    assert_eq!(
        parse_with(&[], &FakeNames::new()),
        list(ListTarget::All, ListFormat::default())
    );
    for line in [
        "-L -n",
        "-Ln",
        "-l -n",
        "-ln",
        "--list --numeric",
        "-L --numeric",
    ] {
        assert_eq!(p(line), list(ListTarget::All, n), "for `{line}`");
    }
    assert_eq!(p("-lnc"), list(ListTarget::Connections, n));
    assert_eq!(
        p("-L -c --persistent-conn"),
        list(
            ListTarget::Connections,
            ListFormat {
                persistent_conn: true,
                ..ListFormat::default()
            }
        )
    );
    assert_eq!(
        p("-Lnt 10.0.0.1:80"),
        list(ListTarget::Service(tcp("10.0.0.1", 80)), n)
    );
    assert_eq!(
        p("-L -n -f 5 --stats"),
        list(
            ListTarget::Service(fwm(5)),
            ListFormat {
                numeric: true,
                stats: true,
                ..ListFormat::default()
            }
        )
    );
    assert_eq!(
        p("-L --timeout"),
        list(ListTarget::Timeout, ListFormat::default())
    );
    assert_eq!(
        p("-L --daemon"),
        list(ListTarget::Daemon, ListFormat::default())
    );
    assert_eq!(
        p("-L --syncid 5"),
        list(ListTarget::All, ListFormat::default())
    );
    assert_eq!(
        p("-L --sort --sort -X --nosort --tun-info --stats --rate --thresholds"),
        list(
            ListTarget::All,
            ListFormat {
                exact: true,
                nosort: true,
                tun_info: true,
                stats: true,
                rate: true,
                thresholds: true,
                ..ListFormat::default()
            }
        )
    );
    assert_eq!(p("-S"), Ok(Command::Save { numeric: false }));
    assert_eq!(p("-S -n"), Ok(Command::Save { numeric: true }));
    assert_eq!(p("-C"), Ok(Command::Flush));
    assert_eq!(p("-R"), Ok(Command::Restore));
    assert_eq!(p("-Z"), Ok(Command::Zero(None)));
    assert_eq!(
        p("-Z -t 10.0.0.1:80"),
        Ok(Command::Zero(Some(tcp("10.0.0.1", 80))))
    );
    assert_eq!(
        p("--set 1 2 3"),
        Ok(Command::SetTimeouts(TimeoutTriple {
            tcp: 1,
            tcpfin: 2,
            udp: 3
        }))
    );
    assert_eq!(
        p("--set 0 0 2678400"),
        Ok(Command::SetTimeouts(TimeoutTriple {
            tcp: 0,
            tcpfin: 0,
            udp: 2678400
        }))
    );
    let help = Ok(Command::Help {
        program: "rvsadm".to_string(),
    });
    assert_eq!(p("-h"), help);
    assert_eq!(p("--help"), help);
    assert_eq!(p("-h -L --bogus"), help);
    assert_eq!(p("-v"), Ok(Command::Version));
    assert_eq!(p("-v -L"), Ok(Command::Version));
    assert_eq!(
        p("--start-daemon master"),
        Ok(Command::StartDaemon(DaemonSpec {
            state: DaemonState::Master,
            mcast_ifn: "eth0".to_string(),
            syncid: None,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }))
    );
    assert_eq!(
        p("--start-daemon backup --mcast-interface eth1 --syncid 3 --mcast-group ff02::1 --mcast-port 1 --mcast-ttl 255 --sync-maxlen 65507"),
        Ok(Command::StartDaemon(DaemonSpec {
            state: DaemonState::Backup,
            mcast_ifn: "eth1".to_string(),
            syncid: Some(3),
            sync_maxlen: Some(65507),
            mcast_group: Some("ff02::1".to_string()),
            mcast_port: Some(1),
            mcast_ttl: Some(255),
        }))
    );
    assert_eq!(
        p("--stop-daemon backup --syncid 4"),
        Ok(Command::StopDaemon(DaemonSpec {
            state: DaemonState::Backup,
            mcast_ifn: String::new(),
            syncid: Some(4),
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }))
    );
    // The program name comes from argv[0].
    assert_eq!(
        parse_with(
            &["/sbin/ipvsadm".to_string(), "-Q".to_string()],
            &FakeNames::new()
        ),
        Err(ParseError {
            message: "Try `/sbin/ipvsadm -h' or '/sbin/ipvsadm --help' for more information."
                .to_string(),
            exit_code: 255
        })
    );
}

#[test]
fn operation_checks() {
    let ok = |line: &str| check_operation(&p(line).unwrap());
    let enoent = Err(ParseError {
        message: "Scheduler or persistence engine not found".to_string(),
        exit_code: 255,
    });
    for s in rvs_lb::sched::NAMES {
        assert_eq!(ok(&format!("-A -t 10.0.0.1:80 -s {s}")), Ok(()), "{s}");
    }
    assert_eq!(ok("-A -t 10.0.0.1:80"), Ok(()));
    assert_eq!(ok("-A -t 10.0.0.1:80 -s bogus"), enoent);
    assert_eq!(ok("-E -t 10.0.0.1:80 -s none"), enoent);
    assert_eq!(ok("-A -t 10.0.0.1:80 -p --pe sip"), enoent);
    assert_eq!(
        ok("-a -t 10.0.0.1:80 -r 10.0.0.1 -m -x 5 -y 10"),
        Err(ParseError {
            message: "Numerical result out of range".to_string(),
            exit_code: 255,
        })
    );
    assert_eq!(ok("-a -t 10.0.0.1:80 -r 10.0.0.1 -m -x 10 -y 5"), Ok(()));
    assert_eq!(ok("-D -t 10.0.0.1:80"), Ok(()));
}

#[test]
fn inet_aton_forms() {
    let cases: &[(&str, Option<&str>)] = &[
        ("1.2.3.4", Some("1.2.3.4")),
        ("10.1", Some("10.0.0.1")),
        ("10.1.2", Some("10.1.0.2")),
        ("0x7f.1", Some("127.0.0.1")),
        ("0X7F000001", Some("127.0.0.1")),
        ("017700000001", Some("127.0.0.1")),
        ("0", Some("0.0.0.0")),
        ("1.2.3.4 trailing", Some("1.2.3.4")),
        ("1.2.3.4\t", Some("1.2.3.4")),
        ("", None),
        (" 1.2.3.4", None),
        ("1.2.3.4x", None),
        ("256.1.1.1", None),
        ("1.2.3.4.5", None),
        ("1..2", None),
        ("08", None),
        ("0x", None),
        ("0x100000000", None),
        ("99999999999999999999", None),
        ("1.2.65536", None),
        ("1.16777216", None),
        ("-1", None),
    ];
    for (s, want) in cases {
        assert_eq!(inet_aton(s), want.map(ip), "for {s:?}");
    }
}

/// rvs extras (no ipvsadm equivalent).
#[test]
fn mark_rule_commands() {
    let rule = |mark, proto, addr: &str, lo, hi| MarkRuleEntry {
        mark,
        proto,
        vaddr: ip(addr),
        port_lo: lo,
        port_hi: hi,
    };
    let fail = |m: &str| {
        Err(ParseError {
            message: m.to_string(),
            exit_code: 2,
        })
    };
    assert_eq!(
        p("--add-mark -f 7 -t 10.0.0.1:8000-8010"),
        Ok(Command::AddMarkRule(rule(
            7,
            ServiceProto::Tcp,
            "10.0.0.1",
            8000,
            8010
        )))
    );
    assert_eq!(
        p("--del-mark --udp-service 10.0.0.1:53 --fwmark-service 9"),
        Ok(Command::DeleteMarkRule(rule(
            9,
            ServiceProto::Udp,
            "10.0.0.1",
            53,
            53
        )))
    );
    // Names resolve like -t; no port means every port.
    assert_eq!(
        p("--add-mark -f 1 -t vip.example.com:http"),
        Ok(Command::AddMarkRule(rule(
            1,
            ServiceProto::Tcp,
            "10.0.0.1",
            80,
            80
        )))
    );
    assert_eq!(
        p("--add-mark -f 1 -u 10.0.0.1"),
        Ok(Command::AddMarkRule(rule(
            1,
            ServiceProto::Udp,
            "10.0.0.1",
            0,
            65535
        )))
    );
    assert_eq!(p("--list-marks"), Ok(Command::ListMarkRules));
    assert_eq!(p("--list-marks -n"), fail("unexpected argument -n"));
    assert_eq!(
        p("--add-mark -f7 -t 10.0.0.1"),
        fail("unexpected argument -f7")
    );
    assert_eq!(
        p("--add-mark -f 0 -t 10.0.0.1"),
        fail("invalid fwmark value `0' specified")
    );
    assert_eq!(
        p("--add-mark -f 1 -f 2 -t 10.0.0.1"),
        fail("multiple 'fwmark-service' options specified")
    );
    assert_eq!(
        p("--add-mark -f 1 -t 10.0.0.1 -u 10.0.0.1"),
        fail("multiple 'service-address' options specified")
    );
    for bad in [
        "10.0.0.1:80-70",
        "10.0.0.1:",
        "80",
        "10.0.0.1:1-x",
        "[::1]:80",
    ] {
        assert_eq!(
            p(&format!("--add-mark -f 1 -t {bad}")),
            fail("illegal mark rule address[:port[-port]] specified"),
            "{bad}"
        );
    }
    assert_eq!(
        p("--del-mark -f 1"),
        fail("You need to supply the 'service-address' option for the 'del-mark' command")
    );
    assert_eq!(
        p("--add-mark -f"),
        Err(ParseError {
            message: "-f: missing argument".to_string(),
            exit_code: 255
        })
    );
    // Only as the first argument: elsewhere it is an unknown option, as in ipvsadm.
    assert_eq!(p("-L --list-marks").map_err(|e| e.exit_code), Err(255));
}
