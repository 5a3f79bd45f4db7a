//! Terminal handling: the pty is created inside the container and its master reaches the
//! console socket before anything that can fail on user input; the runtime connects to the
//! socket only when it holds the fd.  Needs root.

mod runtime_support;

use std::time::Duration;

use runtime_support::*;
use serde_json::json;

fn tty_env(name: &str, args: &[&str]) -> Env {
    Env::new(name, args, |c| c["process"]["terminal"] = json!(true))
}

#[test]
fn echo_output_arrives_on_the_console_socket() {
    if !need_root("echo_output_arrives_on_the_console_socket") {
        return;
    }
    let e = tty_env("cs-echo", &["/init", "echo", "tty-hello"]);
    let cs = ConsoleSocket::new(&e.dir.join("console.sock"));
    let sock = cs.path.to_str().unwrap().to_string();
    e.ok(&["create", "--console-socket", &sock, "t1"]);
    let r = cs.receive(Duration::from_secs(5));
    assert!(r.connected);
    assert_eq!(r.payload, b" ", "crun's one-byte payload");
    let master = r.master.expect("pty master");
    e.ok(&["start", "t1"]);
    let out = read_pty(&master, Duration::from_secs(5));
    assert_eq!(out, "tty-hello\r\n");
}

#[test]
fn missing_command_delivers_the_fd_first_then_the_error() {
    if !need_root("missing_command_delivers_the_fd_first_then_the_error") {
        return;
    }
    let e = tty_env("cs-enoent", &["nonexistent-x"]);
    // An empty socket path is rejected before anything is created.
    let err = e.fails(&["create", "--console-socket=", "x"]);
    assert!(err.contains("open console socket ``"), "{err}");
    // Receive concurrently, as conmon does.
    let cs = ConsoleSocket::new(&e.dir.join("console2.sock"));
    let h = std::thread::spawn(move || cs.receive(Duration::from_secs(10)));
    let err = e.fails(&[
        "create",
        &format!("--console-socket={}", e.dir.join("console2.sock").display()),
        "t2",
    ]);
    let r = h.join().unwrap();
    assert!(r.connected, "the runtime must connect: it had a pty");
    assert!(
        r.master.is_some(),
        "the pty master must be delivered before the error"
    );
    assert!(
        err.contains(
            "executable file `nonexistent-x` not found in $PATH: No such file or directory"
        ),
        "{err}"
    );
    assert!(e.ids().is_empty(), "nothing left behind: {:?}", e.ids());
}

#[test]
fn bad_cwd_with_tty_delivers_the_fd_then_fails() {
    if !need_root("bad_cwd_with_tty_delivers_the_fd_then_fails") {
        return;
    }
    let e = Env::new("cs-cwd", &["/init", "true"], |c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["cwd"] = json!("/does-not-exist");
    });
    let cs = ConsoleSocket::new(&e.dir.join("c.sock"));
    let sock = cs.path.to_str().unwrap().to_string();
    let h = std::thread::spawn(move || cs.receive(Duration::from_secs(10)));
    let err = e.fails(&["run", "-d", "--console-socket", &sock, "t"]);
    let r = h.join().unwrap();
    assert!(r.master.is_some());
    assert!(
        err.contains("chdir to `/does-not-exist`: No such file or directory"),
        "{err}"
    );
    assert!(e.ids().is_empty());
}

#[test]
fn failure_before_the_pty_never_connects() {
    if !need_root("failure_before_the_pty_never_connects") {
        return;
    }
    let e = Env::new("cs-early", &["/init", "true"], |c| {
        c["process"]["terminal"] = json!(true);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/x", "type": "bind", "source": "/nonexistent-source-dir", "options": ["bind"]
        }));
    });
    let cs = ConsoleSocket::new(&e.dir.join("c.sock"));
    let sock = cs.path.to_str().unwrap().to_string();
    let h = std::thread::spawn(move || cs.receive(Duration::from_secs(3)));
    let err = e.fails(&["create", "--console-socket", &sock, "t"]);
    let r = h.join().unwrap();
    assert!(
        !r.connected,
        "no pty existed: the socket must not be connected"
    );
    assert!(err.contains("/nonexistent-source-dir"), "{err}");
    assert!(err.contains("was not connected"), "{err}");
    assert!(e.ids().is_empty());
}

