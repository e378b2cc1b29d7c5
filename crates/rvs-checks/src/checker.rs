//! real_server blocks and the checkers inside them (keepalived/check/check_{tcp,http,misc,udp,
//! dns}.c and install_checker_common_keywords() in check_api.c).

use std::time::Duration;

use crate::lex::Node;
use crate::model::*;
use crate::parse::Cx;
use crate::ParseError;

/// Checkers keepalived has and rvs does not parse yet.
const UNSUPPORTED_CHECKERS: &[&str] = &["SMTP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK"];

pub fn real_server(cx: &Cx, n: &Node, vs: &VirtualServer) -> Result<RealServer, ParseError> {
    let (addr, port) = match cx.args(n).as_slice() {
        [ip, port] => (cx.ipv4(n, ip)?, cx.port(n, port)?),
        [ip] => {
            cx.ipv4(n, ip)?;
            return Err(cx.err(n, "missing port"));
        }
        [] => return Err(cx.err(n, "missing address")),
        _ => return Err(cx.err(n, "expects IP PORT")),
    };
    let mut rs = RealServer {
        addr,
        port,
        at: cx.at(n),
        weight: vs.weight,
        uthreshold: None,
        lthreshold: None,
        inhibit_on_failure: vs.inhibit_on_failure,
        alpha: vs.alpha,
        notify_up: None,
        notify_down: None,
        virtualhost: None,
        delay_loop: vs.delay_loop,
        connect_timeout: vs.connect_timeout,
        retry: vs.retry,
        delay_before_retry: vs.delay_before_retry,
        warmup: vs.warmup,
        checkers: Vec::new(),
    };
    // A real_server without a block is valid keepalived: no checker, always up.
    let body = n.block.as_deref().unwrap_or(&[]);
    let mut check_nodes = Vec::new();
    for k in body {
        match k.keyword() {
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "UDP_CHECK" | "DNS_CHECK" => {
                check_nodes.push(k)
            }
            c if UNSUPPORTED_CHECKERS.contains(&c) => {
                return Err(cx.err(k, "checker not supported yet"))
            }
            "track_file" | "track_bfd" => return Err(cx.err(k, "not supported yet")),
            // rs_weight_handler(): 0..=IPVS_WEIGHT_LIMIT.
            "weight" => rs.weight = cx.u32_in(k, cx.one(k)?, 0, MAX_WEIGHT)?,
            "lvs_method" => {
                cx.lb_kind(k)?;
            }
            "uthreshold" => rs.uthreshold = Some(cx.u32_in(k, cx.one(k)?, 0, u32::MAX)?),
            "lthreshold" => rs.lthreshold = Some(cx.u32_in(k, cx.one(k)?, 0, u32::MAX)?),
            "inhibit_on_failure" => rs.inhibit_on_failure = cx.boolean(k)?,
            "alpha" => rs.alpha = cx.boolean(k)?,
            "notify_up" => rs.notify_up = Some(cx.script(k)?),
            "notify_down" => rs.notify_down = Some(cx.script(k)?),
            "retry" => rs.retry = Some(cx.u32_in(k, cx.one(k)?, 1, u32::MAX)?),
            "delay_before_retry" => rs.delay_before_retry = Some(cx.timer(k, cx.one(k)?, 0)?),
            "warmup" => rs.warmup = Some(cx.timer(k, cx.one(k)?, 0)?),
            "connect_timeout" => rs.connect_timeout = cx.timer(k, cx.one(k)?, 1)?,
            "delay_loop" => rs.delay_loop = cx.timer(k, cx.one(k)?, 1)?,
            "smtp_alert" => {
                cx.boolean(k)?;
            }
            "snmp_name" => {
                cx.one(k)?;
            }
            "virtualhost" => rs.virtualhost = Some(cx.one(k)?.to_string()),
            _ => return Err(cx.err(k, "unknown keyword in real_server")),
        }
    }
    for k in check_nodes {
        let c = checker(cx, k, &rs)?;
        rs.checkers.push(c);
    }
    Ok(rs)
}

