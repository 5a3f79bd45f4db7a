//! seccomp filters from the OCI `linux.seccomp` section.
//!
//! [`prepare`] compiles the profile with libseccomp into a classic-BPF program.  libseccomp is
//! loaded at run time with `dlopen("libseccomp.so.2")` (package `libseccomp2`, present on every
//! Debian/Fedora system), so building crun-rs needs no `-dev` package and a profile-less container
//! does not need the library at all.  Because compilation happens in [`prepare`], it can run
//! before `pivot_root`, while the host's libseccomp is still reachable.
//!
//! [`SeccompFilter::apply`] then only makes the `seccomp(2)` system call: no library, no
//! allocation on success.  It must be the last step before `execve`.  Like every seccomp filter it
//! needs `no_new_privs` or `CAP_SYS_ADMIN` in the caller's user namespace; setting
//! `no_new_privs` per `process.noNewPrivileges` is the runtime's job.
//!
//! Behaviour follows crun: unknown syscall names are skipped with a warning; rules whose action
//! equals the default action are dropped (libseccomp rejects them); a rule whose arguments compare
//! the same argument index more than once is split into one rule per comparison (OR), the
//! others are a single rule (AND); `errnoRet` defaults to `EPERM` for `SCMP_ACT_ERRNO` and
//! `SCMP_ACT_TRACE`; architectures unknown to the installed libseccomp are skipped with a
//! warning.  A profile with `SCMP_ACT_NOTIFY` rules gets a user-notification listener fd from
//! [`SeccompFilter::apply`]; sending it to `listenerPath` is the runtime's job.

use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};

use crate::error::{Context, Error, Result};

/// The library file name we open.
pub const LIBSECCOMP: &str = "libseccomp.so.2";

const SECCOMP_SET_MODE_FILTER: c_uint = 1;
const SECCOMP_FILTER_FLAG_TSYNC: c_uint = 1;
const SECCOMP_FILTER_FLAG_LOG: c_uint = 2;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: c_uint = 4;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: c_uint = 8;
const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: c_uint = 16;

const SCMP_ACT_KILL_PROCESS: u32 = 0x8000_0000;
const SCMP_ACT_KILL_THREAD: u32 = 0x0000_0000;
const SCMP_ACT_TRAP: u32 = 0x0003_0000;
const SCMP_ACT_NOTIFY: u32 = 0x7fc0_0000;
const SCMP_ACT_LOG: u32 = 0x7ffc_0000;
const SCMP_ACT_ALLOW: u32 = 0x7fff_0000;
fn scmp_act_errno(e: u32) -> u32 {
    0x0005_0000 | (e & 0xffff)
}
fn scmp_act_trace(e: u32) -> u32 {
    0x7ff0_0000 | (e & 0xffff)
}

/// libseccomp's `struct scmp_arg_cmp`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ScmpArgCmp {
    arg: c_uint,
    op: c_uint,
    datum_a: u64,
    datum_b: u64,
}

type ScmpFilterCtx = *mut c_void;

type InitFn = unsafe extern "C" fn(u32) -> ScmpFilterCtx;
type ReleaseFn = unsafe extern "C" fn(ScmpFilterCtx);
type ArchAddFn = unsafe extern "C" fn(ScmpFilterCtx, u32) -> c_int;
type ResolveFn = unsafe extern "C" fn(*const c_char) -> c_int;
type RuleAddFn =
    unsafe extern "C" fn(ScmpFilterCtx, u32, c_int, c_uint, *const ScmpArgCmp) -> c_int;
type ExportFn = unsafe extern "C" fn(ScmpFilterCtx, c_int) -> c_int;

/// The libseccomp entry points we use, resolved from the dlopen()ed library.
struct Lib {
    init: InitFn,
    release: ReleaseFn,
    arch_add: ArchAddFn,
    resolve_name: ResolveFn,
    rule_add_array: RuleAddFn,
    export_bpf: ExportFn,
}

// SAFETY: the struct only holds function pointers into a library that is never unloaded.
unsafe impl Send for Lib {}
unsafe impl Sync for Lib {}

fn lib() -> Result<&'static Lib> {
    static LIB: OnceLock<std::result::Result<Lib, Error>> = OnceLock::new();
    LIB.get_or_init(load_lib).as_ref().map_err(Clone::clone)
}

