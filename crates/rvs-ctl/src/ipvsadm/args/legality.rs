//! ipvsadm's option bits (`OPTC_*`) and legality tables (command by option, tunnel type by
//! option): pure data, kept apart so that the parser reads as code.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    pub(super) fn index(self) -> usize {
        self as usize
    }
    pub(super) fn name(self) -> &'static str {
        CMD_NAMES.get(self.index()).copied().unwrap_or("")
    }
}

const CMD_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

// Option indices (ipvsadm's OPTC_*), the columns of the table below.
pub(super) const OPTC_NUMERIC: usize = 0;
pub(super) const OPTC_CONNECTION: usize = 1;
pub(super) const OPTC_SERVICE: usize = 2;
pub(super) const OPTC_SCHEDULER: usize = 3;
pub(super) const OPTC_PERSISTENT: usize = 4;
pub(super) const OPTC_NETMASK: usize = 5;
pub(super) const OPTC_SERVER: usize = 6;
pub(super) const OPTC_FORWARD: usize = 7;
pub(super) const OPTC_WEIGHT: usize = 8;
pub(super) const OPTC_UTHRESHOLD: usize = 9;
pub(super) const OPTC_LTHRESHOLD: usize = 10;
pub(super) const OPTC_MCAST: usize = 11;
pub(super) const OPTC_TIMEOUT: usize = 12;
pub(super) const OPTC_DAEMON: usize = 13;
pub(super) const OPTC_STATS: usize = 14;
pub(super) const OPTC_RATE: usize = 15;
pub(super) const OPTC_THRESHOLDS: usize = 16;
pub(super) const OPTC_PERSISTENTCONN: usize = 17;
pub(super) const OPTC_NOSORT: usize = 18;
pub(super) const OPTC_SYNCID: usize = 19;
pub(super) const OPTC_EXACT: usize = 20;
pub(super) const OPTC_ONEPACKET: usize = 21;
pub(super) const OPTC_PE: usize = 22;
pub(super) const OPTC_SCHED_FLAGS: usize = 23;
pub(super) const OPTC_MCAST_GROUP: usize = 24;
pub(super) const OPTC_MCAST_PORT: usize = 25;
pub(super) const OPTC_MCAST_TTL: usize = 26;
pub(super) const OPTC_SYNC_MAXLEN: usize = 27;
pub(super) const OPTC_TUN_INFO: usize = 28;
pub(super) const OPTC_TUN_TYPE: usize = 29;
pub(super) const OPTC_TUN_PORT: usize = 30;
pub(super) const OPTC_TUN_NOCSUM: usize = 31;
pub(super) const OPTC_TUN_CSUM: usize = 32;
pub(super) const OPTC_TUN_REMCSUM: usize = 33;
const NUMBER_OF_OPT: usize = 34;

pub(super) const OPT_NAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// Legal option use per command, one character per option column above:
/// '+' required, 'x' illegal, '1' at most one of the '1' options, ' ' optional.
pub(super) const COMMANDS_V_OPTIONS: [&[u8; NUMBER_OF_OPT]; 14] = [
    // n  c  svc s  p  M  r  fwd w x y mc tot dmn st rt thr pc srt sid ex ops pe b grp prt ttl len tinf type tprt nocs csum remc
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // add-service
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx", // edit-service
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-service
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // flush
    b" 11xxxxxxxxx11       xxxxxxx xxxxx", // list
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // add-server
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx", // delete-server
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     ", // edit-server
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // set
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxx", // start-daemon
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx", // stop-daemon
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // restore
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // save
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", // zero
];

pub(super) const TUN_NAMES: [&str; 3] = ["ipip", "gue", "gre"];
/// Tunnel option columns: tun-port, tun-nocsum, tun-csum, tun-remcsum.
pub(super) const TUN_OPTS: [usize; 4] = [
    OPTC_TUN_PORT,
    OPTC_TUN_NOCSUM,
    OPTC_TUN_CSUM,
    OPTC_TUN_REMCSUM,
];
pub(super) const TUNNEL_TYPES_V_OPTIONS: [&[u8; 4]; 3] = [
    b"xxxx", // ipip
    b"+111", // gue
    b"x11x", // gre
];
