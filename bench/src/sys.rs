//! What the generator asks of the operating system: the server's CPU time and
//! RSS from /proc, its own CPU time, the file limit, and sockets bound to a
//! chosen loopback source address before they connect.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::FromRawFd;
use std::time::Duration;

pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// utime + stime of a process (all its threads), in clock ticks.
pub fn proc_cpu_ticks(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let parse = |i: usize| -> io::Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("cannot parse /proc/{pid}/stat")))
    };
    // After ')': index 0 is field 3 (state), so utime (14) is 11, stime (15) is 12.
    Ok(parse(11)? + parse(12)?)
}

/// VmRSS of a process, in bytes.
pub fn proc_rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            let kb: u64 = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(io::Error::other)?;
            return Ok(kb * 1024);
        }
    }
    Err(io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// CPU time (user + system) this process has used so far.
pub fn self_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises RLIMIT_NOFILE so that `want` descriptors fit; returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur >= want {
            return rl.rlim_cur;
        }
        // Root may raise the hard limit too; others stop at it.
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: rl.rlim_max.max(want),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return want;
        }
        let soft = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 {
            return rl.rlim_max;
        }
        rl.rlim_cur
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A non-blocking TCP connect to `dst`, bound first to `src` (port chosen at
/// connect time, so each source address has the full ephemeral range per
/// destination), with SO_RCVBUF set first if `rcvbuf` is given (before the
/// connect, so the window it advertises is the small one). Returns while the
/// connect is still in progress.
pub fn connect_from(
    dst: SocketAddr,
    src: Option<IpAddr>,
    rcvbuf: Option<usize>,
) -> io::Result<mio::net::TcpStream> {
    let fam = if dst.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket calls on a descriptor we own; it is closed on every error path
    // and otherwise handed to mio, which then owns it.
    unsafe {
        let fd = cvt(libc::socket(
            fam,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let fail = |fd| {
            let e = io::Error::last_os_error();
            libc::close(fd);
            Err(e)
        };
        let one: libc::c_int = 1;
        let optlen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let p = &one as *const libc::c_int as *const libc::c_void;
        if libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, p, optlen) < 0 {
            return fail(fd);
        }
        if let Some(size) = rcvbuf {
            let v = size.min(i32::MAX as usize) as libc::c_int;
            let pv = &v as *const libc::c_int as *const libc::c_void;
            if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, pv, optlen) < 0 {
                return fail(fd);
            }
        }
        if let (Some(IpAddr::V4(src)), SocketAddr::V4(_)) = (src, dst) {
            if libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                p,
                optlen,
            ) < 0
            {
                return fail(fd);
            }
            let sin = sockaddr_v4(src, 0);
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(fd, &sin as *const _ as *const libc::sockaddr, len) < 0 {
                return fail(fd);
            }
        }
        let r = match dst {
            SocketAddr::V4(a) => {
                let sin = sockaddr_v4(*a.ip(), a.port());
                let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                libc::connect(fd, &sin as *const _ as *const libc::sockaddr, len)
            }
            SocketAddr::V6(a) => {
                let mut sin6: libc::sockaddr_in6 = std::mem::zeroed();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                let len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
                libc::connect(fd, &sin6 as *const _ as *const libc::sockaddr, len)
            }
        };
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINPROGRESS) {
            return fail(fd);
        }
        Ok(mio::net::TcpStream::from_raw_fd(fd))
    }
}

fn sockaddr_v4(ip: std::net::Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    }
}

/// Reads the server's CPU ticks and RSS; every figure is None without `--pid`.
pub struct Probe {
    pub pid: Option<u32>,
    pub clk_tck: u64,
}

impl Probe {
    pub fn cpu_ticks(&self) -> Result<Option<u64>, String> {
        self.pid
            .map(|p| {
                proc_cpu_ticks(p).map_err(|e| format!("server pid {p}: {e} (did the server exit?)"))
            })
            .transpose()
    }
    pub fn rss(&self) -> Result<Option<u64>, String> {
        self.pid
            .map(|p| {
                proc_rss_bytes(p).map_err(|e| format!("server pid {p}: {e} (did the server exit?)"))
            })
            .transpose()
    }
    /// Seconds of server CPU between two tick readings.
    pub fn cpu_secs(&self, before: Option<u64>, after: Option<u64>) -> Option<f64> {
        Some(after?.saturating_sub(before?) as f64 / self.clk_tck as f64)
    }
}

/// A `Vm*:` line of /proc/PID/status (VmRSS, VmHWM), in bytes.
pub fn proc_status_kib_field(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let kb: u64 = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(io::Error::other)?;
            return Ok(kb * 1024);
        }
    }
    Err(io::Error::other(format!(
        "no {field} in /proc/{pid}/status"
    )))
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// The machine's TCP line of /proc/net/sockstat: (mem in pages, orphans).
/// `mem` is every TCP socket's buffers, both ends of loopback, all processes.
pub fn sockstat_tcp() -> io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/sockstat")?;
    parse_sockstat_tcp(&text).ok_or_else(|| io::Error::other("no TCP mem in /proc/net/sockstat"))
}

fn parse_sockstat_tcp(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let get = |k: &str| {
        f.iter()
            .position(|&w| w == k)
            .and_then(|i| f.get(i + 1))
            .and_then(|v| v.parse().ok())
    };
    Some((get("mem")?, get("orphan").unwrap_or(0)))
}

/// net.ipv4.tcp_mem (low, pressure, high), in pages.
pub fn tcp_mem_limits() -> Option<[u64; 3]> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").ok()?;
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sockstat() {
        let t =
            "sockets: used 17\nTCP: inuse 4 orphan 2 tw 62 alloc 4 mem 39\nUDP: inuse 0 mem 0\n";
        assert_eq!(super::parse_sockstat_tcp(t), Some((39, 2)));
    }
}