fn load_lib() -> Result<Lib> {
    let name = CString::new(LIBSECCOMP).map_err(|_| Error::msg("bad library name"))?;
    // SAFETY: dlopen with a valid C string; the handle is intentionally never closed.
    let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        // SAFETY: dlerror returns a thread-local C string or NULL.
        let why = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                String::from("unknown error")
            } else {
                std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(Error::new(
            libc::ENOTSUP,
            format!("seccomp profile requested but `{LIBSECCOMP}` cannot be loaded (install libseccomp2): {why}"),
        ));
    }
    let sym = |s: &str| -> Result<*mut c_void> {
        let c = CString::new(s).map_err(|_| Error::msg("bad symbol name"))?;
        // SAFETY: valid handle and C string.
        let p = unsafe { libc::dlsym(h, c.as_ptr()) };
        if p.is_null() {
            return Err(Error::new(
                libc::ENOTSUP,
                format!("`{LIBSECCOMP}` has no symbol `{s}`"),
            ));
        }
        Ok(p)
    };
    // SAFETY: each symbol has the C prototype declared in <seccomp.h> that we transmute to.
    unsafe {
        Ok(Lib {
            init: std::mem::transmute::<*mut c_void, InitFn>(sym("seccomp_init")?),
            release: std::mem::transmute::<*mut c_void, ReleaseFn>(sym("seccomp_release")?),
            arch_add: std::mem::transmute::<*mut c_void, ArchAddFn>(sym("seccomp_arch_add")?),
            resolve_name: std::mem::transmute::<*mut c_void, ResolveFn>(sym(
                "seccomp_syscall_resolve_name",
            )?),
            rule_add_array: std::mem::transmute::<*mut c_void, RuleAddFn>(sym(
                "seccomp_rule_add_array",
            )?),
            export_bpf: std::mem::transmute::<*mut c_void, ExportFn>(sym("seccomp_export_bpf")?),
        })
    }
}

/// Whether libseccomp can be loaded on this machine.
pub fn available() -> bool {
    lib().is_ok()
}

/// A compiled filter, ready to load.
#[derive(Debug, Clone)]
pub struct SeccompFilter {
    prog: Vec<libc::sock_filter>,
    flags: c_uint,
    notify: bool,
}

/// Owns a libseccomp context.
struct Ctx<'a> {
    lib: &'a Lib,
    ctx: ScmpFilterCtx,
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        // SAFETY: ctx came from seccomp_init and is released once.
        unsafe { (self.lib.release)(self.ctx) }
    }
}

fn action_value(a: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    let e = errno_ret.unwrap_or(libc::EPERM as u32);
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SCMP_ACT_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => SCMP_ACT_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => SCMP_ACT_TRAP,
        LinuxSeccompAction::ScmpActErrno => scmp_act_errno(e),
        LinuxSeccompAction::ScmpActNotify => SCMP_ACT_NOTIFY,
        LinuxSeccompAction::ScmpActTrace => scmp_act_trace(e),
        LinuxSeccompAction::ScmpActLog => SCMP_ACT_LOG,
        LinuxSeccompAction::ScmpActAllow => SCMP_ACT_ALLOW,
    }
}

fn op_value(op: LinuxSeccompOperator) -> c_uint {
    op as c_uint
}

/// The libseccomp comparisons for one rule: `[all]` (AND) or one per argument when an argument
/// index repeats (OR, crun's and runc's interpretation).
fn arg_groups(sc: &LinuxSyscall) -> Result<Vec<Vec<ScmpArgCmp>>> {
    let args = sc.args().as_deref().unwrap_or(&[]);
    let mut cmps = Vec::with_capacity(args.len());
    for a in args {
        if a.index() > 5 {
            crate::bail!(
                libc::EINVAL,
                "seccomp: syscall `{}`: argument index {} out of range (0-5)",
                sc.names().join(","),
                a.index()
            );
        }
        cmps.push(ScmpArgCmp {
            arg: a.index() as c_uint,
            op: op_value(a.op()),
            datum_a: a.value(),
            datum_b: a.value_two().unwrap_or(0),
        });
    }
    let mut seen = [false; 6];
    let repeated = cmps.iter().any(|c| {
        let r = seen[c.arg as usize];
        seen[c.arg as usize] = true;
        r
    });
    if repeated {
        Ok(cmps.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![cmps])
    }
}

/// libseccomp's token for an OCI architecture (oci-spec's discriminants are libseccomp's
/// `SCMP_ARCH_*` values).
fn arch_token(a: Arch) -> u32 {
    a as u32
}

