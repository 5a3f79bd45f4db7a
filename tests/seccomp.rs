//! `crun::seccomp`: profiles are compiled by `prepare` and enforced after `apply`, checked in a
//! forked child so the test process itself stays unfiltered.

use std::ffi::CString;

use crun::seccomp::{self, SeccompFilter};
use oci_spec::runtime::LinuxSeccomp;

fn have_lib() -> bool {
    if !seccomp::available() {
        eprintln!("skipped: {} not available", seccomp::LIBSECCOMP);
        return false;
    }
    true
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Fork; in the child load `filter` and run `body`, whose return value becomes the exit status.
/// Returns the child's wait status.
fn in_child(filter: SeccompFilter, body: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only makes raw system calls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = match filter.apply() {
            Ok(_) => body(),
            Err(_) => 100,
        };
        // SAFETY: leave the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    status
}

fn exit_code(status: i32) -> i32 {
    assert!(libc::WIFEXITED(status), "child did not exit: {status:#x}");
    libc::WEXITSTATUS(status)
}

fn tmp(tag: &str) -> CString {
    let p = std::env::temp_dir().join(format!("crun-rs-seccomp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir(&p);
    CString::new(p.to_str().unwrap()).unwrap()
}

#[test]
fn mkdir_fails_with_configured_errno() {
    if !have_lib() {
        return;
    }
    let f = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":95}]}"#,
    ))
    .unwrap();
    let path = tmp("mkdir");
    let p = path.clone();
    let st = in_child(f, move || {
        // SAFETY: valid C string.
        let rc = unsafe { libc::mkdir(p.as_ptr(), 0o700) };
        if rc == 0 {
            1
        } else if errno() == libc::EOPNOTSUPP {
            0
        } else {
            2
        }
    });
    assert_eq!(exit_code(st), 0, "mkdir must fail with EOPNOTSUPP (95)");
    assert!(!std::path::Path::new(path.to_str().unwrap()).exists());
}

#[test]
fn default_errno_ret_and_errno_default_eperm() {
    if !have_lib() {
        return;
    }
    // Everything not listed fails with defaultErrnoRet; a listed ERRNO without errnoRet is EPERM.
    let f = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO"},
                        {"names":["rmdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
    ))
    .unwrap();
    let st = in_child(f, || {
        // SAFETY: plain syscalls.
        let a = unsafe { libc::syscall(libc::SYS_getppid) } == -1 && errno() == libc::EPERM;
        let b = unsafe { libc::rmdir(c"/nonexistent-crun-rs".as_ptr()) } == -1
            && errno() == libc::ENOSYS;
        let c = unsafe { libc::getpid() } > 0;
        i32::from(!a) | (i32::from(!b) << 1) | (i32::from(!c) << 2)
    });
    assert_eq!(exit_code(st), 0);

    let f = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":13,
            "syscalls":[{"names":["exit_group","exit","getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    let st = in_child(f, || {
        // SAFETY: plain syscalls.
        let a = unsafe { libc::syscall(libc::SYS_getppid) } == -1 && errno() == libc::EACCES;
        let b = unsafe { libc::syscall(libc::SYS_getpid) } > 0;
        i32::from(!a) | (i32::from(!b) << 1)
    });
    assert_eq!(exit_code(st), 0);
}

#[test]
fn argument_comparisons() {
    if !have_lib() {
        return;
    }
    // personality(0xffffffff) (query) allowed, anything else denied with EINVAL; kill with a
    // masked comparison.
    let f = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[
              {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":22,
               "args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_NE"}]},
              {"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":7,
               "args":[{"index":0,"value":63,"valueTwo":18,"op":"SCMP_CMP_MASKED_EQ"}]},
              {"names":["setpgid"],"action":"SCMP_ACT_ERRNO","errnoRet":9,
               "args":[{"index":1,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap();
    let st = in_child(f, || {
        // SAFETY: plain syscalls with harmless arguments.
        unsafe {
            let q = libc::personality(0xffff_ffff) >= 0;
            let d = libc::personality(0x0008) == -1 && errno() == libc::EINVAL;
            // (0o22 & 0o77) == 0o22: denied; 0o27 & 0o77 = 0o27 != 0o22: allowed.
            let m1 = libc::syscall(libc::SYS_umask, 0o22) == -1 && errno() == 7;
            let m2 = libc::syscall(libc::SYS_umask, 0o27) >= 0;
            // Same index twice is OR: pgid 1 and 2 are both denied with EBADF.
            let o1 = libc::syscall(libc::SYS_setpgid, 999_999, 1) == -1 && errno() == 9;
            let o2 = libc::syscall(libc::SYS_setpgid, 999_999, 2) == -1 && errno() == 9;
            let o3 = libc::syscall(libc::SYS_setpgid, 999_999, 3) == -1 && errno() == libc::ESRCH;
            [q, d, m1, m2, o1, o2, o3]
                .iter()
                .position(|ok| !ok)
                .map_or(0, |i| i as i32 + 1)
        }
    });
    assert_eq!(exit_code(st), 0, "1-based index of the first failed check");
}

#[test]
fn kill_process_action() {
    if !have_lib() {
        return;
    }
    let f = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
    ))
    .unwrap();
    let st = in_child(f, || {
        // SAFETY: plain syscall.
        unsafe { libc::syscall(libc::SYS_getppid) };
        0
    });
    assert!(libc::WIFSIGNALED(st), "status {st:#x}");
    assert_eq!(libc::WTERMSIG(st), libc::SIGSYS);
}

#[test]
fn notify_returns_listener_fd() {
    if !have_lib() {
        return;
    }
    let f = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(f.has_listener());
    // SAFETY: child only makes raw syscalls.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: prctl with constant arguments (needed without CAP_SYS_ADMIN).
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = match f.apply() {
            Ok(Some(fd)) => {
                use std::os::fd::AsRawFd;
                // SAFETY: fcntl on our fd.
                let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
                if fl & libc::FD_CLOEXEC != 0 {
                    0
                } else {
                    3
                }
            }
            Ok(None) => 1,
            Err(_) => 2,
        };
        // SAFETY: leave the child.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(exit_code(status), 0);
}

#[test]
fn unknown_names_are_skipped_and_bad_profiles_rejected() {
    if !have_lib() {
        return;
    }
    let f = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["not_a_syscall_crun_rs","mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    ));
    assert!(f.is_ok(), "{f:?}");
    let e = seccomp::prepare(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap_err();
    assert_eq!(e.errno(), libc::EINVAL);
    assert!(e.message().contains("read"), "{e}");
}

/// podman's default profile (containers/common pkg/seccomp/seccomp.json, converted to the OCI
/// form podman emits for amd64 with its default capabilities; see tests/fixtures/seccomp-README.md).
#[test]
fn podman_default_profile() {
    if !have_lib() {
        return;
    }
    let json = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/seccomp-podman-default.json"),
    )
    .unwrap();
    let f = seccomp::prepare(&profile(&json)).unwrap();
    let dir = tmp("podman");
    let d2 = dir.clone();
    let st = in_child(f, move || {
        // SAFETY: raw syscalls with arguments that are harmless if they were allowed.
        unsafe {
            let checks = [
                // allowed
                libc::mkdir(d2.as_ptr(), 0o700) == 0 && libc::rmdir(d2.as_ptr()) == 0,
                libc::getpid() > 0,
                libc::personality(0xffff_ffff) >= 0,
                // denied with EPERM by explicit rules
                libc::syscall(libc::SYS_bpf, 0, 0, 0) == -1 && errno() == libc::EPERM,
                libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0) == -1 && errno() == libc::EPERM,
                libc::syscall(libc::SYS_swapon, c"/nonexistent".as_ptr(), 0) == -1
                    && errno() == libc::EPERM,
                libc::syscall(libc::SYS_init_module, 0, 0, 0) == -1 && errno() == libc::EPERM,
                // not listed: defaultErrnoRet ENOSYS
                libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0) == -1 && errno() == libc::ENOSYS,
                libc::personality(0x1234) == -1 && errno() == libc::ENOSYS,
                // the audit-socket rule: socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT) -> EINVAL
                libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 9) == -1 && errno() == libc::EINVAL,
            ];
            checks.iter().position(|ok| !ok).map_or(0, |i| i as i32 + 1)
        }
    });
    assert_eq!(exit_code(st), 0, "1-based index of the first failed check");
}

