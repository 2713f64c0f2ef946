//! An OCI `linux.seccomp` profile compiled to a classic BPF seccomp program,
//! for the one place no runtime installs it: processes runsc starts by
//! exec (gVisor filters a container's own process with `--oci-seccomp`,
//! not an exec'd one). The terminal relay installs the program before it
//! executes the process (cmd/nucleus-tty).
//!
//! The program is a first-match list, as the profile reads: a call of a
//! foreign architecture (or x32) gets the default action; then each rule,
//! in order, returns its action when the syscall number and every argument
//! condition match; the default action ends it. Syscall names this table
//! does not know are skipped, as runc and crun skip the names libseccomp
//! does not know. x86_64 only (the architecture gVisor runs here).

use serde_json::Value;

/// One BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

/// `struct seccomp_data` offsets.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// The kernel's limit on a program's length.
const MAX_INSNS: usize = 4096;
/// Names per comparison block: its jumps must fit in a u8.
const NAMES_PER_BLOCK: usize = 200;

/// A jump target while the program is assembled.
#[derive(Debug, Clone, Copy)]
enum Target {
    Next,
    Label(usize),
}

#[derive(Debug)]
struct Asm {
    insns: Vec<(u16, Target, Target, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Self {
        Asm {
            insns: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.insns.push((code, Target::Next, Target::Next, k));
    }
    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push((code, jt, jf, k));
    }
    fn finish(self) -> Result<Vec<Insn>, String> {
        let mut out = Vec::with_capacity(self.insns.len());
        for (at, (code, jt, jf, k)) in self.insns.iter().enumerate() {
            let off = |t: &Target| -> Result<u8, String> {
                match t {
                    Target::Next => Ok(0),
                    Target::Label(l) => {
                        let to = self.labels[*l].ok_or("unbound label")?;
                        u8::try_from(to - at - 1)
                            .map_err(|_| format!("a jump of {} instructions", to - at - 1))
                    }
                }
            };
            out.push(Insn {
                code: *code,
                jt: off(jt)?,
                jf: off(jf)?,
                k: *k,
            });
        }
        Ok(out)
    }
}

/// The number of syscall `name` on x86_64.
pub fn syscall_number(name: &str) -> Option<u32> {
    use super::syscalls_x86_64::SYSCALLS;
    SYSCALLS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| SYSCALLS[i].1)
}

/// The return value of an OCI action.
fn action(name: &str, errno: Option<u64>, default_errno: u32) -> Result<u32, String> {
    let errno = errno.map_or(Ok(default_errno), |e| {
        u32::try_from(e & 0xffff).map_err(|_| format!("errnoRet {e}"))
    })?;
    Ok(match name {
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_ERRNO" => RET_ERRNO | (errno & 0xffff),
        "SCMP_ACT_TRACE" => RET_TRACE | (errno & 0xffff),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_LOG" => RET_LOG,
        other => return Err(format!("seccomp action {other} cannot be compiled here")),
    })
}

/// One argument condition, compiled so that it falls through when it holds
/// and jumps to `fail` when it does not.
fn condition(asm: &mut Asm, arg: &Value, fail: usize) -> Result<(), String> {
    let index = arg
        .get("index")
        .and_then(Value::as_u64)
        .filter(|i| *i < 6)
        .ok_or("seccomp argument without an index 0-5")?;
    let value = arg.get("value").and_then(Value::as_u64).unwrap_or(0);
    let two = arg.get("valueTwo").and_then(Value::as_u64).unwrap_or(0);
    let op = arg.get("op").and_then(Value::as_str).unwrap_or("");
    let lo_at = ARGS + 8 * index as u32;
    let hi_at = lo_at + 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let fail = Target::Label(fail);
    let pass = asm.label();
    let passing = Target::Label(pass);
    match op {
        "SCMP_CMP_EQ" | "SCMP_CMP_MASKED_EQ" => {
            let (mask, want) = if op == "SCMP_CMP_EQ" {
                (u64::MAX, value)
            } else {
                (value, two)
            };
            let ((mh, ml), (wh, wl)) = (split(mask), split(want));
            asm.stmt(LD_W_ABS, hi_at);
            if mh != u32::MAX {
                asm.stmt(ALU_AND_K, mh);
            }
            asm.jump(JEQ_K, wh, Target::Next, fail);
            asm.stmt(LD_W_ABS, lo_at);
            if ml != u32::MAX {
                asm.stmt(ALU_AND_K, ml);
            }
            asm.jump(JEQ_K, wl, Target::Next, fail);
        }
        "SCMP_CMP_NE" => {
            let (vh, vl) = split(value);
            asm.stmt(LD_W_ABS, hi_at);
            asm.jump(JEQ_K, vh, Target::Next, passing);
            asm.stmt(LD_W_ABS, lo_at);
            asm.jump(JEQ_K, vl, fail, Target::Next);
        }
        "SCMP_CMP_GT" | "SCMP_CMP_GE" | "SCMP_CMP_LT" | "SCMP_CMP_LE" => {
            // Unsigned 64-bit: the high words decide unless equal.
            let (vh, vl) = split(value);
            let greater_passes = op == "SCMP_CMP_GT" || op == "SCMP_CMP_GE";
            let (above, below) = if greater_passes {
                (passing, fail)
            } else {
                (fail, passing)
            };
            asm.stmt(LD_W_ABS, hi_at);
            asm.jump(JGT_K, vh, above, Target::Next);
            asm.jump(JEQ_K, vh, Target::Next, below);
            asm.stmt(LD_W_ABS, lo_at);
            match op {
                "SCMP_CMP_GT" => asm.jump(JGT_K, vl, passing, fail),
                "SCMP_CMP_GE" => asm.jump(JGE_K, vl, passing, fail),
                "SCMP_CMP_LT" => asm.jump(JGE_K, vl, fail, passing),
                _ => asm.jump(JGT_K, vl, fail, passing),
            }
        }
        other => {
            return Err(format!(
                "seccomp comparison {other:?} cannot be compiled here"
            ))
        }
    }
    asm.bind(pass);
    Ok(())
}

