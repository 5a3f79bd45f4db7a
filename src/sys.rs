//! Small syscall helpers shared by several modules (one place for the unsafe code).

use std::os::fd::RawFd;

/// Write all of `buf` to `fd`, retrying on `EINTR`; give up silently on any other error or a
/// zero-length write (callers use it for best-effort output: logs, terminal copies, pipes to a
/// parent that may be gone).
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice; fd may be closed, which write reports as EBADF.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// The current UTC time broken down, with the sub-second part in nanoseconds.
pub(crate) fn utc_now() -> (libc::tm, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain syscall wrappers on stack values.
    let tm = unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&ts.tv_sec, &mut tm);
        tm
    };
    (tm, ts.tv_nsec)
}

/// `YYYY-MM-DDTHH:MM:SS` of a broken-down time.
pub(crate) fn format_date_time(tm: &libc::tm) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_writes_everything_to_a_pipe() {
        let (r, w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let data = vec![7u8; 10000];
        write_all(w.as_raw_fd(), &data);
        drop(w);
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut got).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn date_time_shape() {
        let (tm, ns) = utc_now();
        let s = format_date_time(&tm);
        assert_eq!(s.len(), 19);
        assert_eq!(&s[10..11], "T");
        assert!((0..1_000_000_000).contains(&ns));
    }
}
