//! The krun handler: run the container's workload in a libkrun microVM.
//!
//! libkrun is loaded at run time with `dlopen` (no link-time dependency), as crun does:
//! `libkrun.so.1`, `libkrun-sev.so.1` and `libkrun-awsnitro.so.1`.  Every `krun_*` call returns
//! a negative errno on failure; it becomes a positive errno on an [`Error`] whose message names
//! the call, so users read "could not start krun: Invalid argument", never "Unknown error -22"
//! (crun issues #1660, #1958).
//!
//! Differences from crun (see `docs/krun.md`): invalid VM settings (cpus above 255, RAM above
//! `u32`, non-integers, negative values, unknown flavours) are rejected with EINVAL naming the
//! key before any `krun_*` call (crun truncates cpus to 8 bits); device cgroup rules are
//! written as `c MAJOR:MINOR rwm`; a file or symlink already at `.krun_config.json` is
//! replaced, never written through.

use std::ffi::{c_char, CString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use serde_json::{Map, Value};

use super::dynamic::Library;
use super::{ContainerInfo, LoadedHandler, Phase};
use crate::error::{Context, Error, Result};

/// The handler's name.
pub const NAME: &str = "krun";
/// Its `crun --version` feature tag.
pub const FEATURE: &str = "LIBKRUN";
/// The libraries tried, in flavour order (default, SEV, AWS Nitro).
pub const LIBRARIES: [&str; 3] = ["libkrun.so.1", "libkrun-sev.so.1", "libkrun-awsnitro.so.1"];
/// Written into the rootfs for libkrun's guest init (args, env, cwd).
pub const CONFIG_FILE: &str = ".krun_config.json";
/// Optional VM settings in the rootfs.
pub const VM_FILE: &str = ".krun_vm.json";
/// Its presence selects the SEV flavour (backward compatibility).
pub const SEV_FILE: &str = "krun-sev.json";

const DEFAULT_VIRTIOFS_TAG: &str = "/dev/root";
const DEFAULT_VIRTIOFS_SHM: u64 = 512 * 1024 * 1024;
const DEFAULT_RAM_MIB: u32 = 1024;
const MIN_RAM_MIB: i64 = 128;
const MAX_DEFAULT_CPUS: usize = 16;
/// virglrenderer's `VIRGL_RENDERER_RENDER_SERVER` flag.
const VIRGLRENDERER_RENDER_SERVER: u32 = 1 << 9;
const VIRGL_RENDER_SERVER: &str = "/usr/libexec/virgl_render_server";
/// The MAC address crun gives the passt-backed interface.
const PASST_MAC: [u8; 6] = [0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee];
/// libkrun's `COMPAT_NET_FEATURES`: CSUM, GUEST_CSUM, GUEST_TSO4, GUEST_UFO, HOST_TSO4, HOST_UFO.
/// (Not in libcrun.h: it would clash with libkrun.h.)
/// cbindgen:ignore
pub const COMPAT_NET_FEATURES: u32 = 1 | (1 << 1) | (1 << 7) | (1 << 10) | (1 << 11) | (1 << 14);
/// libkrun's `NET_FLAG_DHCP_CLIENT` (1.18+).
/// cbindgen:ignore
pub const NET_FLAG_DHCP_CLIENT: u32 = 1 << 1;

/// libkrun build flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `libkrun.so.1`: virtio-fs root.
    Default,
    /// `libkrun-sev.so.1`: encrypted disk image (`/disk.img`) and `/krun-sev.json`.
    Sev,
    /// `libkrun-awsnitro.so.1`: an AWS Nitro enclave.
    AwsNitro,
}

impl Flavor {
    fn index(self) -> usize {
        match self {
            Flavor::Default => 0,
            Flavor::Sev => 1,
            Flavor::AwsNitro => 2,
        }
    }

    /// The library this flavour needs.
    pub fn library(self) -> &'static str {
        LIBRARIES[self.index()]
    }
}

/// An external kernel (`kernel_path` and friends in `.krun_vm.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    pub path: String,
    pub format: u32,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
}

/// Everything the handler passes to libkrun, validated up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSettings {
    pub flavor: Flavor,
    pub cpus: u8,
    pub ram_mib: u32,
    pub gpu_flags: u32,
    pub nested_virt: bool,
    pub use_passt: bool,
    pub virtiofs_tag: String,
    pub virtiofs_shm_size: u64,
    pub kernel: Option<KernelConfig>,
}

fn invalid(msg: String) -> Error {
    Error::new(libc::EINVAL, msg)
}