/// Compiles an OCI `linux.seccomp` object into a BPF program.
pub fn compile(profile: &Value) -> Result<Vec<Insn>, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err("seccomp programs are compiled for x86_64 only".into());
    }
    let default_errno = profile
        .get("defaultErrnoRet")
        .and_then(Value::as_u64)
        .map_or(libc::EPERM as u32, |e| (e & 0xffff) as u32);
    let default = action(
        profile
            .get("defaultAction")
            .and_then(Value::as_str)
            .ok_or("seccomp profile without a defaultAction")?,
        None,
        default_errno,
    )?;
    let mut asm = Asm::new();
    let native = asm.label();
    asm.stmt(LD_W_ABS, ARCH);
    asm.jump(
        JEQ_K,
        AUDIT_ARCH_X86_64,
        Target::Label(native),
        Target::Next,
    );
    asm.stmt(RET_K, default);
    asm.bind(native);
    let native_abi = asm.label();
    asm.stmt(LD_W_ABS, NR);
    asm.jump(
        JGE_K,
        X32_SYSCALL_BIT,
        Target::Next,
        Target::Label(native_abi),
    );
    asm.stmt(RET_K, default);
    asm.bind(native_abi);
    let rules = profile
        .get("syscalls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for rule in rules {
        let numbers: Vec<u32> = rule
            .get("names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(syscall_number)
            .collect();
        let ret = action(
            rule.get("action")
                .and_then(Value::as_str)
                .ok_or("seccomp rule without an action")?,
            rule.get("errnoRet").and_then(Value::as_u64),
            libc::EPERM as u32,
        )?;
        let args = rule
            .get("args")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if args.is_empty() {
            for block in numbers.chunks(NAMES_PER_BLOCK) {
                let hit = asm.label();
                let miss = asm.label();
                asm.stmt(LD_W_ABS, NR);
                for nr in block {
                    asm.jump(JEQ_K, *nr, Target::Label(hit), Target::Next);
                }
                asm.jump(JEQ_K, u32::MAX, Target::Label(miss), Target::Label(miss));
                asm.bind(hit);
                asm.stmt(RET_K, ret);
                asm.bind(miss);
            }
            continue;
        }
        for nr in numbers {
            let miss = asm.label();
            asm.stmt(LD_W_ABS, NR);
            asm.jump(JEQ_K, nr, Target::Next, Target::Label(miss));
            for arg in args {
                condition(&mut asm, arg, miss)?;
            }
            asm.stmt(RET_K, ret);
            asm.bind(miss);
        }
    }
    asm.stmt(RET_K, default);
    let program = asm.finish()?;
    if program.len() > MAX_INSNS {
        return Err(format!(
            "the seccomp profile compiles to {} instructions, more than the kernel's {MAX_INSNS}",
            program.len()
        ));
    }
    Ok(program)
}

