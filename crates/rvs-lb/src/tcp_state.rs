//! The IPVS TCP state machine (net/netfilter/ipvs/ip_vs_proto_tcp.c, mainline `tcp_states[]`).
//!
//! IPVS does not follow TCP precisely: it only needs to know when a connection entry may expire
//! and whether it counts as active. The transition is a table lookup indexed by direction, the
//! first matching event of the segment (RST, then SYN, then FIN, then ACK) and the current state.
//! A segment carrying none of those flags moves the entry to CLOSE.
//! The `secure_tcp` (`tcp_states_dos[]`) variant is not implemented: rvs has no drop-entry
//! defence mode.

/// IPVS TCP connection states, numbered as the kernel's `IP_VS_TCP_S_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

/// Number of TCP states (`IP_VS_TCP_S_LAST`).
pub const N_TCP_STATES: usize = 11;

/// Default `tcp_timeouts[]` in seconds, indexed by [`TcpState`].
pub const DEFAULT_TCP_TIMEOUTS: [u32; N_TCP_STATES] = [
    2,       // NONE
    15 * 60, // ESTABLISHED
    2 * 60,  // SYN_SENT
    60,      // SYN_RECV
    2 * 60,  // FIN_WAIT
    2 * 60,  // TIME_WAIT
    10,      // CLOSE
    60,      // CLOSE_WAIT
    30,      // LAST_ACK
    2 * 60,  // LISTEN
    120,     // SYNACK
];

/// `IP_VS_UDP_S_NORMAL` timeout in seconds.
pub const DEFAULT_UDP_TIMEOUT: u32 = 5 * 60;

/// The state name UDP connections show in connection listings (`udp_state_name_table`).
pub const UDP_STATE_NAME: &str = "UDP";

impl TcpState {
    pub const ALL: [TcpState; N_TCP_STATES] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The name the kernel prints in `/proc/net/ip_vs_conn` and `ipvsadm -L -c`.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// `tcp_state_active_table`: connections in these states count as ActiveConn.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Inverse of `self as u8`; out-of-range values map to `None` (the state of a fresh entry).
    pub fn from_u8(v: u8) -> TcpState {
        match TcpState::ALL.get(v as usize) {
            Some(s) => *s,
            None => TcpState::None,
        }
    }
}

/// Which way a segment travels relative to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpDir {
    /// Client to real server (rows 0-3).
    Input,
    /// Real server to client (rows 4-7).
    Output,
    /// Client to server while no reply has been seen on a non-NAT connection (rows 8-11).
    /// rvs only does NAT, so it never selects this table, but it is kept exact.
    InputOnly,
}