/// Compile `cfg` into a filter.  Errors name the offending part of the profile.
pub fn prepare(cfg: &LinuxSeccomp) -> Result<SeccompFilter> {
    let lib = lib()?;
    let default = action_value(cfg.default_action(), cfg.default_errno_ret());
    // SAFETY: plain library call; NULL means failure.
    let raw = unsafe { (lib.init)(default) };
    if raw.is_null() {
        crate::bail!(
            libc::EINVAL,
            "seccomp: cannot initialize filter with default action `{}`",
            cfg.default_action()
        );
    }
    let ctx = Ctx { lib, ctx: raw };

    for &arch in cfg.architectures().as_deref().unwrap_or(&[]) {
        if arch == Arch::ScmpArchNative {
            continue;
        }
        // SAFETY: valid ctx.
        let rc = unsafe { (lib.arch_add)(ctx.ctx, arch_token(arch)) };
        if rc < 0 && -rc != libc::EEXIST {
            crate::log::warning(&format!(
                "seccomp: architecture `{arch}` is not supported by libseccomp, skipped: {}",
                crate::error::strerror(-rc)
            ));
        }
    }

    let mut notify = false;
    for sc in cfg.syscalls().as_deref().unwrap_or(&[]) {
        let action = action_value(sc.action(), sc.errno_ret());
        if action == default {
            continue;
        }
        if sc.action() == LinuxSeccompAction::ScmpActNotify {
            notify = true;
        }
        let groups = arg_groups(sc)?;
        for name in sc.names() {
            let cname = CString::new(name.as_str()).map_err(|_| {
                Error::new(libc::EINVAL, format!("seccomp: bad syscall name `{name}`"))
            })?;
            // SAFETY: valid C string.
            let nr = unsafe { (lib.resolve_name)(cname.as_ptr()) };
            if nr == -1 {
                // __NR_SCMP_ERROR: no such syscall on any architecture libseccomp knows.
                crate::log::warning(&format!("seccomp: unknown syscall `{name}`, rule skipped"));
                continue;
            }
            for g in &groups {
                // SAFETY: valid ctx; g points to g.len() initialized comparisons.
                let rc = unsafe {
                    (lib.rule_add_array)(ctx.ctx, action, nr, g.len() as c_uint, g.as_ptr())
                };
                if rc < 0 {
                    return Err(Error::new(
                        -rc,
                        format!(
                            "seccomp: add rule for syscall `{name}` (action `{}`)",
                            sc.action()
                        ),
                    ));
                }
            }
        }
    }

    let mut flags: c_uint = 0;
    for f in cfg.flags().as_deref().unwrap_or(&[]) {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        };
    }
    if notify || cfg.listener_path().is_some() {
        notify = true;
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if flags & SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }

    let prog = export(&ctx)?;
    Ok(SeccompFilter {
        prog,
        flags,
        notify,
    })
}

