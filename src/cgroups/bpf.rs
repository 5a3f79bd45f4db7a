//! cgroup v2 device rules: a hand-assembled `BPF_PROG_TYPE_CGROUP_DEVICE` program loaded with
//! `bpf(BPF_PROG_LOAD)` and attached to the cgroup with `BPF_PROG_ATTACH` (`BPF_F_ALLOW_MULTI`).
//!
//! Semantics are crun's: the default devices (`v1::DEFAULT_DEVICES`) are always allowed, then
//! the configured rules apply with the *last* matching rule winning, and anything unmatched is
//! denied.  The program tests the rules in that priority order and returns at the first match.
//! On an update the new program is attached first and the programs attached before are then
//! detached, so there is no window without a filter.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use super::v1::DEFAULT_DEVICES;
use crate::error::{Error, Result};

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high nibble
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One rule in program terms: type `'a'|'b'|'c'`, major/minor (-1 = any), access, allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub typ: char,
    pub major: i64,
    pub minor: i64,
    pub access: String,
    pub allow: bool,
}

impl Rule {
    fn from_oci(d: &LinuxDeviceCgroup) -> Result<Rule> {
        let typ = d
            .typ()
            .map(|t| t.as_str().chars().next().unwrap_or('a'))
            .unwrap_or('a');
        if !matches!(typ, 'a' | 'b' | 'c') {
            crate::bail!(libc::EINVAL, "invalid device type `{typ}`");
        }
        let access = d.access().clone().unwrap_or_else(|| "rwm".to_string());
        if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            crate::bail!(libc::EINVAL, "invalid device access `{access}`");
        }
        Ok(Rule {
            typ,
            major: d.major().unwrap_or(-1),
            minor: d.minor().unwrap_or(-1),
            access,
            allow: d.allow(),
        })
    }
}

/// The rules in the order the program tests them (first match wins).
pub fn ordered_rules(devs: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut v: Vec<Rule> = DEFAULT_DEVICES
        .iter()
        .map(|(t, maj, min, acc)| Rule {
            typ: *t,
            major: *maj,
            minor: *min,
            access: acc.to_string(),
            allow: true,
        })
        .collect();
    for d in devs.iter().rev() {
        v.push(Rule::from_oci(d)?);
    }
    Ok(v)
}

/// Assemble the program for `rules` (tested in order, first match wins, default deny).
pub fn assemble(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),        // r2 = ctx->access_type
        insn(ALU64_AND_K, 2, 0, 0, 0xffff), // r2 = type
        insn(LDX_MEM_W, 3, 1, 0, 0),        // r3 = ctx->access_type
        insn(ALU64_RSH_K, 3, 0, 0, 16),     // r3 = access
        insn(LDX_MEM_W, 4, 1, 4, 0),        // r4 = major
        insn(LDX_MEM_W, 5, 1, 8, 0),        // r5 = minor
    ];
    for r in rules {
        let mut acc = 0;
        for c in r.access.chars() {
            acc |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => ACC_MKNOD,
            };
        }
        // Conditions jump to the end of this block when they do not match; offsets are fixed
        // up once the block length is known.
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new();
        match r.typ {
            'b' => {
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, 2, 0, 0, DEV_BLOCK));
            }
            'c' => {
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, 2, 0, 0, DEV_CHAR));
            }
            _ => {}
        }
        if acc != ACC_MKNOD | ACC_READ | ACC_WRITE {
            // The requested access must be a subset of the rule's: (r3 & acc) == r3.
            block.push(insn(ALU64_MOV_X, 6, 3, 0, 0));
            block.push(insn(ALU64_AND_K, 6, 0, 0, acc));
            jumps.push(block.len());
            block.push(insn(JMP_JNE_X, 6, 3, 0, 0));
        }
        if r.major >= 0 {
            jumps.push(block.len());
            block.push(insn(JMP_JNE_K, 4, 0, 0, r.major as i32));
        }
        if r.minor >= 0 {
            jumps.push(block.len());
            block.push(insn(JMP_JNE_K, 5, 0, 0, r.minor as i32));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        let unconditional = jumps.is_empty();
        for j in jumps {
            block[j].off = (len - j - 1) as i16;
        }
        p.extend(block);
        if unconditional {
            // Matches everything: what follows would be unreachable, which the verifier rejects.
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `bpf(2)` attribute union, big enough for every command we use.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32_at(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64_at(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a zero-initialised buffer of 128 bytes laid out as union bpf_attr for cmd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Load `prog` as a cgroup device program; returns its fd (O_CLOEXEC: bpf fds always are).
pub fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = b"GPL\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = Attr::new();
    // union bpf_attr, BPF_PROG_LOAD: prog_type u32 @0, insn_cnt u32 @4, insns u64 @8,
    // license u64 @16, log_level u32 @24, log_size u32 @28, log_buf u64 @32.
    attr.u32_at(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32_at(4, prog.len() as u32)
        .u64_at(8, prog.as_ptr() as u64)
        .u64_at(16, license.as_ptr() as u64);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: a new fd returned by the kernel.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }),
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            // Retry with the verifier log to say why.
            attr.u32_at(24, 1)
                .u32_at(28, log.len() as u32)
                .u64_at(32, log.as_mut_ptr() as u64);
            let _ = bpf(BPF_PROG_LOAD, &mut attr).map(|fd| {
                // SAFETY: close the fd of an unexpected success.
                unsafe { libc::close(fd as libc::c_int) }
            });
            let end = log.iter().position(|b| *b == 0).unwrap_or(0);
            let msg = String::from_utf8_lossy(&log[..end]).trim().to_string();
            Err(Error::new(
                errno,
                if msg.is_empty() {
                    "bpf: load cgroup device program".to_string()
                } else {
                    format!("bpf: load cgroup device program: {msg}")
                },
            ))
        }
    }
}

