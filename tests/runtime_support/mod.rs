//! Helpers for the runtime integration tests: bundles with the static test init, a private
//! state root per test, running the `crun` binary, and a console-socket receiver.
#![allow(dead_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn crun() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_crun"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Root is needed for namespaces and mounts; say so when skipping.
pub fn need_root(name: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: {name}: needs root (namespaces, mounts)");
        return false;
    }
    true
}

/// The static test init, built once per test process.
pub fn testinit() -> PathBuf {
    static INIT: OnceLock<PathBuf> = OnceLock::new();
    INIT.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("crun-rs-testinit-{}", std::process::id()));
        let st = Command::new(std::env::var("CC").unwrap_or_else(|_| "gcc".into()))
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(repo().join("c-tests/testinit.c"))
            .status()
            .expect("run gcc");
        assert!(
            st.success(),
            "building the static test init failed (need libc6-dev)"
        );
        out
    })
    .clone()
}

/// A test area: a bundle and a state root, removed on drop.
pub struct Env {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub root: PathBuf,
}

impl Env {
    /// A bundle whose process runs `args`; `edit` adjusts config.json.
    pub fn new(name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> Env {
        let dir = std::env::temp_dir().join(format!("crun-rs-rt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("bundle");
        let args_json = serde_json::to_string(args).unwrap();
        let o = Command::new(repo().join("scripts/make-bundle.sh"))
            .arg(&bundle)
            .arg(crun())
            .arg(&args_json)
            .env("TESTINIT", testinit())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "make-bundle failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let env = Env {
            root: dir.join("root"),
            bundle,
            dir,
        };
        env.edit_config(edit);
        env
    }

    pub fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        let p = self.bundle.join("config.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }

    /// `crun --root ROOT <args>` with the bundle as cwd.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crun());
        c.arg("--root").arg(&self.root).args(args);
        c.current_dir(&self.bundle);
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        output_with_timeout(self.cmd(args), Duration::from_secs(30))
    }

    /// Run and require success; stdout as text.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "crun {args:?} failed: {}\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Run and require failure with exit status 1; stderr as text.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "crun {args:?} should fail with 1: stdout: {} stderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// The ids in the state root.
    pub fn ids(&self) -> Vec<String> {
        match std::fs::read_dir(&self.root) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.run(&["delete", "--force", &id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `c` with a deadline (a hung runtime fails the test instead of hanging it).  Output goes
/// to files, not pipes: a detached container inherits the runtime's stdio and would keep a
/// pipe open forever.
pub fn output_with_timeout(mut c: Command, t: Duration) -> Output {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let base = std::env::temp_dir().join(format!("crun-rs-out-{}-{n}", std::process::id()));
    let (po, pe) = (base.with_extension("out"), base.with_extension("err"));
    c.stdout(std::fs::File::create(&po).unwrap())
        .stderr(std::fs::File::create(&pe).unwrap());
    let mut child = c.spawn().expect("spawn crun");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > t {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command timed out: {c:?}\nstderr: {}",
                std::fs::read_to_string(&pe).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = std::fs::read(&po).unwrap_or_default();
    let stderr = std::fs::read(&pe).unwrap_or_default();
    let _ = std::fs::remove_file(&po);
    let _ = std::fs::remove_file(&pe);
    Output {
        status,
        stdout,
        stderr,
    }
}

/// What a console-socket receiver saw.
#[derive(Debug)]
pub struct Received {
    /// Whether anything connected.
    pub connected: bool,
    /// The payload bytes of the fd message.
    pub payload: Vec<u8>,
    /// The pty master, if one arrived.
    pub master: Option<OwnedFd>,
}

/// A console socket: listens at `path`; `receive()` accepts one connection (or times out).
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new(path: &Path) -> ConsoleSocket {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        }
    }

    /// Wait up to `t` for a connection and one message with an fd.
    pub fn receive(&self, t: Duration) -> Received {
        let start = Instant::now();
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(_) if start.elapsed() < t => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => {
                    return Received {
                        connected: false,
                        payload: Vec::new(),
                        master: None,
                    }
                }
            }
        };
        stream.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 64];
        let mut cmsg = [0u8; 64];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr points at live stack buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = cmsg.len();
        // SAFETY: as above.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        let mut master = None;
        if n > 0 {
            // SAFETY: the kernel filled msg; CMSG_FIRSTHDR/CMSG_DATA walk it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msg);
                if !c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
                    master = Some(OwnedFd::from_raw_fd(fd));
                }
            }
        }
        Received {
            connected: true,
            payload: buf[..n.max(0) as usize].to_vec(),
            master,
        }
    }
}

/// Read from a pty master until EOF/EIO or `t` passes.
pub fn read_pty(master: &OwnedFd, t: Duration) -> String {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < t {
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: p is valid.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r <= 0 {
            continue;
        }
        // SAFETY: buf is valid.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Wait until `f` is true (or panic after `t`).
pub fn wait_until(t: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < t, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