/// An integer setting: the annotation `ann` wins over the `.krun_vm.json` key `key`.
/// Non-integers and negative values are EINVAL naming where the value came from.
fn int_setting(
    spec: &oci_spec::runtime::Spec,
    vm: Option<&Map<String, Value>>,
    ann: Option<&str>,
    key: &str,
) -> Result<Option<(i64, String)>> {
    if let Some(ann) = ann {
        if let Some(v) = spec.annotations().as_ref().and_then(|a| a.get(ann)) {
            let what = format!("annotation `{ann}`");
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| invalid(format!("invalid value `{v}` for {what}: not an integer")))?;
            if n < 0 {
                return Err(invalid(format!(
                    "invalid value `{v}` for {what}: must not be negative"
                )));
            }
            return Ok(Some((n, what)));
        }
    }
    match vm.and_then(|m| m.get(key)) {
        None => Ok(None),
        Some(v) => {
            let what = format!("`{key}` in `/{VM_FILE}`");
            let n = v.as_i64().ok_or_else(|| {
                invalid(format!("invalid value `{v}` for {what}: not an integer"))
            })?;
            if n < 0 {
                return Err(invalid(format!(
                    "invalid value `{v}` for {what}: must not be negative"
                )));
            }
            Ok(Some((n, what)))
        }
    }
}

fn str_setting<'a>(vm: Option<&'a Map<String, Value>>, key: &str) -> Result<Option<&'a str>> {
    match vm.and_then(|m| m.get(key)) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(invalid(format!(
            "invalid value `{v}` for `{key}` in `/{VM_FILE}`: not a string"
        ))),
    }
}

fn in_range<T: TryFrom<i64>>(v: Option<(i64, String)>, max: &str) -> Result<Option<T>> {
    match v {
        None => Ok(None),
        Some((n, what)) => T::try_from(n)
            .map(Some)
            .map_err(|_| invalid(format!("invalid value `{n}` for {what}: at most {max}"))),
    }
}

/// CPUs this process may run on, capped at 16 (crun's default vCPU count); 1 when unknown.
fn default_cpus() -> u8 {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => {
            let n = (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count();
            n.clamp(1, MAX_DEFAULT_CPUS) as u8
        }
        Err(_) => 1,
    }
}

/// Work out the VM settings from the annotations, `/.krun_vm.json` and the defaults, exactly
/// in crun's precedence, rejecting anything libkrun could not be given faithfully.
/// `sev_file` says whether `/krun-sev.json` exists.
pub fn vm_settings(
    spec: &oci_spec::runtime::Spec,
    vm: Option<&Map<String, Value>>,
    sev_file: bool,
) -> Result<VmSettings> {
    let ann = |k: &str| spec.annotations().as_ref().and_then(|a| a.get(k));
    let flavor_name = match ann("krun.variant") {
        Some(v) => Some((v.as_str(), "annotation `krun.variant`".to_string())),
        None => str_setting(vm, "flavor")?.map(|v| (v, format!("`flavor` in `/{VM_FILE}`"))),
    };
    let flavor = match flavor_name {
        Some(("sev", _)) => Flavor::Sev,
        Some(("aws-nitro", _)) => Flavor::AwsNitro,
        Some((v, what)) if !v.is_empty() => {
            return Err(invalid(format!(
                "invalid value `{v}` for {what}: expected `sev` or `aws-nitro`"
            )))
        }
        _ if sev_file => Flavor::Sev,
        _ => Flavor::Default,
    };

    let cpus: Option<u8> = in_range(int_setting(spec, vm, Some("krun.cpus"), "cpus")?, "255")?;
    let cpus = match cpus {
        Some(n) if n > 0 => n,
        _ => default_cpus(),
    };

    let ram = int_setting(spec, vm, Some("krun.ram_mib"), "ram_mib")?;
    let ram_mib = match in_range::<u32>(ram, "4294967295")? {
        Some(n) if i64::from(n) > MIN_RAM_MIB => n,
        _ => {
            let limit = spec
                .linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.memory().as_ref())
                .and_then(|m| m.limit());
            match limit {
                Some(l) if l > 0 => u32::try_from(l / (1024 * 1024)).map_err(|_| {
                    invalid(format!(
                        "invalid value `{l}` for `linux.resources.memory.limit`: \
                         more than 4294967295 MiB"
                    ))
                })?,
                _ => DEFAULT_RAM_MIB,
            }
        }
    };

    let gpu_flags: u32 = in_range(
        int_setting(spec, vm, Some("krun.gpu_flags"), "gpu_flags")?,
        "4294967295",
    )?
    .unwrap_or(0);
    let nested_virt =
        int_setting(spec, vm, Some("krun.nested_virt"), "nested_virt")?.is_some_and(|(n, _)| n > 0);
    let use_passt =
        int_setting(spec, vm, Some("krun.use_passt"), "use_passt")?.is_some_and(|(n, _)| n > 0);

    let virtiofs_tag = str_setting(vm, "virtiofs_tag")?
        .unwrap_or(DEFAULT_VIRTIOFS_TAG)
        .to_string();
    let virtiofs_shm_size = match int_setting(spec, vm, None, "virtiofs_shm_size")? {
        Some((n, _)) => n as u64,
        None => DEFAULT_VIRTIOFS_SHM,
    };

    let kernel_path = str_setting(vm, "kernel_path")?;
    let kernel_format: Option<u32> =
        in_range(int_setting(spec, vm, None, "kernel_format")?, "4294967295")?;
    let kernel = match (kernel_path, kernel_format) {
        (None, None) => None,
        (Some(path), Some(format)) => Some(KernelConfig {
            path: path.to_string(),
            format,
            initrd: str_setting(vm, "initrd_path")?.map(str::to_string),
            cmdline: str_setting(vm, "kernel_cmdline")?.map(str::to_string),
        }),
        (Some(_), None) => {
            return Err(invalid(format!(
                "`kernel_path` in `/{VM_FILE}` requires an integer `kernel_format`"
            )))
        }
        (None, Some(_)) => {
            return Err(invalid(format!(
                "`kernel_format` in `/{VM_FILE}` requires a string `kernel_path`"
            )))
        }
    };

    Ok(VmSettings {
        flavor,
        cpus,
        ram_mib,
        gpu_flags,
        nested_virt,
        use_passt,
        virtiofs_tag,
        virtiofs_shm_size,
        kernel,
    })
}

