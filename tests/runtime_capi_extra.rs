//! The rest of crun's container C API (`c-tests/test_container_extra.c`): state strings,
//! update from a file / from values (checked in the v1 cgroup files) and create with
//! `LIBCRUN_CREATE_OPTIONS_PREFORK`, against both `libcrun.so.0` and `libcrun.a`.

mod common;
mod runtime_support;

use runtime_support::*;

#[test]
fn c_container_extra_api() {
    let root = unsafe { libc::geteuid() } == 0;
    let e = Env::new("capix", &["/init", "pause"], |_| {});
    std::fs::create_dir_all(&e.root).unwrap();
    if !root {
        eprintln!("skipped: c_container_extra_api lifecycle part: needs root");
    }
    for link in [common::Linkage::Shared, common::Linkage::Static] {
        let exe = common::compile_c("test_container_extra", &[], link);
        let mut c = common::c_command(&exe);
        c.env("CRUN_RS_BUNDLE", &e.bundle)
            .env("CRUN_RS_STATE", &e.root);
        let o = output_with_timeout(c, std::time::Duration::from_secs(120));
        common::show(&format!("test_container_extra ({})", link.name()), &o);
        assert!(
            o.status.success(),
            "test_container_extra ({}) failed",
            link.name()
        );
        assert!(e.ids().is_empty(), "left behind: {:?}", e.ids());
    }
}

/// Accept one connection on `listener` (nonblocking, up to `t`) and receive one message with
/// an fd: the whole payload and the fd.
fn receive_fd(
    listener: &std::os::unix::net::UnixListener,
    t: std::time::Duration,
) -> Option<(Vec<u8>, std::os::fd::OwnedFd)> {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd};
    let start = std::time::Instant::now();
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if start.elapsed() < t => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(_) => return None,
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(t)).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut cmsg = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr points at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.len();
    // SAFETY: as above.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    let mut payload = buf[..n as usize].to_vec();
    // SAFETY: the kernel filled msg; CMSG_FIRSTHDR/CMSG_DATA walk it.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(
            !c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS,
            "no fd received"
        );
        std::os::fd::OwnedFd::from_raw_fd(
            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32),
        )
    };
    // The rest of the message, until the sender closes.
    let _ = stream.read_to_end(&mut payload);
    Some((payload, fd))
}

/// `linux.seccomp.listenerPath`: a profile with an `SCMP_ACT_NOTIFY` rule sends its
/// user-notification fd to the agent socket, with the container state and pid.
#[test]
fn seccomp_listener_receives_the_notify_fd() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: seccomp_listener_receives_the_notify_fd: needs root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("crun-rs-seccomp-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("agent.sock");
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let sock_str = sock.to_string_lossy().into_owned();
    let e = Env::new("seccomp-agent", &["/init", "pause"], |v| {
        v["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_str,
            "listenerMetadata": "meta-x",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    std::fs::create_dir_all(&e.root).unwrap();
    let receiver =
        std::thread::spawn(move || receive_fd(&listener, std::time::Duration::from_secs(20)));
    e.ok(&["create", "sa1"]);
    e.ok(&["start", "sa1"]);
    let got = receiver.join().unwrap();
    let state: serde_json::Value = serde_json::from_str(&e.ok(&["state", "sa1"])).unwrap();
    let (payload, fd) = got.expect("no connection on the listener socket");
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .unwrap();
    assert_eq!(link.to_string_lossy(), "anon_inode:seccomp notify");
    let msg: serde_json::Value = serde_json::from_slice(&payload)
        .unwrap_or_else(|err| panic!("payload {:?}: {err}", String::from_utf8_lossy(&payload)));
    assert_eq!(msg["fds"], serde_json::json!(["seccompFd"]));
    assert_eq!(msg["metadata"], "meta-x");
    assert_eq!(msg["state"]["id"], "sa1");
    assert_eq!(msg["pid"], state["pid"]);
    assert!(msg["pid"].as_i64().unwrap() > 0);
    e.ok(&["kill", "sa1", "KILL"]);
    e.ok(&["delete", "--force", "sa1"]);
    drop(fd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `listenerPath` nobody listens at fails the create with an error naming the path.
#[test]
fn seccomp_listener_path_unreachable_is_an_error() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: seccomp_listener_path_unreachable_is_an_error: needs root");
        return;
    }
    let path = format!("/tmp/crun-rs-no-agent-{}.sock", std::process::id());
    let p2 = path.clone();
    let e = Env::new("seccomp-noagent", &["/init", "pause"], |v| {
        v["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": p2,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    std::fs::create_dir_all(&e.root).unwrap();
    let err = e.fails(&["create", "sa2"]);
    eprintln!("create error: {err}");
    assert!(err.contains(&path), "{err}");
    assert!(e.ids().is_empty(), "left behind: {:?}", e.ids());
}