/// Export the context's BPF through a memfd and parse it into instructions.
fn export(ctx: &Ctx) -> Result<Vec<libc::sock_filter>> {
    let name = CString::new("crun-rs-seccomp").map_err(|_| Error::msg("bad memfd name"))?;
    // SAFETY: valid C string; the fd is owned right away.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os_error("memfd_create"));
    }
    // SAFETY: fd is a fresh, owned descriptor.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: valid ctx and fd.
    let rc = unsafe { (ctx.lib.export_bpf)(ctx.ctx, file.as_raw_fd()) };
    if rc < 0 {
        return Err(Error::new(-rc, "seccomp: export BPF program"));
    }
    file.rewind().context("seccomp: rewind BPF memfd")?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .context("seccomp: read BPF program")?;
    let insn = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || bytes.len() % insn != 0 || bytes.len() / insn > u16::MAX as usize {
        crate::bail!(
            libc::EINVAL,
            "seccomp: libseccomp produced an invalid BPF program of {} bytes",
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(insn)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

impl SeccompFilter {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.prog.len()
    }

    /// Never true for a prepared filter (libseccomp always emits at least the arch check).
    pub fn is_empty(&self) -> bool {
        self.prog.is_empty()
    }

    /// Whether [`SeccompFilter::apply`] will return a user-notification listener fd.
    pub fn has_listener(&self) -> bool {
        self.notify
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to `seccomp(2)`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Load the filter into the calling thread (or all threads with `SECCOMP_FILTER_FLAG_TSYNC`).
    /// Returns the listener fd when the profile has notify rules or a `listenerPath`.
    pub fn apply(self) -> Result<Option<OwnedFd>> {
        let fprog = libc::sock_fprog {
            len: self.prog.len() as u16,
            filter: self.prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: fprog points to self.prog, alive for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                self.flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if errno == libc::ENOSYS && self.flags == 0 {
                // Kernels before 3.17 have no seccomp(2).
                // SAFETY: as above.
                let rc = unsafe {
                    libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER,
                        &fprog as *const libc::sock_fprog,
                    )
                };
                if rc < 0 {
                    return Err(Error::last_os_error("prctl (PR_SET_SECCOMP)"));
                }
                return Ok(None);
            }
            return Err(Error::new(errno, "seccomp (SECCOMP_SET_MODE_FILTER)"));
        }
        if self.notify {
            // SAFETY: with NEW_LISTENER the return value is a new fd we own; the kernel creates
            // it with O_CLOEXEC.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as c_int) }));
        }
        Ok(None)
    }
}

/// The data of the message that carries the seccomp user-notification fd to the agent, the
/// spec's `containerProcessState`: `{"ociVersion", "fds": ["seccompFd"], "pid", "metadata",
/// "state"}`.
pub fn listener_message(pid: i32, metadata: &str, state: &serde_json::Value) -> Result<Vec<u8>> {
    let msg = serde_json::json!({
        "ociVersion": "1.0.2",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    });
    serde_json::to_vec(&msg).map_err(|e| {
        Error::new(
            libc::EINVAL,
            format!("serialize container process state: {e}"),
        )
    })
}

/// Send the seccomp user-notification `fd` to the agent listening on `listener_path`
/// (`linux.seccomp.listenerPath`), as the spec's `containerProcessState`: one `SOCK_STREAM`
/// message whose data is `{"ociVersion", "fds": ["seccompFd"], "pid", "metadata", "state"}` and
/// whose `SCM_RIGHTS` carries the fd.  `state` is the container state object.
pub fn send_listener_fd(
    listener_path: &str,
    fd: std::os::fd::BorrowedFd<'_>,
    pid: i32,
    metadata: Option<&str>,
    state: &serde_json::Value,
) -> Result<()> {
    let payload = listener_message(pid, metadata.unwrap_or(""), state)?;
    let sock = crate::console::socket::open_unix_domain_client_socket(listener_path, false)
        .context("seccomp listener")?;
    crate::console::socket::send_fd_to_socket(sock.as_raw_fd(), fd.as_raw_fd(), &payload)
        .with_context(|| format!("send seccomp fd to `{listener_path}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn action_values() {
        assert_eq!(
            action_value(LinuxSeccompAction::ScmpActErrno, None),
            0x0005_0001
        );
        assert_eq!(
            action_value(LinuxSeccompAction::ScmpActErrno, Some(38)),
            0x0005_0026
        );
        assert_eq!(
            action_value(LinuxSeccompAction::ScmpActKillProcess, None),
            0x8000_0000
        );
        assert_eq!(
            action_value(LinuxSeccompAction::ScmpActAllow, None),
            0x7fff_0000
        );
    }

    #[test]
    fn repeated_index_splits_rule() {
        let sc: LinuxSyscall = serde_json::from_str(
            r#"{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[
                {"index":1,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}"#,
        )
        .unwrap();
        assert_eq!(arg_groups(&sc).unwrap().len(), 2);
        let sc: LinuxSyscall = serde_json::from_str(
            r#"{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[
                {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":2,"value":2,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}]}"#,
        )
        .unwrap();
        let g = arg_groups(&sc).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].len(), 2);
        assert_eq!((g[0][1].op, g[0][1].datum_b), (7, 3));
        let sc: LinuxSyscall = serde_json::from_str(
            r#"{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}"#,
        )
        .unwrap();
        assert_eq!(arg_groups(&sc).unwrap_err().errno(), libc::EINVAL);
    }

    #[test]
    fn prepare_compiles_and_flags() {
        if !available() {
            eprintln!("skipped: {LIBSECCOMP} not available");
            return;
        }
        let f = prepare(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls":[{"names":["mkdir","no_such_syscall_xyz"],"action":"SCMP_ACT_ERRNO","errnoRet":5}]}"#,
        ))
        .unwrap();
        assert!(f.len() > 3);
        assert_eq!(f.flags(), SECCOMP_FILTER_FLAG_LOG);
        assert!(!f.has_listener());
        let f = prepare(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap();
        assert!(f.has_listener());
        assert_eq!(f.flags() & SECCOMP_FILTER_FLAG_NEW_LISTENER, 8);
    }
}