/// The libkrun log level for crun-rs's verbosity: debug 4, warning 2, otherwise error (1).
pub fn log_level(verbosity: i32) -> u32 {
    match verbosity {
        v if v >= crate::log::VERBOSITY_DEBUG => 4,
        crate::log::VERBOSITY_WARNING => 2,
        _ => 1,
    }
}

/// A negative `krun_*` return becomes a positive errno with `what` as the message.
pub fn krun_result(what: &str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(Error::new(ret, what))
    } else {
        Ok(ret)
    }
}

type CreateCtxFn = unsafe extern "C" fn() -> i32;
type U32Fn = unsafe extern "C" fn(u32) -> i32;
type VoidFn = unsafe extern "C" fn() -> i32;
type CtxStrFn = unsafe extern "C" fn(u32, *const c_char) -> i32;
type CtxU32Fn = unsafe extern "C" fn(u32, u32) -> i32;
type CtxBoolFn = unsafe extern "C" fn(u32, bool) -> i32;
type AddVirtiofs2Fn = unsafe extern "C" fn(u32, *const c_char, *const c_char, u64) -> i32;
type SetVmConfigFn = unsafe extern "C" fn(u32, u8, u32) -> i32;
type SetExecFn =
    unsafe extern "C" fn(u32, *const c_char, *const *const c_char, *const *const c_char) -> i32;
type AddNetUnixstreamFn = unsafe extern "C" fn(u32, *const c_char, i32, *mut u8, u32, u32) -> i32;
type SetKernelFn =
    unsafe extern "C" fn(u32, *const c_char, u32, *const c_char, *const c_char) -> i32;

/// One loaded libkrun flavour and the context created in it.
#[derive(Debug)]
struct KrunLib {
    lib: Library,
    ctx: u32,
}

impl KrunLib {
    /// A required symbol.
    ///
    /// # Safety
    /// `F` must match the symbol's C signature.
    unsafe fn require<F: Copy>(&self, name: &str) -> Result<F> {
        self.lib.function::<F>(name).ok_or_else(|| {
            Error::new(
                libc::ENOSYS,
                format!(
                    "could not find symbol `{name}` in the krun library `{}`",
                    self.lib.name()
                ),
            )
        })
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| invalid(format!("{what} `{s}` contains a NUL byte")))
}

/// Host device nodes the VM needs (`st_rdev`, or `None` when absent).
#[derive(Debug, Clone, Copy, Default)]
struct HostDevices {
    kvm: Option<u64>,
    sev: Option<u64>,
    nitro: Option<u64>,
}

fn stat_device(path: &str) -> Result<Option<u64>> {
    match nix::sys::stat::stat(path) {
        Ok(st) => Ok(Some(st.st_rdev)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::new(e as i32, format!("stat `{path}`"))),
    }
}

impl HostDevices {
    fn probe() -> Result<Self> {
        Ok(HostDevices {
            kvm: stat_device("/dev/kvm")?,
            sev: stat_device("/dev/sev")?,
            nitro: stat_device("/dev/nitro_enclaves")?,
        })
    }
}

/// The krun handler instance (crun's `struct krun_config`).
#[derive(Debug)]
pub struct KrunHandler {
    libs: [Option<KrunLib>; 3],
    devices: Option<HostDevices>,
    vm_config: Option<Map<String, Value>>,
    /// Our end of the socket pair shared with passt (`krun.use_passt`).
    passt_fd: Option<OwnedFd>,
}

impl KrunHandler {
    /// crun's `libkrun_load`: open the libkrun flavours from the library search path and create
    /// a context in each (before any namespace change: this is when libkrun opens libkrunfw).
    pub fn load() -> Result<Self> {
        Self::load_from(None)
    }