/// The program as hex text (8 bytes per instruction, native order), the
/// form the relay reads from its environment.
pub fn to_hex(program: &[Insn]) -> String {
    let mut s = String::with_capacity(program.len() * 16);
    for i in program {
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&i.code.to_ne_bytes());
        b.push(i.jt);
        b.push(i.jf);
        b.extend_from_slice(&i.k.to_ne_bytes());
        for byte in b {
            s.push_str(&format!("{byte:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs `program` over a made-up `seccomp_data`: what the kernel would
    /// return for syscall `nr` with `args` on architecture `arch`.
    fn run(program: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = program[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    let at = i.k as usize;
                    acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                }
                ALU_AND_K => acc &= i.k,
                RET_K => return i.k,
                JEQ_K | JGT_K | JGE_K => {
                    let taken = match i.code {
                        JEQ_K => acc == i.k,
                        JGT_K => acc > i.k,
                        _ => acc >= i.k,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                other => panic!("unknown instruction {other:#x}"),
            }
        }
    }

    fn nr(name: &str) -> u32 {
        syscall_number(name).unwrap()
    }

    const X86_64: u32 = AUDIT_ARCH_X86_64;

    #[test]
    fn names_resolve_and_unknown_names_are_skipped() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("clone3"), Some(435));
        assert_eq!(syscall_number("mseal"), Some(462));
        assert_eq!(syscall_number("no_such_call"), None);
        let p = compile(&json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "no_such_call"], "action": "SCMP_ACT_ALLOW"}]}))
        .unwrap();
        assert_eq!(run(&p, X86_64, nr("read"), [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, X86_64, nr("write"), [0; 6]), RET_ERRNO | 1);
    }

    #[test]
    fn the_nucleus_floor_compiles_and_answers_as_written() {
        let floor = crate::harden::seccomp::profile(&[], crate::harden::Level::Default);
        let p = compile(&floor).unwrap();
        assert!(p.len() < MAX_INSNS);
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let enosys = RET_ERRNO | libc::ENOSYS as u32;
        for (name, arg0, want) in [
            ("openat", 0, RET_ALLOW),
            ("keyctl", 0, eperm),
            ("clone3", 0, enosys),
            // clone: allowed without namespace flags, refused with one.
            ("clone", 0x11, RET_ALLOW),
            ("clone", 0x1000_0011, eperm),
            // socket: all but AF_VSOCK (64-bit compare: the high word counts).
            ("socket", 2, RET_ALLOW),
            ("socket", 40, eperm),
            ("socket", 40 | 1 << 32, RET_ALLOW),
            // personality: the listed values only.
            ("personality", 0xffff_ffff, RET_ALLOW),
            ("personality", 0x40_0000, eperm),
        ] {
            let got = run(&p, X86_64, nr(name), [arg0, 1, 0, 0, 0, 0]);
            assert_eq!(got, want, "{name}({arg0:#x})");
        }
        // Another architecture, and x32 numbers, get the default.
        assert_eq!(run(&p, 0x4000_0003, nr("openat"), [0; 6]), eperm);
        assert_eq!(
            run(&p, X86_64, X32_SYSCALL_BIT | nr("openat"), [0; 6]),
            eperm
        );
    }

    #[test]
    fn comparisons_are_unsigned_64_bit() {
        let rule = |op: &str, v: u64| {
            compile(
                &json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 2, "value": v, "op": op}]}]}),
            )
            .unwrap()
        };
        let v = 0x1_0000_0005u64;
        for (op, below, equal, above) in [
            ("SCMP_CMP_GT", false, false, true),
            ("SCMP_CMP_GE", false, true, true),
            ("SCMP_CMP_LT", true, false, false),
            ("SCMP_CMP_LE", true, true, false),
            ("SCMP_CMP_EQ", false, true, false),
            ("SCMP_CMP_NE", true, false, true),
        ] {
            let p = rule(op, v);
            for (arg, want) in [
                (v - 1, below),
                (0x0_ffff_ffff, below),
                (v, equal),
                (v + 1, above),
                (0x2_0000_0000, above),
            ] {
                let got = run(&p, X86_64, 0, [0, 0, arg, 0, 0, 0]) == RET_ALLOW;
                assert_eq!(got, want, "{op} {arg:#x} against {v:#x}");
            }
        }
    }

    #[test]
    fn a_long_name_list_is_split_into_blocks_and_errors_are_named() {
        let names: Vec<&str> = crate::runtime::syscalls_x86_64::SYSCALLS
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let p = compile(&json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": names, "action": "SCMP_ACT_LOG"}]}))
        .unwrap();
        assert_eq!(run(&p, X86_64, nr("write"), [0; 6]), RET_LOG);
        assert_eq!(run(&p, X86_64, 999, [0; 6]), RET_ERRNO | 1);
        let e = compile(&json!({"defaultAction": "SCMP_ACT_NOTIFY"})).unwrap_err();
        assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
        let e = compile(&json!({"syscalls": []})).unwrap_err();
        assert!(e.contains("defaultAction"), "{e}");
        let e = compile(&json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}))
        .unwrap_err();
        assert!(e.contains("index"), "{e}");
    }

    /// The compiled floor, installed for real in a child process: the
    /// kernel accepts it and answers as the profile says.
    #[test]
    fn the_kernel_accepts_the_program() {
        let floor = crate::harden::seccomp::profile(&[], crate::harden::Level::Default);
        let p = compile(&floor).unwrap();
        let filters: Vec<libc::sock_filter> = p
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let prog = libc::sock_fprog {
            len: filters.len() as u16,
            filter: filters.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the child only makes raw syscalls and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above; prog outlives the call.
            let code = unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(
                        libc::PR_SET_SECCOMP,
                        2,
                        &prog as *const _ as libc::c_ulong,
                        0,
                        0,
                    ) != 0
                {
                    10
                } else if libc::syscall(libc::SYS_keyctl, 0, -3, 0) != -1
                    || *libc::__errno_location() != libc::EPERM
                {
                    11
                } else if libc::syscall(libc::SYS_clone3, 0, 0) != -1
                    || *libc::__errno_location() != libc::ENOSYS
                {
                    12
                } else if libc::getppid() <= 0 {
                    13
                } else {
                    0
                }
            };
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "10: refused, 11: keyctl, 12: clone3"
        );
    }
}