#[test]
fn listener_fd_is_sent_with_container_process_state() {
    use std::os::fd::{AsFd, AsRawFd};
    let dir = std::env::temp_dir().join(format!("crun-rs-seccomp-listener-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let (fd, n) = crun::console::socket::receive_fd(conn.as_raw_fd(), &mut buf).unwrap();
        (fd, String::from_utf8(buf[..n].to_vec()).unwrap())
    });
    // Any fd will do for the transport; use one end of a pipe and check it arrives.
    let (r, w) = nix::unistd::pipe().unwrap();
    let state = serde_json::json!({"ociVersion":"1.0.0","id":"c1","status":"creating","pid":42,"bundle":"/b"});
    seccomp::send_listener_fd(path.to_str().unwrap(), w.as_fd(), 42, Some("meta"), &state).unwrap();
    let (got, text) = agent.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(v["pid"], 42);
    assert_eq!(v["metadata"], "meta");
    assert_eq!(v["state"]["id"], "c1");
    // The received fd is the pipe's write end: data written through it comes out of `r`.
    nix::unistd::write(&got, b"x").unwrap();
    let mut b = [0u8; 1];
    nix::unistd::read(r.as_raw_fd(), &mut b).unwrap();
    assert_eq!(&b, b"x");
    drop(w);
    let e = seccomp::send_listener_fd("/nonexistent/crun-rs.sock", got.as_fd(), 1, None, &state)
        .unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT);
    assert!(e.message().contains("/nonexistent/crun-rs.sock"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}