    /// [`KrunHandler::load`], looking for the libraries in `dir` when given.
    pub fn load_from(dir: Option<&Path>) -> Result<Self> {
        let mut libs: [Option<KrunLib>; 3] = [None, None, None];
        let mut last_err = String::new();
        for (i, name) in LIBRARIES.iter().enumerate() {
            let path = match dir {
                Some(d) => d.join(name).to_string_lossy().into_owned(),
                None => (*name).to_string(),
            };
            match Library::open(&path) {
                Ok(lib) => libs[i] = Some(KrunLib { lib, ctx: 0 }),
                Err(e) => last_err = e,
            }
        }
        if libs.iter().all(Option::is_none) {
            return Err(Error::new(
                libc::ENOENT,
                format!(
                    "failed to open `{}`, `{}`, and `{}` for krun_config: {last_err}",
                    LIBRARIES[0], LIBRARIES[1], LIBRARIES[2]
                ),
            ));
        }
        // Dropping `libs` on an error below dlcloses every handle.
        for k in libs.iter_mut().flatten() {
            // SAFETY: `int32_t krun_create_ctx(void)`.
            let create: CreateCtxFn = unsafe { k.require("krun_create_ctx")? };
            // SAFETY: calling into libkrun with no arguments.
            let ctx = krun_result("could not create krun context", unsafe { create() })?;
            k.ctx = ctx as u32;
        }
        Ok(KrunHandler {
            libs,
            devices: None,
            vm_config: None,
            passt_fd: None,
        })
    }

    /// Which flavours loaded (default, SEV, AWS Nitro).
    pub fn loaded_flavors(&self) -> Vec<Flavor> {
        [Flavor::Default, Flavor::Sev, Flavor::AwsNitro]
            .into_iter()
            .filter(|f| self.libs[f.index()].is_some())
            .collect()
    }

    /// The parsed `/.krun_vm.json`, once [`Phase::BeforeUserns`] has read it.
    pub fn vm_config(&self) -> Option<&Map<String, Value>> {
        self.vm_config.as_ref()
    }

    fn devices(&mut self) -> Result<HostDevices> {
        match self.devices {
            Some(d) => Ok(d),
            None => {
                let d = HostDevices::probe()?;
                self.devices = Some(d);
                Ok(d)
            }
        }
    }

    /// BeforeUserns: write `.krun_config.json`, read `.krun_vm.json`, validate the settings.
    fn before_userns(&mut self, info: &ContainerInfo, rootfs: &Path) -> Result<()> {
        let rootfs = if rootfs.is_relative() {
            info.bundle.join(rootfs)
        } else {
            rootfs.to_path_buf()
        };
        let state_config = info.state_dir.join("config.json");
        let data = match std::fs::read(&state_config) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::to_vec(info.spec)
                .map_err(|e| Error::msg(format!("serialize the configuration: {e}")))?,
            Err(e) => {
                return Err(Error::new(
                    e.raw_os_error().unwrap_or(libc::EIO),
                    format!("read `{}`", state_config.display()),
                ))
            }
        };
        let root = open_dir(&rootfs)?;
        write_file_in_dir(&root, &rootfs, CONFIG_FILE, &data, 0o444)?;

        self.vm_config = match read_file_in_dir(&root, &rootfs, VM_FILE)? {
            None => None,
            Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => Some(m),
                Ok(_) => {
                    return Err(invalid(format!(
                        "`{}/{VM_FILE}` is not a JSON object",
                        rootfs.display()
                    )))
                }
                Err(e) => {
                    return Err(invalid(format!(
                        "parse `{}/{VM_FILE}`: {e}",
                        rootfs.display()
                    )))
                }
            },
        };
        let sev_file = exists_in_dir(&root, SEV_FILE);
        let settings = vm_settings(info.spec, self.vm_config.as_ref(), sev_file)?;
        if self.libs[settings.flavor.index()].is_none() {
            return Err(missing_flavor(settings.flavor));
        }
        Ok(())
    }

    /// AfterMounts: create `/dev/kvm` (and `/dev/sev`, `/dev/nitro_enclaves` when their
    /// libraries loaded) in the container's `/dev` unless the configuration lists them.
    fn after_mounts(&mut self, info: &ContainerInfo, rootfs: &Path) -> Result<()> {
        let devs = self.devices()?;
        let sev_file = open_dir(rootfs)
            .map(|d| exists_in_dir(&d, SEV_FILE))
            .unwrap_or(false);
        if vm_settings(info.spec, self.vm_config.as_ref(), sev_file)?.use_passt
            && self.passt_fd.is_none()
        {
            self.passt_fd = Some(start_passt(devs.nitro.is_some())?);
        }
        let listed = |p: &str| {
            info.spec
                .linux()
                .as_ref()
                .and_then(|l| l.devices().as_ref())
                .is_some_and(|d| d.iter().any(|d| d.path() == Path::new(p)))
        };
        let wanted = [
            ("kvm", devs.kvm, true, (10, 232)),
            ("sev", devs.sev, self.libs[1].is_some(), (10, 124)),
            (
                "nitro_enclaves",
                devs.nitro,
                self.libs[2].is_some(),
                (10, 122),
            ),
        ];
        if wanted
            .iter()
            .all(|w| w.1.is_none() || !w.2 || listed(&format!("/dev/{}", w.0)))
        {
            return Ok(());
        }
        let rootfs_fd = open_dir(rootfs)?;
        let dev = open_subdir(&rootfs_fd, rootfs, "dev")?;
        let userns = in_user_namespace();
        for (i, (name, present, enabled, (major, minor))) in wanted.into_iter().enumerate() {
            if present.is_none() || !enabled || listed(&format!("/dev/{name}")) {
                continue;
            }
            let r = create_device(&dev, rootfs, name, major, minor, userns);
            match (i, r) {
                (_, Ok(())) => {}
                // crun: a flavour device that cannot be made disables that flavour.
                (1 | 2, Err(e)) => {
                    crate::log::warning(&format!("{e}; disabling `{}`", LIBRARIES[i]));
                    self.libs[i] = None;
                }
                (_, Err(e)) => return Err(e),
            }
        }
        Ok(())
    }
}