/// The ids of the device programs attached to the cgroup `cg`.
pub fn attached(cg: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = Attr::new();
    // BPF_PROG_QUERY: target_fd u32 @0, attach_type u32 @4, query_flags u32 @8,
    // attach_flags u32 @12, prog_ids u64 @16, prog_cnt u32 @24.
    attr.u32_at(0, cg.as_raw_fd() as u32)
        .u32_at(4, BPF_CGROUP_DEVICE)
        .u64_at(16, ids.as_mut_ptr() as u64)
        .u32_at(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            "bpf: query cgroup device programs",
        )
    })?;
    let n = (attr.get_u32(24) as usize).min(ids.len());
    ids.truncate(n);
    Ok(ids)
}

fn open_cgroup(dir: &Path) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::new(libc::EINVAL, "cgroup path contains a NUL byte"))?;
    // SAFETY: valid C string; the fd is owned right away.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::last_os_error(format!("open `{}`", dir.display())));
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Enforce `devs` on the v2 cgroup directory `dir`, replacing the programs attached before.
pub fn apply(dir: &Path, devs: &[LinuxDeviceCgroup]) -> Result<()> {
    let prog = assemble(&ordered_rules(devs)?);
    let cg = open_cgroup(dir)?;
    let old = attached(&cg).unwrap_or_default();
    let pfd = load(&prog)?;
    let mut attr = Attr::new();
    // BPF_PROG_ATTACH: target_fd u32 @0, attach_bpf_fd u32 @4, attach_type u32 @8,
    // attach_flags u32 @12.
    attr.u32_at(0, cg.as_raw_fd() as u32)
        .u32_at(4, pfd.as_raw_fd() as u32)
        .u32_at(8, BPF_CGROUP_DEVICE)
        .u32_at(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("bpf: attach device program to `{}`", dir.display()),
        )
    })?;
    for id in old {
        let mut a = Attr::new();
        a.u32_at(0, id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut a) else {
            continue;
        };
        // SAFETY: a new fd from the kernel.
        let old_fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        let mut d = Attr::new();
        d.u32_at(0, cg.as_raw_fd() as u32)
            .u32_at(4, old_fd.as_raw_fd() as u32)
            .u32_at(8, BPF_CGROUP_DEVICE);
        if let Err(e) = bpf(BPF_PROG_DETACH, &mut d) {
            return Err(Error::new(
                e.raw_os_error().unwrap_or(libc::EIO),
                format!("bpf: detach old device program from `{}`", dir.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the subset of eBPF we emit, to check the program's decisions.
    fn run(prog: &[Insn], typ: i32, acc: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((acc << 16) | typ) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = ctx[(i.off / 4) as usize] as u64,
                ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                JMP_JNE_X => {
                    if r[dst] != r[src] {
                        pc += i.off as usize
                    }
                }
                JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn dev(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn last_rule_wins_and_defaults_allowed() {
        let rules = dev(r#"[{"allow":false,"access":"rwm"},
                            {"allow":true,"type":"c","major":1,"minor":11,"access":"r"},
                            {"allow":true,"type":"b","major":254,"access":"rw"},
                            {"allow":false,"type":"b","major":254,"minor":1}]"#);
        let p = assemble(&ordered_rules(&rules).unwrap());
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        // /dev/null always.
        assert_eq!(run(&p, DEV_CHAR, r | w, 1, 3), 1);
        // kmsg read only.
        assert_eq!(run(&p, DEV_CHAR, r, 1, 11), 1);
        assert_eq!(run(&p, DEV_CHAR, w, 1, 11), 0);
        assert_eq!(run(&p, DEV_CHAR, r | w, 1, 11), 0);
        // mknod of anything is a default.
        assert_eq!(run(&p, DEV_CHAR, m, 99, 99), 1);
        assert_eq!(run(&p, DEV_BLOCK, m, 8, 0), 1);
        // block 254:* rw except 254:1.
        assert_eq!(run(&p, DEV_BLOCK, r | w, 254, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, r, 254, 1), 0);
        // everything else denied.
        assert_eq!(run(&p, DEV_CHAR, r, 4, 1), 0);
        assert_eq!(run(&p, DEV_CHAR, r, 136, 5), 1); // pts
    }

    #[test]
    fn allow_all() {
        let p = assemble(&ordered_rules(&dev(r#"[{"allow":true,"access":"rwm"}]"#)).unwrap());
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0), 1);
        let p = assemble(&ordered_rules(&[]).unwrap());
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 0);
        assert!(ordered_rules(&dev(r#"[{"allow":true,"access":"rx"}]"#)).is_err());
        // An unconditional rule ends the program: nothing unreachable after it.
        let p = assemble(&ordered_rules(&dev(r#"[{"allow":false,"access":"rwm"}]"#)).unwrap());
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
        assert_eq!(p[p.len() - 2], insn(ALU64_MOV_K, 0, 0, 0, 0));
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
    }
}
