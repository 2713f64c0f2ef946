//! A hostile config.json through the spec hardening Create applies
//! (src/harden/): parsed as the bundle reader parses it, hardened under one
//! of a few policies for one of the backends, then held to what Create and
//! Exec rely on: the result serialises and reads back, hardening it again
//! under the same policy changes nothing, its process passes as an exec
//! process, its resources pass as an Update, and the backend's adaptation
//! runs on it.
//!
//! Input: one byte choosing policy and backend, then the spec's JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nucleus_shim::harden::{self, bundle, ExecRules, Level, Policy, SeccompMode};
use nucleus_shim::runtime::Backend;
use serde_json::Value;

fn policy(sel: u8) -> Policy {
    let mut p = Policy::default();
    match sel % 4 {
        0 => {}
        1 => p.level = Level::Strict,
        2 => {
            p.allow_privileged = true;
            p.allow_loosening = true;
            p.allow_gvisor_annotations = true;
        }
        _ => {
            p.level = Level::Strict;
            p.allow_privileged = true;
            p.extra_mount_types = vec!["overlay".into(), "nfs".into()];
            p.extra_masked_paths = vec!["/proc/fuzz".into()];
            p.extra_readonly_paths = vec!["/sys/fuzz".into()];
            p.allowed_capabilities = vec!["CAP_CHOWN".into(), "net_raw".into()];
            p.seccomp = SeccompMode::Unconfined;
            p.no_new_privileges = false;
        }
    }
    p
}

fuzz_target!(|data: &[u8]| {
    nucleus_fuzz::limit_allocations(data.len());
    let Some((&sel, json)) = data.split_first() else {
        return;
    };
    let policy = policy(sel);
    let backend = Backend::ALL[usize::from(sel >> 2) % Backend::ALL.len()];
    let path = std::path::Path::new("config.json");
    let Ok(original) = bundle::parse(json, path) else {
        return;
    };
    let mut spec = original.clone();
    // euid 0: hooks owned by root are trusted, as for a shim run by root.
    let Ok(report) = harden::harden(&mut spec, &policy, backend, 0) else {
        return;
    };
    let _ = (report.render(), report.summary(), report.to_json());

    // What Create writes is what the runtime reads.
    let written = serde_json::to_vec_pretty(&spec).expect("a hardened spec serialises");
    let reread = bundle::parse(&written, path).expect("a hardened spec reads back");
    assert_eq!(reread, spec);

    // Hardening is a fixed point: the hardened spec passes the same policy
    // unchanged (the level may differ only through the annotation, which
    // is kept).
    let mut again = spec.clone();
    match harden::harden(&mut again, &policy, backend, 0) {
        Ok(_) => assert_eq!(
            again, spec,
            "hardening the hardened spec changed it\nfirst:  {}\nsecond: {}",
            spec, again
        ),
        Err(e) => panic!("the hardened spec is refused by the policy that made it: {e}"),
    }

    // Exec processes and Updates are held to the container's rules.
    let rules = ExecRules::new(&policy, &report);
    if let Some(process) = spec.get("process") {
        let mut p = process.clone();
        if let Err(e) = rules.apply(&mut p, backend) {
            panic!("the hardened process is refused as an exec process: {e}");
        }
    }
    if let Some(resources) = spec.pointer("/linux/resources") {
        let mut r = resources.clone();
        let _ = rules.apply_update(&mut r, backend);
    }
    // And the runtime's own adaptation (runsc pod ids, crun's version).
    let mut adapted = spec.clone();
    let _ = backend.adapt_spec(&mut adapted, "k8s.io");
    let _: Value = adapted;
});