fn missing_flavor(f: Flavor) -> Error {
    Error::new(
        libc::ENOENT,
        format!(
            "the container requires {} but it's not available",
            f.library().trim_end_matches(".so.1")
        ),
    )
}

/// `open(path, O_PATH|O_DIRECTORY|O_CLOEXEC)`.
fn open_dir(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("open `{}`", path.display()))?;
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Only a single path component: with `O_NOFOLLOW` nothing can lead outside the directory
/// (CVE-2025-24965: a symlink planted in the image must not redirect our writes).
fn check_component(name: &str) -> Result<CString> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(invalid(format!("invalid file name `{name}`")));
    }
    cstring(name, "file name")
}

fn openat(dir: &OwnedFd, name: &str, flags: i32, mode: libc::mode_t) -> nix::Result<OwnedFd> {
    let c = check_component(name).map_err(|_| nix::errno::Errno::EINVAL)?;
    // SAFETY: dir is a live descriptor, c a valid C string.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            mode,
        )
    };
    if fd < 0 {
        Err(nix::errno::Errno::last())
    } else {
        // SAFETY: fresh descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn open_subdir(dir: &OwnedFd, dir_path: &Path, name: &str) -> Result<OwnedFd> {
    openat(dir, name, libc::O_PATH | libc::O_DIRECTORY, 0)
        .with_context(|| format!("open `{}/{name}`", dir_path.display()))
}

/// Replace `dir/name` with a new file holding `data`, with mode `mode`.  Whatever was there
/// (a file, or a symlink planted to redirect the write) is unlinked first and the new file is
/// created with `O_CREAT|O_EXCL|O_NOFOLLOW`, so the write never goes through a link.
fn write_file_in_dir(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<()> {
    let shown = || format!("`{}/{name}`", dir_path.display());
    let c = check_component(name)?;
    // SAFETY: dir is live, c valid.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) } < 0 {
        let e = nix::errno::Errno::last();
        if e != nix::errno::Errno::ENOENT {
            return Err(Error::new(e as i32, format!("unlink {}", shown())));
        }
    }
    let fd = openat(
        dir,
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        mode as libc::mode_t,
    )
    .with_context(|| format!("create {}", shown()))?;
    let mut f = File::from(fd);
    f.write_all(data)
        .with_context(|| format!("write {}", shown()))?;
    // The umask may have removed bits: set the mode exactly.
    nix::sys::stat::fchmod(
        f.as_raw_fd(),
        nix::sys::stat::Mode::from_bits_truncate(mode as libc::mode_t),
    )
    .with_context(|| format!("chmod {}", shown()))?;
    Ok(())
}

/// Read `dir/name` without following a symlink; `None` when it does not exist.
fn read_file_in_dir(dir: &OwnedFd, dir_path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let fd = match openat(dir, name, libc::O_RDONLY, 0) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(Error::new(
                e as i32,
                format!("open `{}/{name}`", dir_path.display()),
            ))
        }
    };
    let mut buf = Vec::new();
    File::from(fd)
        .read_to_end(&mut buf)
        .with_context(|| format!("read `{}/{name}`", dir_path.display()))?;
    Ok(Some(buf))
}

fn exists_in_dir(dir: &OwnedFd, name: &str) -> bool {
    openat(dir, name, libc::O_PATH, 0).is_ok()
}

/// Whether this process is in a user namespace other than the initial one.
fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

/// Make `dir/name` a character device `major:minor` with mode 0666: `mknod` as real root,
/// a bind mount of the host node inside a user namespace.  An existing entry is kept.
fn create_device(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &str,
    major: u64,
    minor: u64,
    userns: bool,
) -> Result<()> {
    let shown = format!("{}/dev/{name}", dir_path.display());
    let c = check_component(name)?;
    if userns {
        let fd = match openat(dir, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::EEXIST) => return Ok(()),
            Err(e) => return Err(Error::new(e as i32, format!("create `{shown}`"))),
        };
        let target = format!("/proc/self/fd/{}", fd.as_raw_fd());
        nix::mount::mount(
            Some(format!("/dev/{name}").as_str()),
            target.as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind mount `/dev/{name}` to `{shown}`"))?;
        return Ok(());
    }
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: dir is live, c valid.
    let r = unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), libc::S_IFCHR | 0o666, dev) };
    if r < 0 {
        let e = nix::errno::Errno::last();
        if e == nix::errno::Errno::EEXIST {
            return Ok(());
        }
        return Err(Error::new(e as i32, format!("mknod `{shown}`")));
    }
    // We just made it a device node (not a link), so following is safe; fix the umask.
    // SAFETY: dir is live, c valid.
    if unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), 0o666, 0) } < 0 {
        return Err(Error::last_os_error(format!("chmod `{shown}`")));
    }
    Ok(())
}

