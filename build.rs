//! Builds the terminal relay (cmd/nucleus-tty) as a static executable into
//! OUT_DIR for the shim to carry, with its SHA-256: it runs inside runsc
//! containers, whose images may have no libc at all. It uses std only, so
//! one rustc call with `+crt-static` (glibc's static libc, from libc6-dev)
//! does it. If that build fails the shim still builds, with an empty relay:
//! runsc terminals then fall back to the sandbox's host-terminal emulation
//! (logged at Create).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const SOURCE: &str = "cmd/nucleus-tty/main.rs";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out = out_dir.join("nucleus-tty");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let built = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "nucleus_tty",
            "--crate-type",
            "bin",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "codegen-units=1",
        ])
        .args(["-C", "target-feature=+crt-static", "-C", "strip=symbols"])
        .args(["-C", "debuginfo=0", "--cap-lints", "allow", "-o"])
        .arg(&out)
        .arg(SOURCE)
        .output();
    match built {
        Ok(o) if o.status.success() => {
            let bytes = std::fs::read(&out).expect("reading the relay just built");
            let mut hex = String::new();
            for b in Sha256::digest(&bytes) {
                let _ = write!(hex, "{b:02x}");
            }
            std::fs::write(out_dir.join("nucleus-tty.sha256"), hex)
                .expect("writing the relay's hash into OUT_DIR");
        }
        Ok(o) => fallback(
            &out,
            &format!(
                "rustc failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .find(|l| l.starts_with("error"))
                    .unwrap_or("see its output")
            ),
        ),
        Err(e) => fallback(&out, &format!("cannot run rustc: {e}")),
    }
}

fn fallback(out: &Path, why: &str) {
    println!(
        "cargo:warning=the static terminal relay for runsc was not built ({why}); \
         runsc terminals will use gVisor's host-terminal emulation"
    );
    std::fs::write(out, b"").expect("writing the empty relay into OUT_DIR");
    std::fs::write(out.with_extension("sha256"), b"").expect("writing an empty hash into OUT_DIR");
}
