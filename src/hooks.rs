//! OCI lifecycle hooks (`config.md` §POSIX-platform Hooks).
//!
//! [`run_hooks`] runs a list of hooks in order, each one:
//! * executed as `path` with `args` as its argv (`args[0]` is argv[0]; `[path]` when absent) and
//!   exactly `env` as its environment (empty when absent, like crun's `execve (path, args, env)`);
//! * with the container state JSON on its stdin (a pipe; a hook that does not read it is fine);
//! * inheriting the caller's stdout and stderr;
//! * killed with SIGKILL when `timeout` seconds pass, which is an `ETIMEDOUT` error naming it.
//!
//! The first hook that fails stops the list: the error names the hook's path and its exit status
//! (or the signal that killed it).  Which hooks run when, and whether a failure is fatal (poststart
//! and poststop failures are only warnings in the spec), is the runtime's business.

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Context, Error, Result};

/// Run `hooks` in order with `state_json` on their stdin; `kind` (e.g. `prestart`) only appears
/// in error messages.
pub fn run_hooks(hooks: &[Hook], state_json: &str, kind: &str) -> Result<()> {
    for hook in hooks {
        run_hook(hook, state_json).with_context(|| format!("run {kind} hook"))?;
    }
    Ok(())
}

/// Run one hook; see the module documentation.
pub fn run_hook(hook: &Hook, state_json: &str) -> Result<()> {
    let path = hook.path();
    let shown = path.display().to_string();
    if !path.is_absolute() {
        // config.md: "path MUST be absolute".
        crate::bail!(libc::EINVAL, "hook path `{shown}` is not absolute");
    }
    if let Some(t) = hook.timeout() {
        if t <= 0 {
            crate::bail!(
                libc::EINVAL,
                "hook `{shown}`: timeout must be greater than zero, got {t}"
            );
        }
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));

    let mut cmd = Command::new(path);
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        // `KEY=VALUE`; an entry without `=` is passed as a key with an empty value.
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if k.is_empty() {
            crate::bail!(libc::EINVAL, "hook `{shown}`: invalid env entry `{kv}`");
        }
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());

    let mut child = cmd
        .spawn()
        .with_context(|| format!("exec hook `{shown}`"))?;
    let stdin: Option<OwnedFd> = child.stdin.take().map(OwnedFd::from);
    if let Some(fd) = stdin {
        if let Err(e) = write_state(&fd, state_json.as_bytes(), deadline) {
            if e.errno() == libc::ETIMEDOUT {
                kill_and_reap(&mut child);
                return Err(timeout_error(&shown, hook.timeout()));
            }
            // EPIPE: the hook did not read its stdin; only its exit status matters.
            if e.errno() != libc::EPIPE {
                kill_and_reap(&mut child);
                return Err(e.wrap(format!("write state to hook `{shown}`")));
            }
        }
        // fd closed here: the hook sees EOF.
    }
    let status =
        wait_deadline(&mut child, deadline).with_context(|| format!("wait for hook `{shown}`"))?;
    match status {
        None => {
            kill_and_reap(&mut child);
            Err(timeout_error(&shown, hook.timeout()))
        }
        Some(st) => check_status(&shown, st),
    }
}

fn timeout_error(path: &str, timeout: Option<i64>) -> Error {
    Error::new(
        libc::ETIMEDOUT,
        format!(
            "hook `{path}` timed out after {} seconds and was killed",
            timeout.unwrap_or(0)
        ),
    )
}

fn check_status(path: &str, st: ExitStatus) -> Result<()> {
    if let Some(code) = st.code() {
        if code == 0 {
            return Ok(());
        }
        return Err(Error::msg(format!(
            "error executing hook `{path}` (exit code: {code})"
        )));
    }
    let sig = st.signal().unwrap_or(0);
    Err(Error::msg(format!(
        "error executing hook `{path}` (killed by signal {sig})"
    )))
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Wait for the child until `deadline`; `Ok(None)` when it passed.
fn wait_deadline(child: &mut Child, deadline: Option<Instant>) -> Result<Option<ExitStatus>> {
    let Some(deadline) = deadline else {
        return child.wait().context("waitpid").map(Some);
    };
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(st) = child.try_wait().context("waitpid")? {
            return Ok(Some(st));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// Write `data` to the (blocking) pipe `fd` without ever getting SIGPIPE and without blocking
/// past `deadline`.  Errors: `EPIPE` when the reader is gone, `ETIMEDOUT` on the deadline.
fn write_state(fd: &OwnedFd, mut data: &[u8], deadline: Option<Instant>) -> Result<()> {
    let raw = fd.as_raw_fd();
    // Non-blocking so a hook that never reads cannot hang us past its timeout.
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(raw, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    let _guard = SigpipeBlock::new();
    while !data.is_empty() {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(libc::ETIMEDOUT, "write state"));
                }
                left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd: raw,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("poll");
        }
        if n == 0 {
            continue; // re-check the deadline
        }
        // SAFETY: data is a valid buffer of data.len() bytes.
        let w = unsafe { libc::write(raw, data.as_ptr().cast(), data.len()) };
        if w < 0 {
            let e = std::io::Error::last_os_error();
            match e.kind() {
                ErrorKind::Interrupted | ErrorKind::WouldBlock => continue,
                _ => return Err(e).context("write"),
            }
        }
        data = &data[w as usize..];
    }
    Ok(())
}

/// Blocks SIGPIPE in the calling thread while alive; on drop, discards a SIGPIPE raised meanwhile
/// (unless it was already pending before) and restores the old mask.
struct SigpipeBlock {
    old: libc::sigset_t,
    was_pending: bool,
}

impl SigpipeBlock {
    fn new() -> Self {
        // SAFETY: plain sigset manipulation on local values.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            libc::sigpending(&mut pending);
            let was_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            SigpipeBlock { old, was_pending }
        }
    }
}

impl Drop for SigpipeBlock {
    fn drop(&mut self) {
        // SAFETY: as above; sigtimedwait with a zero timeout never blocks.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            if !self.was_pending {
                let zero = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                while libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == libc::SIGPIPE {}
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    #[test]
    fn success_and_exit_status() {
        let ok = HookBuilder::default().path("/bin/true").build().unwrap();
        run_hooks(&[ok], "{}", "prestart").unwrap();
        let bad = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".into(), "-c".into(), "exit 3".into()])
            .build()
            .unwrap();
        let e = run_hooks(&[bad], "{}", "poststop").unwrap_err();
        assert!(e.message().contains("`/bin/sh`"), "{e}");
        assert!(e.message().contains("exit code: 3"), "{e}");
        assert!(e.message().starts_with("run poststop hook"), "{e}");
    }

    #[test]
    fn missing_binary_is_enoent() {
        let h = HookBuilder::default()
            .path("/nonexistent/crun-rs-hook")
            .build()
            .unwrap();
        let e = run_hooks(&[h], "{}", "prestart").unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert!(e.message().contains("/nonexistent/crun-rs-hook"), "{e}");
    }

    #[test]
    fn relative_path_rejected() {
        let h = HookBuilder::default().path("true").build().unwrap();
        let e = run_hook(&h, "{}").unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert!(e.message().contains("not absolute"), "{e}");
    }

    #[test]
    fn zero_timeout_rejected() {
        let h = HookBuilder::default()
            .path("/bin/true")
            .timeout(0i64)
            .build()
            .unwrap();
        assert_eq!(run_hook(&h, "{}").unwrap_err().errno(), libc::EINVAL);
    }
}