/// Close every descriptor in `from..=to` (crun's `mark_or_close_fds_ge_than`).  Uses
/// `close_range(2)`, which needs no `/proc`; older kernels fall back to `/proc/self/fd`, then
/// to every number below `RLIMIT_NOFILE`.
fn close_fds_range(from: i32, to: i32) -> Result<()> {
    if to < from {
        return Ok(());
    }
    let (from, to) = (from.max(0) as libc::c_uint, to as libc::c_uint);
    // SAFETY: closing descriptors the container process does not need any more.
    if unsafe { libc::close_range(from, to, 0) } == 0 {
        return Ok(());
    }
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            .filter(|&fd| fd >= from as i32 && fd <= to as i32)
            .collect(),
        Err(_) => {
            let (_, max) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .context("getrlimit RLIMIT_NOFILE")?;
            (from as i32..max.min(1 << 20).min(u64::from(to) + 1) as i32).collect()
        }
    };
    for fd in fds {
        // SAFETY: as above; EBADF for numbers not in use is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// crun's `libkrun_start_passt`: run `passt` (from `PATH`) on one end of a socket pair in the
/// container's network namespace and return the other end.  passt daemonizes; a failure to
/// execute it or a nonzero exit is reported with its errno or status.
fn start_passt(has_nitro: bool) -> Result<OwnedFd> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .context("start passt: socketpair")?;
    let fd = theirs.as_raw_fd();
    let mut args = vec!["passt", "-t", "all"];
    if !has_nitro {
        args.extend(["-u", "all", "--no-dhcp-dns"]);
    }
    let fd_s = fd.to_string();
    args.extend(["--no-map-gw", "--fd", fd_s.as_str()]);
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<_>>()?;
    let argv = ptrs(&cargs);
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("start passt: pipe")?;
    // SAFETY: the child only calls async-signal-safe functions before execvp or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os_error("start passt: fork"));
    }
    if pid == 0 {
        // SAFETY: in the child: keep `theirs` across exec, silence output, exec passt; on
        // failure send errno through the CLOEXEC pipe.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 1);
                libc::dup2(null, 2);
            }
            libc::execvp(argv[0], argv.as_ptr());
            let e = *libc::__errno_location();
            libc::write(err_w.as_raw_fd(), (&e as *const i32).cast(), 4);
            libc::_exit(127);
        }
    }
    drop(err_w);
    drop(theirs);
    let mut buf = [0u8; 4];
    let n = nix::unistd::read(err_r.as_raw_fd(), &mut buf).unwrap_or(0);
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)
        .context("start passt: waitpid")?;
    if n == 4 {
        return Err(Error::new(
            i32::from_ne_bytes(buf),
            "start passt: execute `passt`",
        ));
    }
    match status {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(ours),
        nix::sys::wait::WaitStatus::Exited(_, c) => Err(Error::msg(format!(
            "start passt: `passt` exited with status {c}"
        ))),
        other => Err(Error::msg(format!(
            "start passt: `passt` ended with {other:?}"
        ))),
    }
}

fn c_array(items: &[String], what: &str) -> Result<Vec<CString>> {
    items.iter().map(|s| cstring(s, what)).collect()
}

fn ptrs(v: &[CString]) -> Vec<*const c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

impl LoadedHandler for KrunHandler {
    fn name(&self) -> &str {
        NAME
    }

    /// Allow `/dev/kvm` (and `/dev/sev`, `/dev/nitro_enclaves`) in the device cgroup.
    fn modify_oci_configuration(&mut self, spec: &mut oci_spec::runtime::Spec) -> Result<()> {
        let devs = HostDevices::probe()?;
        self.devices = Some(devs);
        if devs.kvm.is_none() && devs.nitro.is_none() {
            return Ok(());
        }
        let mut rules = Vec::new();
        let mut add = |rdev: u64| {
            let mut r = oci_spec::runtime::LinuxDeviceCgroup::default();
            r.set_allow(true);
            r.set_typ(Some(oci_spec::runtime::LinuxDeviceType::C));
            r.set_major(Some(libc::major(rdev) as i64));
            r.set_minor(Some(libc::minor(rdev) as i64));
            r.set_access(Some("rwm".to_string()));
            rules.push(r);
        };
        if let Some(k) = devs.kvm {
            add(k);
            if let Some(s) = devs.sev {
                add(s);
            }
        }
        if let Some(n) = devs.nitro {
            add(n);
        }
        let mut linux = spec.linux().clone().unwrap_or_default();
        let mut resources = linux.resources().clone().unwrap_or_default();
        let mut devices = resources.devices().clone().unwrap_or_default();
        devices.extend(rules);
        resources.set_devices(Some(devices));
        linux.set_resources(Some(resources));
        spec.set_linux(Some(linux));
        Ok(())
    }

    fn configure_container(
        &mut self,
        phase: Phase,
        info: &ContainerInfo,
        rootfs: &Path,
    ) -> Result<()> {
        match phase {
            Phase::BeforeUserns => self.before_userns(info, rootfs),
            Phase::AfterMounts => self.after_mounts(info, rootfs),
            Phase::BeforeMounts | Phase::Mounts => Ok(()),
        }
    }