/// Checker-level values before inheritance.
#[derive(Default)]
struct Own {
    connect_ip: Option<std::net::Ipv4Addr>,
    connect_port: Option<u16>,
    bindto: Option<std::net::Ipv4Addr>,
    bind_port: Option<u16>,
    bind_if: Option<String>,
    fwmark: Option<u32>,
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    warmup: Option<Duration>,
    delay_loop: Option<Duration>,
    alpha: Option<bool>,
    log_all_failures: bool,
}

/// A common keyword: Ok(true) when `k` was one.
fn common(cx: &Cx, k: &Node, o: &mut Own, connection: bool) -> Result<bool, ParseError> {
    let conn_kw = matches!(
        k.keyword(),
        "connect_ip"
            | "connect_port"
            | "bindto"
            | "bind_port"
            | "bind_if"
            | "connect_timeout"
            | "fwmark"
    );
    if conn_kw && !connection {
        return Err(cx.err(k, "not valid in a checker without a connection"));
    }
    match k.keyword() {
        "connect_ip" => o.connect_ip = Some(cx.ipv4(k, cx.one(k)?)?),
        "connect_port" => o.connect_port = Some(cx.port(k, cx.one(k)?)?),
        "bindto" => o.bindto = Some(cx.ipv4(k, cx.one(k)?)?),
        "bind_port" => o.bind_port = Some(cx.port(k, cx.one(k)?)?),
        "bind_if" => o.bind_if = Some(cx.one(k)?.to_string()),
        "fwmark" => o.fwmark = Some(cx.u32_in(k, cx.one(k)?, 0, u32::MAX)?),
        "connect_timeout" => o.connect_timeout = Some(cx.timer(k, cx.one(k)?, 1)?),
        // retry_handler() (check_api.c): 0 allowed at checker level.
        "retry" => o.retry = Some(cx.u32_in(k, cx.one(k)?, 0, u32::MAX)?),
        "delay_before_retry" => o.delay_before_retry = Some(cx.timer(k, cx.one(k)?, 0)?),
        "warmup" => o.warmup = Some(cx.timer(k, cx.one(k)?, 0)?),
        "delay_loop" => o.delay_loop = Some(cx.timer(k, cx.one(k)?, 1)?),
        "alpha" => o.alpha = Some(cx.boolean(k)?),
        "log_all_failures" => o.log_all_failures = cx.boolean(k)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn checker(cx: &Cx, n: &Node, rs: &RealServer) -> Result<Checker, ParseError> {
    let body = cx.block(n)?;
    if !cx.args(n).is_empty() {
        return Err(cx.err(n, "takes no value before its block"));
    }
    let mut own = Own::default();
    let kw = n.keyword();
    // Per-type defaults: queue_checker() (check_api.c) retry 1, delay_before_retry 1 s;
    // http_get_handler() 3 s; misc_check_handler() retry 0; dns_check_handler() retry 3
    // (DNS_DEFAULT_RETRY) and delay_before_retry 0 meaning "the delay_loop".
    let (default_retry, default_dbr) = match kw {
        "HTTP_GET" | "SSL_GET" => (1, Some(Duration::from_secs(3))),
        "MISC_CHECK" => (0, Some(Duration::from_secs(1))),
        "DNS_CHECK" => (3, None),
        _ => (1, Some(Duration::from_secs(1))),
    };
    let kind = match kw {
        "TCP_CHECK" => {
            for k in body {
                if !common(cx, k, &mut own, true)? {
                    return Err(cx.err(k, "unknown keyword in TCP_CHECK"));
                }
            }
            CheckKind::Tcp
        }
        "HTTP_GET" | "SSL_GET" => CheckKind::Http(http(cx, n, body, &mut own)?),
        "MISC_CHECK" => CheckKind::Misc(misc(cx, n, body, &mut own)?),
        "UDP_CHECK" => CheckKind::Udp(udp(cx, body, &mut own)?),
        _ => CheckKind::Dns(dns(cx, body, &mut own)?),
    };
    // validate_check_config() (check_data.c): checker, else real server (which already holds
    // the virtual server's value when it has none of its own), else the type's default.
    let delay_loop = own.delay_loop.unwrap_or(rs.delay_loop);
    let common = Common {
        connect_ip: own.connect_ip.unwrap_or(rs.addr),
        connect_port: own.connect_port.unwrap_or(rs.port),
        bindto: own.bindto,
        bind_port: own.bind_port,
        bind_if: own.bind_if,
        fwmark: own.fwmark,
        connect_timeout: own.connect_timeout.unwrap_or(rs.connect_timeout),
        retry: own.retry.or(rs.retry).unwrap_or(default_retry),
        delay_before_retry: own
            .delay_before_retry
            .or(rs.delay_before_retry)
            .or(default_dbr)
            .unwrap_or(delay_loop),
        warmup: own.warmup.or(rs.warmup).unwrap_or(delay_loop),
        delay_loop,
        alpha: own.alpha.unwrap_or(rs.alpha),
        log_all_failures: own.log_all_failures,
    };
    Ok(Checker {
        kind,
        common,
        at: cx.at(n),
    })
}

fn http(cx: &Cx, n: &Node, body: &[Node], own: &mut Own) -> Result<HttpCheck, ParseError> {
    let tls = n.keyword() == "SSL_GET";
    let mut h = HttpCheck {
        tls,
        urls: Vec::new(),
        virtualhost: None,
        http_protocol: None,
    };
    for k in body {
        if common(cx, k, own, true)? {
            continue;
        }
        match k.keyword() {
            // Deprecated synonym of retry (http_get_retry_handler()), 0 allowed.
            "nb_get_retry" => own.retry = Some(cx.u32_in(k, cx.one(k)?, 0, u32::MAX)?),
            "virtualhost" => h.virtualhost = Some(cx.one(k)?.to_string()),
            "http_protocol" => {
                h.http_protocol = Some(match cx.one(k)? {
                    "1.0" => HttpProtocol::V1_0,
                    "1.1" => HttpProtocol::V1_1,
                    "1.0C" | "1.0c" => HttpProtocol::V1_0C,
                    v => return Err(cx.err(k, format!("unknown HTTP version \"{v}\""))),
                })
            }
            "url" => h.urls.push(url(cx, k, tls)?),
            "enable_sni" | "sni_name" | "fast_recovery" | "tls_compliant" => {
                return Err(cx.err(k, "not supported yet"))
            }
            _ => return Err(cx.err(k, format!("unknown keyword in {}", n.keyword()))),
        }
    }
    if h.urls.is_empty() {
        return Err(cx.err(n, "has no url block"));
    }
    Ok(h)
}

fn url(cx: &Cx, n: &Node, tls: bool) -> Result<Url, ParseError> {
    let body = cx.block(n)?;
    let mut u = Url {
        path: String::new(),
        digest: None,
        status_codes: Vec::new(),
        virtualhost: None,
    };
    let mut path = None;
    for k in body {
        match k.keyword() {
            "path" => path = Some(cx.one(k)?.to_string()),
            "digest" => u.digest = Some(digest(cx, k, cx.one(k)?)?),
            "status_code" => {
                cx.no_block(k)?;
                let codes = cx.args(k);
                if codes.is_empty() {
                    return Err(cx.err(k, "missing value"));
                }
                // status_code_handler(): codes or LOW-HIGH ranges, each in 100..=599.
                for c in codes {
                    let (lo, hi) = c.split_once('-').unwrap_or((c, c));
                    let p = |s: &str| s.parse::<u16>().ok().filter(|v| (100..=599).contains(v));
                    match (p(lo), p(hi)) {
                        (Some(lo), Some(hi)) if lo <= hi => u.status_codes.push((lo, hi)),
                        _ => {
                            return Err(cx.err(
                                k,
                                format!("\"{c}\" is not a status code or range in 100..=599"),
                            ))
                        }
                    }
                }
            }
            "virtualhost" => u.virtualhost = Some(cx.one(k)?.to_string()),
            "tls_compliant" if tls => return Err(cx.err(k, "not supported yet")),
            r if r.starts_with("regex") => return Err(cx.err(k, "not supported yet")),
            _ => return Err(cx.err(k, "unknown keyword in url")),
        }
    }
    // keepalived ignores a url without path (url_check()); here it is an error.
    u.path = path.ok_or_else(|| cx.err(n, "has no path"))?;
    if u.status_codes.is_empty() {
        u.status_codes.push(DEFAULT_STATUS_CODES);
    }
    Ok(u)
}

fn digest(cx: &Cx, k: &Node, s: &str) -> Result<[u8; 16], ParseError> {
    let bad = || {
        cx.err(
            k,
            format!("\"{s}\" is not an MD5 digest (32 hex characters)"),
        )
    };
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn misc(cx: &Cx, n: &Node, body: &[Node], own: &mut Own) -> Result<MiscCheck, ParseError> {
    let mut m = MiscCheck {
        misc_path: String::new(),
        misc_timeout: None,
        misc_dynamic: false,
        user: None,
    };
    let mut path = None;
    for k in body {
        if common(cx, k, own, false)? {
            continue;
        }
        match k.keyword() {
            "misc_path" => path = Some(cx.script(k)?),
            // misc_timeout_handler(): whole seconds, 0..=UINT_MAX / TIMER_HZ.
            "misc_timeout" => {
                m.misc_timeout = Some(cx.u32_in(k, cx.one(k)?, 0, u32::MAX / 1_000_000)?)
            }
            "misc_dynamic" => {
                cx.none(k)?;
                m.misc_dynamic = true
            }
            "user" => {
                cx.no_block(k)?;
                let a = cx.args(k);
                if a.is_empty() || a.len() > 2 {
                    return Err(cx.err(k, "expects USER [GROUP]"));
                }
                m.user = Some(a.join(" "));
            }
            _ => return Err(cx.err(k, "unknown keyword in MISC_CHECK")),
        }
    }
    m.misc_path = path.ok_or_else(|| cx.err(n, "has no misc_path"))?;
    Ok(m)
}

/// keepalived's read_hex_str(): hex bytes, spaces allowed between them.
fn hex(cx: &Cx, k: &Node) -> Result<Vec<u8>, ParseError> {
    let s: String = cx.args(k).concat();
    let bad = || cx.err(k, format!("\"{s}\" is not a hex string"));
    if s.is_empty() || s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    (0..s.len() / 2)
        .map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

fn udp(cx: &Cx, body: &[Node], own: &mut Own) -> Result<UdpCheck, ParseError> {
    let mut u = UdpCheck {
        max_reply_length: 255,
        ..UdpCheck::default()
    };
    for k in body {
        if common(cx, k, own, true)? {
            continue;
        }
        match k.keyword() {
            "payload" => u.payload = Some(hex(cx, k)?),
            "require_reply" => {
                cx.no_block(k)?;
                // With no value: any reply will do.
                u.require_reply = Some(if cx.args(k).is_empty() {
                    Vec::new()
                } else {
                    hex(cx, k)?
                });
            }
            "min_reply_length" => u.min_reply_length = cx.u32_in(k, cx.one(k)?, 0, 65535)? as u16,
            "max_reply_length" => u.max_reply_length = cx.u32_in(k, cx.one(k)?, 0, 65535)? as u16,
            _ => return Err(cx.err(k, "unknown keyword in UDP_CHECK")),
        }
    }
    Ok(u)
}

const DNS_TYPES: &[&str] = &[
    "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY",
];

fn dns(cx: &Cx, body: &[Node], own: &mut Own) -> Result<DnsCheck, ParseError> {
    let mut d = DnsCheck {
        qtype: "SOA".into(),
        name: String::new(),
    };
    for k in body {
        if common(cx, k, own, true)? {
            continue;
        }
        match k.keyword() {
            "type" => {
                let t = cx.one(k)?;
                // dns_type_lookup() compares case-insensitively.
                match DNS_TYPES.iter().find(|x| x.eq_ignore_ascii_case(t)) {
                    Some(x) => d.qtype = x.to_string(),
                    None => return Err(cx.err(k, format!("unknown DNS type \"{t}\""))),
                }
            }
            "name" => {
                let name = cx.one(k)?;
                if (name.starts_with('.') && name != ".") || name.contains("..") {
                    return Err(cx.err(k, format!("\"{name}\" has an empty label")));
                }
                d.name = name.to_string();
            }
            _ => return Err(cx.err(k, "unknown keyword in DNS_CHECK")),
        }
    }
    Ok(d)
}