#[test]
fn console_socket_missing_or_closed() {
    if !need_root("console_socket_missing_or_closed") {
        return;
    }
    let e = tty_env("cs-missing", &["/init", "true"]);
    let missing = e.dir.join("nope.sock");
    let err = e.fails(&["create", "--console-socket", missing.to_str().unwrap(), "t"]);
    assert!(
        err.contains(&format!(
            "open console socket `{}`: No such file or directory",
            missing.display()
        )),
        "{err}"
    );
    assert!(e.ids().is_empty());
    // A socket whose listener went away: the handoff fails and nothing is left behind.
    let p = e.dir.join("closed.sock");
    drop(ConsoleSocket::new(&p));
    let err = e.fails(&["create", "--console-socket", p.to_str().unwrap(), "t"]);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(e.ids().is_empty());
    // Terminal without a console socket.
    let err = e.fails(&["create", "t"]);
    assert!(
        err.contains("use --console-socket with create when a terminal is used"),
        "{err}"
    );
    let err = e.fails(&["run", "-d", "t"]);
    assert!(err.contains("use --console-socket with --detach"), "{err}");
    assert!(e.ids().is_empty());
}

#[test]
fn console_size_console_device_and_stdio() {
    if !need_root("console_size_console_device_and_stdio") {
        return;
    }
    let e = Env::new("cs-size", &["/init", "winsize"], |c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let run = |id: &str, args: &[&str]| -> String {
        e.edit_config(|c| c["process"]["args"] = json!(args));
        let p = e.dir.join(format!("{id}.sock"));
        let cs = ConsoleSocket::new(&p);
        e.ok(&["run", "-d", "--console-socket", p.to_str().unwrap(), id]);
        let r = cs.receive(Duration::from_secs(5));
        read_pty(&r.master.unwrap(), Duration::from_secs(5))
    };
    assert_eq!(run("s1", &["/init", "winsize"]), "30 100\r\n");
    assert_eq!(run("s2", &["/init", "isatty", "0"]), "true\r\n");
    assert_eq!(run("s3", &["/init", "isatty", "2"]), "true\r\n");
    let tty = run("s4", &["/init", "ttyname", "0"]);
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    assert_eq!(run("s5", &["/init", "exists", "/dev/console"]), "true\r\n");
}

#[test]
fn foreground_run_with_terminal_copies_output() {
    if !need_root("foreground_run_with_terminal_copies_output") {
        return;
    }
    let e = tty_env("fg-tty", &["/init", "echo", "foreground"]);
    let out = e.ok(&["run", "fg"]);
    assert_eq!(out, "foreground\r\n");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "exit", "4"]));
    assert_eq!(e.run(&["run", "fg2"]).status.code(), Some(4));
}

#[test]
fn exec_tty_through_console_socket() {
    if !need_root("exec_tty_through_console_socket") {
        return;
    }
    let e = Env::new("exec-tty", &["/init", "pause"], |_| {});
    e.ok(&["run", "-d", "x"]);
    let p = e.dir.join("exec.sock");
    let cs = ConsoleSocket::new(&p);
    let pid = e.dir.join("exec.pid");
    let h = std::thread::spawn(move || cs.receive(Duration::from_secs(10)));
    e.ok(&[
        "exec",
        "--tty",
        "--detach",
        &format!("--console-socket={}", p.display()),
        "--pid-file",
        pid.to_str().unwrap(),
        "x",
        "/init",
        "echo",
        "exec-tty",
    ]);
    let r = h.join().unwrap();
    let out = read_pty(&r.master.unwrap(), Duration::from_secs(5));
    assert_eq!(out, "exec-tty\r\n");
    // A missing command with --tty: the fd still arrives, then the error.
    let p2 = e.dir.join("exec2.sock");
    let cs = ConsoleSocket::new(&p2);
    let h = std::thread::spawn(move || cs.receive(Duration::from_secs(10)));
    let err = e.fails(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        p2.to_str().unwrap(),
        "x",
        "nonexistent-y",
    ]);
    let r = h.join().unwrap();
    assert!(r.master.is_some());
    assert!(
        err.contains(
            "executable file `nonexistent-y` not found in $PATH: No such file or directory"
        ),
        "{err}"
    );
}
