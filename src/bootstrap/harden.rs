//! The `harden` action an operator runs by hand: what the policy changes in
//! a bundle, as a readable diff by rule; without `--dry-run` the bundle is
//! hardened exactly as Create hardens it (Create then also adapts ids and
//! namespaces of runsc pod containers to runsc, see `Backend::adapt_spec`),
//! and the rootfs is checked for the breakout patterns Create refuses.

use std::path::Path;

use super::BootstrapError;
use crate::cli::HardenArgs;
use crate::config;
use crate::harden::{self, bundle};
use crate::options::{self, RuntimeOptions};
use crate::runtime::Runtime;
use crate::task::START_OPTIONS_FILE;

/// Runs `harden`; returns the text to print. The policy and backend are the
/// ones Create used: the options `start` saved in the bundle and the runtime
/// record, unless `--config` names another config.
pub fn run(args: &HardenArgs) -> Result<String, BootstrapError> {
    let bundle_dir = Path::new(&args.bundle);
    let opts = match &args.config {
        Some(path) => RuntimeOptions::Config {
            path: path.clone(),
            body: String::new(),
        },
        None => match std::fs::read(bundle_dir.join(START_OPTIONS_FILE)) {
            Ok(data) => options::decode_any_bytes(&data).map_err(|e| {
                BootstrapError(format!("bundle {}: {START_OPTIONS_FILE}: {e}", args.bundle))
            })?,
            Err(_) => RuntimeOptions::None,
        },
    };
    let source = harden::bundle::read(bundle_dir)
        .map_err(|e| BootstrapError(format!("bundle {}: {e}", args.bundle)))?;
    let path_env = std::env::var("PATH").ok();
    let cfg = config::resolve(
        &opts,
        "default",
        &config::default_config_path(),
        path_env.as_deref(),
        config::chosen_runtime(&source.spec).as_deref(),
    )
    .map_err(|e| BootstrapError(e.to_string()))?;
    // The runtime Create used, as it recorded it, unless --config asks
    // about another config.
    let recorded = Runtime::load(bundle_dir).ok().flatten();
    let (backend, binary) = match (&args.config, recorded) {
        (None, Some(r)) => (r.backend, r.binary),
        _ => (cfg.backend, cfg.binary.clone()),
    };
    let version = (backend == crate::runtime::Backend::Runsc)
        .then(|| crate::runtime::version(&crate::runtime::DirectRunner, &binary))
        .flatten();
    let hardened = harden::harden_bundle(
        bundle_dir,
        source,
        &cfg.policy,
        backend,
        version.as_deref(),
        args.dry_run,
    )
    .map_err(|e| BootstrapError(format!("bundle {}: {e}", args.bundle)))?;
    let mut out = format!("config: {}; runtime: {}\n", cfg.source, backend.name());
    out.push_str(&hardened.report.render());
    // The rootfs checks Create makes once the rootfs is mounted, on the
    // bundle's root directory as it is now (empty until containerd mounts
    // the snapshot there).
    if hardened.report.level != harden::Level::Off {
        let root = hardened
            .spec
            .pointer("/root/path")
            .and_then(|p| p.as_str())
            .map_or_else(|| bundle_dir.join("rootfs"), |p| bundle_dir.join(p));
        match harden::rootfs::check(&root, &hardened.spec) {
            Ok(()) => out.push_str(&format!("rootfs {}: no breakout pattern\n", root.display())),
            Err(e) => out.push_str(&format!(
                "rootfs {}: Create would refuse it: {e}\n",
                root.display()
            )),
        }
    }
    if args.dry_run {
        out.push_str("dry run: the bundle was not changed\n");
    } else {
        out.push_str(&format!(
            "written: {dir}/{}; original kept in {dir}/{}; report in {dir}/{}\n",
            bundle::SPEC_FILE,
            bundle::ORIGINAL_FILE,
            bundle::REPORT_FILE,
            dir = bundle_dir.display()
        ));
    }
    Ok(out)
}