    fn close_fds(&mut self, preserve_fds: i32) -> Result<()> {
        let from = 3 + preserve_fds.max(0);
        match self.passt_fd.as_ref().map(|f| f.as_raw_fd()) {
            // Keep the passt socket: close below and above it.
            Some(p) if p >= from => {
                close_fds_range(from, p - 1)?;
                close_fds_range(p + 1, i32::MAX)
            }
            _ => close_fds_range(from, i32::MAX),
        }
    }

    /// crun's `libkrun_exec`: pick the flavour, configure the VM and enter it.  Every setting
    /// is validated before the first `krun_*` call.
    fn run(&mut self, info: &ContainerInfo, pathname: &str, argv: &[String]) -> Result<i32> {
        let sev_file = Path::new("/").join(SEV_FILE).exists();
        let s = vm_settings(info.spec, self.vm_config.as_ref(), sev_file)?;
        let idx = s.flavor.index();
        if self.libs[idx].is_none() {
            return Err(missing_flavor(s.flavor));
        }
        // Only the chosen flavour stays loaded.
        for (i, l) in self.libs.iter_mut().enumerate() {
            if i != idx {
                *l = None;
            }
        }
        if s.flavor != Flavor::AwsNitro {
            nix::sys::stat::stat("/dev/kvm").context("`/dev/kvm` unavailable")?;
        }
        if s.gpu_flags > 0 {
            nix::sys::stat::stat("/dev/dri")
                .context("krun.gpu_flags: virtio-gpu needs `/dev/dri`")?;
            if s.gpu_flags & VIRGLRENDERER_RENDER_SERVER != 0 {
                nix::sys::stat::stat(VIRGL_RENDER_SERVER).with_context(|| {
                    format!("krun.gpu_flags: the render server needs `{VIRGL_RENDER_SERVER}`")
                })?;
            }
        }
        let tag = cstring(&s.virtiofs_tag, "virtiofs_tag")?;
        let kernel = match &s.kernel {
            Some(k) => Some((
                cstring(&k.path, "kernel_path")?,
                k.initrd
                    .as_deref()
                    .map(|p| cstring(p, "initrd_path"))
                    .transpose()?,
                k.cmdline
                    .as_deref()
                    .map(|p| cstring(p, "kernel_cmdline"))
                    .transpose()?,
            )),
            None => None,
        };
        let exec = if s.flavor == Flavor::AwsNitro {
            let env = info
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.env().clone())
                .unwrap_or_default();
            Some((
                cstring(pathname, "executable")?,
                c_array(argv.get(1..).unwrap_or(&[]), "argument")?,
                c_array(&env, "environment variable")?,
            ))
        } else {
            None
        };

