//! The D-Bus client behind `--systemd-cgroup`, against a private `dbus-daemon`: authentication,
//! Hello, method calls and error replies, and that the daemon (which validates every message
//! against its signature) accepts our `StartTransientUnit` marshalling.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crun::cgroups::dbus::{Conn, Value};
use crun::cgroups::systemd;

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn daemon(tag: &str) -> Option<(Daemon, PathBuf)> {
    let bin = ["/usr/bin/dbus-daemon", "/bin/dbus-daemon"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(bin) = bin else {
        eprintln!("skipped {tag}: dbus-daemon is not installed (Debian package dbus-daemon)");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("crun-rs-dbus-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("bus");
    // A bus with no service directories, so nothing is auto-started.
    let conf = dir.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            sock.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--nopidfile"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Daemon { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "dbus-daemon did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((d, sock))
}

const BUS: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

#[test]
fn hello_calls_and_errors() {
    let Some((_d, sock)) = daemon("calls") else {
        return;
    };
    let mut c = Conn::connect(&sock, true).unwrap();
    // GetNameOwner(org.freedesktop.DBus) is the bus itself.
    let r = c
        .call(
            BUS,
            BUS_PATH,
            BUS,
            "GetNameOwner",
            &[Value::Str(BUS.into())],
        )
        .unwrap()
        .unwrap();
    assert_eq!(r.signature, "s");
    assert_eq!(r.first_string().as_deref(), Some(BUS));
    // GetId returns the 32-hex-digit bus id.
    let r = c.call(BUS, BUS_PATH, BUS, "GetId", &[]).unwrap().unwrap();
    assert_eq!(r.first_string().unwrap().len(), 32);
    // An unknown method is an error reply with its name and message.
    let e = c
        .call(BUS, BUS_PATH, BUS, "NoSuchMethodCrunRs", &[])
        .unwrap()
        .unwrap_err();
    assert_eq!(e.name, "org.freedesktop.DBus.Error.UnknownMethod");
    assert!(e.message.contains("NoSuchMethodCrunRs"), "{}", e.message);
    // Wrong argument types are rejected by the bus with a message, not a hang.
    let e = c
        .call(BUS, BUS_PATH, BUS, "GetNameOwner", &[Value::U32(1)])
        .unwrap()
        .unwrap_err();
    assert!(
        e.name.starts_with("org.freedesktop.DBus.Error."),
        "{}",
        e.name
    );
}

#[test]
fn start_transient_unit_is_well_formed() {
    let Some((_d, sock)) = daemon("stu") else {
        return;
    };
    let mut c = Conn::connect(&sock, true).unwrap();
    // The daemon validates the whole message; with no systemd on this bus the destination is
    // unknown, which proves the message itself was accepted.
    let e = c
        .call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            &systemd::transient_unit_args("crun-x.scope", "machine.slice", 4242),
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e.name, "org.freedesktop.DBus.Error.ServiceUnknown",
        "{}",
        e.message
    );
    // The connection is still usable afterwards.
    let r = c.call(BUS, BUS_PATH, BUS, "GetId", &[]).unwrap();
    assert!(r.is_ok());
}

#[test]
fn connecting_to_nothing_is_a_clear_error() {
    let e = match Conn::connect(Path::new("/nonexistent/crun-rs/bus"), true) {
        Ok(_) => panic!("connected to a nonexistent socket"),
        Err(e) => e,
    };
    assert_eq!(e.errno(), libc::ENOENT);
    assert!(e.message().contains("/nonexistent/crun-rs/bus"), "{e}");
}

/// Shows that the daemon does validate bodies (so the test above means something): a body that
/// does not match its signature gets the connection dropped.
#[test]
fn malformed_body_is_rejected_by_the_daemon() {
    let Some((_d, sock)) = daemon("bad") else {
        return;
    };
    let mut c = Conn::connect(&sock, true).unwrap();
    // Signature `as`, but the elements are u32 7: a 7-byte string without its NUL.
    let r = c.call(
        BUS,
        BUS_PATH,
        BUS,
        "GetId",
        &[Value::Array("s".into(), vec![Value::U32(7), Value::U32(7)])],
    );
    assert!(
        r.is_err(),
        "daemon accepted a malformed body: {:?}",
        r.map(|x| x.is_ok())
    );
}