/// TCP header flag bits (byte 13 of the TCP header).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// `tcp_state_idx()`: RST is checked first, then SYN, FIN, ACK. `None` when none is set.
pub fn event_index(tcp_flags: u8) -> Option<usize> {
    if tcp_flags & flags::RST != 0 {
        Some(3)
    } else if tcp_flags & flags::SYN != 0 {
        Some(0)
    } else if tcp_flags & flags::FIN != 0 {
        Some(1)
    } else if tcp_flags & flags::ACK != 0 {
        Some(2)
    } else {
        None
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// Mainline `tcp_states[]`: 12 rows (INPUT syn/fin/ack/rst, OUTPUT ..., INPUT_ONLY ...) by 11
/// current states (sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA).
#[rustfmt::skip]
const TCP_STATES: [[TcpState; N_TCP_STATES]; 12] = [
    // INPUT
    /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    // OUTPUT
    /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    // INPUT_ONLY
    /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// `set_tcp_state()`'s table step: the state after a segment with `tcp_flags` travelling `dir`.
pub fn next_state(current: TcpState, dir: TcpDir, tcp_flags: u8) -> TcpState {
    let off = match dir {
        TcpDir::Input => 0,
        TcpDir::Output => 4,
        TcpDir::InputOnly => 8,
    };
    match event_index(tcp_flags) {
        // The table is 12 x 11 and both indexes are in range by construction.
        Some(ev) => TCP_STATES[off + ev][current.index()],
        None => TcpState::Close,
    }
}

/// `true` when the segment would make the scheduler create a connection: SYN without RST
/// (`tcp_conn_schedule` without `sloppy_tcp`).
pub fn is_syn_without_rst(tcp_flags: u8) -> bool {
    tcp_flags & (flags::SYN | flags::RST) == flags::SYN
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;
    use TcpState::{None as NO, SynAck as SA};

    fn parse(s: &str) -> TcpState {
        match s {
            "NO" => NO,
            "ES" => ES,
            "SS" => SS,
            "SR" => SR,
            "FW" => FW,
            "TW" => TW,
            "CL" => CL,
            "CW" => CW,
            "LA" => LA,
            "LI" => LI,
            "SA" => SA,
            other => panic!("bad state {other}"),
        }
    }

    /// The reference tables written out independently as text, one row per (dir, event).
    const EXPECTED: [(TcpDir, u8, &str); 12] = [
        (TcpDir::Input, SYN, "SR ES ES SR SR SR SR SR SR SR SR"),
        (TcpDir::Input, FIN, "CL CW SS TW TW TW CL CW LA LI TW"),
        (TcpDir::Input, ACK, "ES ES SS ES FW TW CL CW CL LI ES"),
        (TcpDir::Input, RST, "CL CL CL SR CL CL CL CL LA LI SR"),
        (TcpDir::Output, SYN, "SS ES SS SR SS SS SS SS SS LI SR"),
        (TcpDir::Output, FIN, "TW FW SS TW FW TW CL TW LA LI TW"),
        (TcpDir::Output, ACK, "ES ES SS ES FW TW CL CW LA ES ES"),
        (TcpDir::Output, RST, "CL CL SS CL CL TW CL CL CL CL CL"),
        (TcpDir::InputOnly, SYN, "SR ES ES SR SR SR SR SR SR SR SR"),
        (TcpDir::InputOnly, FIN, "CL FW SS TW FW TW CL CW LA LI TW"),
        (TcpDir::InputOnly, ACK, "ES ES SS ES FW TW CL CW CL LI ES"),
        (TcpDir::InputOnly, RST, "CL CL CL SR CL CL CL CL LA LI CL"),
    ];

    #[test]
    fn every_cell_matches_the_reference() {
        let mut checked = 0;
        for (dir, flag, row) in EXPECTED {
            let want: Vec<TcpState> = row.split(' ').map(parse).collect();
            assert_eq!(want.len(), N_TCP_STATES);
            for (cur, exp) in TcpState::ALL.iter().zip(want) {
                assert_eq!(
                    next_state(*cur, dir, flag),
                    exp,
                    "{dir:?} {flag:#x} from {cur:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 132);
    }

    #[test]
    fn event_priority_is_rst_syn_fin_ack() {
        // RST wins over everything.
        assert_eq!(event_index(RST | SYN | FIN | ACK), Some(3));
        // SYN wins over FIN and ACK (SYN+ACK is a SYN event).
        assert_eq!(event_index(SYN | ACK), Some(0));
        assert_eq!(event_index(SYN | FIN), Some(0));
        // FIN wins over ACK.
        assert_eq!(event_index(FIN | ACK), Some(1));
        assert_eq!(event_index(ACK), Some(2));
        // PSH/URG alone are no event.
        assert_eq!(event_index(0x08 | 0x20), None);
        assert_eq!(event_index(0), None);
    }

    #[test]
    fn no_flag_goes_to_close_from_every_state() {
        for s in TcpState::ALL {
            for dir in [TcpDir::Input, TcpDir::Output, TcpDir::InputOnly] {
                assert_eq!(next_state(s, dir, 0x08), CL);
            }
        }
    }

    #[test]
    fn names_and_active_table() {
        let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "NONE",
                "ESTABLISHED",
                "SYN_SENT",
                "SYN_RECV",
                "FIN_WAIT",
                "TIME_WAIT",
                "CLOSE",
                "CLOSE_WAIT",
                "LAST_ACK",
                "LISTEN",
                "SYNACK"
            ]
        );
        let active: Vec<TcpState> = TcpState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [ES, SS, SR, SA]);
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(TcpState::from_u8(i as u8), *s);
        }
        assert_eq!(TcpState::from_u8(200), NO);
    }

    #[test]
    fn default_timeouts() {
        assert_eq!(
            DEFAULT_TCP_TIMEOUTS,
            [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120]
        );
        assert_eq!(DEFAULT_UDP_TIMEOUT, 300);
    }

    #[test]
    fn handshake_and_close_walkthrough() {
        // Client SYN, server SYN+ACK, client ACK, then a server-initiated close.
        let mut s = NO;
        s = next_state(s, TcpDir::Input, SYN);
        assert_eq!(s, SR);
        s = next_state(s, TcpDir::Output, SYN | ACK);
        assert_eq!(s, SR);
        s = next_state(s, TcpDir::Input, ACK);
        assert_eq!(s, ES);
        s = next_state(s, TcpDir::Output, FIN | ACK);
        assert_eq!(s, FW);
        s = next_state(s, TcpDir::Input, FIN | ACK);
        assert_eq!(s, TW);
        assert!(is_syn_without_rst(SYN));
        assert!(is_syn_without_rst(SYN | ACK));
        assert!(!is_syn_without_rst(SYN | RST));
        assert!(!is_syn_without_rst(ACK));
    }
}