        let Some(k) = self.libs[idx].as_ref() else {
            return Err(missing_flavor(s.flavor));
        };
        let ctx = k.ctx;
        // SAFETY (all calls below): each symbol is looked up with the C signature libkrun
        // declares (libkrun.h) and given pointers that outlive the call.
        unsafe {
            let set_log_level: U32Fn = k.require("krun_set_log_level")?;
            let start_enter: U32Fn = k.require("krun_start_enter")?;
            krun_result(
                "krun_set_log_level",
                set_log_level(log_level(crate::log::verbosity())),
            )?;
            if s.flavor == Flavor::Sev {
                let root_disk: CtxStrFn = k.require("krun_set_root_disk")?;
                krun_result("krun_set_root_disk", root_disk(ctx, c"/disk.img".as_ptr()))?;
                let tee: CtxStrFn = k.require("krun_set_tee_config_file")?;
                krun_result(
                    "krun_set_tee_config_file",
                    tee(ctx, c"/krun-sev.json".as_ptr()),
                )?;
            } else {
                let add_fs: AddVirtiofs2Fn = k.require("krun_add_virtiofs2")?;
                krun_result(
                    "krun_add_virtiofs2",
                    add_fs(ctx, tag.as_ptr(), c"/".as_ptr(), s.virtiofs_shm_size),
                )?;
            }
            if let Some((path, args, env)) = &exec {
                let console: CtxStrFn = k.require("krun_set_console_output")?;
                krun_result(
                    "krun_set_console_output",
                    console(ctx, c"/dev/stdout".as_ptr()),
                )?;
                let set_exec: SetExecFn = k.require("krun_set_exec")?;
                let (a, e) = (ptrs(args), ptrs(env));
                krun_result(
                    "krun_set_exec",
                    set_exec(ctx, path.as_ptr(), a.as_ptr(), e.as_ptr()),
                )?;
            }
            let vm_config: SetVmConfigFn = k.require("krun_set_vm_config")?;
            krun_result("krun_set_vm_config", vm_config(ctx, s.cpus, s.ram_mib))?;
            if s.gpu_flags > 0 {
                // Optional in crun: an old libkrun without GPU support is skipped.
                if let Some(gpu) = k.lib.function::<CtxU32Fn>("krun_set_gpu_options") {
                    krun_result("krun_set_gpu_options", gpu(ctx, s.gpu_flags))?;
                }
            }
            if s.nested_virt {
                if let Some(check) = k.lib.function::<VoidFn>("krun_check_nested_virt") {
                    let r = check();
                    if r != 1 {
                        crate::log::warning(&format!(
                            "krun_check_nested_virt returned {r}: nested virtualization may \
                             not be available"
                        ));
                    }
                }
                let nested: CtxBoolFn = k.require("krun_set_nested_virt")?;
                krun_result("krun_set_nested_virt", nested(ctx, true))?;
            }
            if s.use_passt {
                let Some(fd) = self.passt_fd.as_ref().map(|f| f.as_raw_fd()) else {
                    crate::bail!(
                        libc::EINVAL,
                        "krun.use_passt: passt was not started (AfterMounts did not run)"
                    );
                };
                let add_net: AddNetUnixstreamFn = k.require("krun_add_net_unixstream")?;
                let mut mac = PASST_MAC;
                let mut r = add_net(
                    ctx,
                    std::ptr::null(),
                    fd,
                    mac.as_mut_ptr(),
                    COMPAT_NET_FEATURES,
                    NET_FLAG_DHCP_CLIENT,
                );
                if r == -libc::EINVAL {
                    // libkrun before 1.18 knows no flags.
                    r = add_net(
                        ctx,
                        std::ptr::null(),
                        fd,
                        mac.as_mut_ptr(),
                        COMPAT_NET_FEATURES,
                        0,
                    );
                }
                krun_result("krun_add_net_unixstream", r)?;
            }
            if let (Some((path, initrd, cmdline)), Some(kc)) = (&kernel, &s.kernel) {
                let set_kernel: SetKernelFn = k.require("krun_set_kernel")?;
                krun_result(
                    "krun_set_kernel",
                    set_kernel(
                        ctx,
                        path.as_ptr(),
                        kc.format,
                        initrd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                        cmdline.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                    ),
                )?;
            }
            krun_result("could not start krun", start_enter(ctx))
        }
    }

    fn supports_exec(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ann: &[(&str, &str)]) -> oci_spec::runtime::Spec {
        let a: std::collections::HashMap<_, _> = ann
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        serde_json::from_value(serde_json::json!({"ociVersion": "1.0.0", "annotations": a}))
            .unwrap()
    }

    fn vm(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn annotation_beats_json_and_defaults_apply() {
        let s = vm_settings(
            &spec(&[("krun.cpus", "3"), ("krun.ram_mib", "2048")]),
            Some(&vm(serde_json::json!({"cpus": 5, "ram_mib": 4096}))),
            false,
        )
        .unwrap();
        assert_eq!((s.cpus, s.ram_mib, s.flavor), (3, 2048, Flavor::Default));
        let s = vm_settings(
            &spec(&[]),
            Some(&vm(serde_json::json!({"cpus": 5, "ram_mib": 4096}))),
            false,
        )
        .unwrap();
        assert_eq!((s.cpus, s.ram_mib), (5, 4096));
        let s = vm_settings(&spec(&[("krun.ram_mib", "100")]), None, false).unwrap();
        assert_eq!(s.ram_mib, 1024, "<= 128 MiB falls back to the default");
        assert!(s.cpus >= 1 && s.cpus <= 16);
        assert_eq!(s.virtiofs_tag, "/dev/root");
        assert_eq!(s.virtiofs_shm_size, 512 << 20);
        assert_eq!(
            vm_settings(&spec(&[]), None, true).unwrap().flavor,
            Flavor::Sev
        );
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (k, v, needle) in [
            ("krun.cpus", "abc", "annotation `krun.cpus`: not an integer"),
            ("krun.cpus", "-1", "must not be negative"),
            ("krun.cpus", "256", "at most 255"),
            ("krun.ram_mib", "4294967296", "annotation `krun.ram_mib`"),
            ("krun.variant", "tdx", "annotation `krun.variant`"),
        ] {
            let e = vm_settings(&spec(&[(k, v)]), None, false).unwrap_err();
            assert!(e.message().contains(needle), "{k}={v}: {}", e.message());
            assert_eq!(e.errno(), libc::EINVAL);
        }
        let e = vm_settings(
            &spec(&[]),
            Some(&vm(serde_json::json!({"cpus": "four"}))),
            false,
        )
        .unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert!(e.message().contains("`cpus` in `/.krun_vm.json`"));
        let e = vm_settings(
            &spec(&[]),
            Some(&vm(serde_json::json!({"kernel_path": "/k"}))),
            false,
        )
        .unwrap_err();
        assert!(e.message().contains("kernel_format"));
    }

    #[test]
    fn errno_is_made_positive() {
        let e = krun_result("could not start krun", -22).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert_eq!(e.to_string(), "could not start krun: Invalid argument");
        assert_eq!(krun_result("x", 3).unwrap(), 3);
        assert_eq!(log_level(crate::log::VERBOSITY_DEBUG), 4);
        assert_eq!(log_level(crate::log::VERBOSITY_WARNING), 2);
        assert_eq!(log_level(crate::log::VERBOSITY_ERROR), 1);
    }
}
