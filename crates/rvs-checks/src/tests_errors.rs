//! Each refusal names the right file, line and keyword.

use crate::*;

fn err(text: &str) -> ParseError {
    match parse_str(text, "keepalived.conf") {
        Err(e) => e,
        Ok(c) => panic!("accepted: {c:?}"),
    }
}

fn at(text: &str, line: usize, keyword: &str, msg_part: &str) {
    let e = err(text);
    assert_eq!(
        (e.file.as_str(), e.line, e.keyword.as_str()),
        ("keepalived.conf", line, keyword),
        "{e}"
    );
    assert!(e.msg.contains(msg_part), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("keepalived.conf:{line}: {keyword}: ")),
        "{e}"
    );
}

const VS: &str = "virtual_server 10.0.0.1 80 {\n";

#[test]
fn bad_ip_exact_message() {
    let e = err("\nvirtual_server 10.0.0.1 80 {\n real_server 1.2.3.400 80\n}\n");
    assert_eq!(
        e.to_string(),
        "keepalived.conf:3: real_server: \"1.2.3.400\" is not an IPv4 address"
    );
}

#[test]
fn errors() {
    at(
        &format!("{VS} real_server 10.1.0.1 80 {{\n  TCP_CHECK {{\n   bogus 1\n }}\n }}\n}}\n"),
        4,
        "bogus",
        "unknown keyword in TCP_CHECK",
    );
    at(
        &format!("{VS} lb_frob rr\n}}\n"),
        2,
        "lb_frob",
        "unknown keyword in virtual_server",
    );
    at(
        &format!("{VS} real_server 10.1.0.1 80 {{\n weight\n }}\n}}\n"),
        3,
        "weight",
        "missing value",
    );
    at(
        &format!("{VS} real_server 10.1.0.1 99999\n}}\n"),
        2,
        "real_server",
        "not a port",
    );
    at(
        &format!("{VS} delay_loop soon\n real_server 10.1.0.1 80\n}}\n"),
        2,
        "delay_loop",
        "not a duration",
    );
    at(
        &format!("{VS} real_server 10.1.0.1 80\n real_server 10.1.0.1 80\n}}\n"),
        3,
        "real_server",
        "already a real server",
    );
    at(
        &format!(
            "{VS} real_server 10.1.0.1 80 {{\n HTTP_GET {{\n connect_timeout 1\n }}\n }}\n}}\n"
        ),
        3,
        "HTTP_GET",
        "no url",
    );
    at(
        &format!("{VS} lb_kind DR\n real_server 10.1.0.1 80\n}}\n"),
        2,
        "lb_kind",
        "NAT (masquerading) only",
    );
    at(
        &format!("{VS} lvs_method TUN\n real_server 10.1.0.1 80\n}}\n"),
        2,
        "lvs_method",
        "NAT (masquerading) only",
    );
    at(
        &format!("{VS} lb_algo fastest\n real_server 10.1.0.1 80\n}}\n"),
        2,
        "lb_algo",
        "unknown scheduler",
    );
    at(
        "virtual_server group NOPE {\n real_server 10.1.0.1 80\n}\n",
        1,
        "virtual_server",
        "not defined",
    );
    at(
        &format!("{VS} real_server 10.1.0.1 80 {{\n"),
        2,
        "real_server",
        "never closed",
    );
    at("global_defs {\n}\n}\n", 3, "}", "unexpected '}'");
    at("\n{\n", 2, "{", "unexpected '{'");
    at(&format!("{VS}}}\n"), 1, "virtual_server", "no real_server");
    at(&format!("{VS} real_server 10.1.0.1 80 {{\n HTTP_GET {{\n url {{\n path /\n digest 12\n }}\n }}\n }}\n}}\n"), 6, "digest", "MD5");
    at(&format!("{VS} real_server 10.1.0.1 80 {{\n HTTP_GET {{\n url {{\n path /\n status_code 700\n }}\n }}\n }}\n}}\n"), 6, "status_code", "100..=599");
    at(
        &format!("{VS} lb_algo rr\n sh-port\n real_server 10.1.0.1 80\n}}\n"),
        1,
        "virtual_server",
        "incompatible",
    );
    at("frobnicate {\n}\n", 1, "frobnicate", "unknown top-level");
    at("$X=1\n", 1, "$X=1", "not supported yet");
    at(
        &format!(
            "{VS} real_server 10.1.0.1 80 {{\n MISC_CHECK {{\n misc_path \"/bin/x\n }}\n }}\n}}\n"
        ),
        4,
        "misc_path",
        "unterminated quote",
    );
    at(&format!("{VS} real_server 10.1.0.1 80 {{\n MISC_CHECK {{\n connect_port 1\n misc_path x\n }}\n }}\n}}\n"), 4, "connect_port", "without a connection");
    at(
        &format!("{VS} real_server ::1 80\n}}\n"),
        2,
        "real_server",
        "IPv6 is not supported yet",
    );
    at("include\n", 1, "include", "exactly one");
}
