//! The container process: capabilities, no_new_privileges and rlimits.

use serde_json::{json, Map, Value};

use super::policy::{cap_name, containerd_default, Level};
use super::report::Report;
use super::{spec, HardenError, Policy};

const CAP_SETS: [&str; 4] = ["bounding", "effective", "permitted", "inheritable"];

/// Refuses a capability the workload asked for beyond containerd's defaults
/// that the policy does not allow; then clamps every capability set,
/// ambient included, to the allowed ones (none under strict), which drops
/// containerd's defaults the policy leaves out (NET_RAW) and reports them. An ambient capability the policy allows is kept: it gives
/// a non-root process (`nc -l -p 80` as uid 1000 with NET_BIND_SERVICE,
/// what Kubernetes' restricted Pod Security level permits) only what root
/// in the same container has anyway, and clearing it would push such
/// workloads to run as root. The kernel keeps ambient within permitted and
/// inheritable, which are clamped the same way.
pub fn capabilities(
    process: &mut Map<String, Value>,
    level: Level,
    policy: &Policy,
    report: &mut Report,
) -> Result<(), HardenError> {
    let Some(caps) = spec::existing(process, "capabilities", "process.capabilities")? else {
        return Ok(());
    };
    let allowed: Vec<String> = match level {
        Level::Strict => Vec::new(),
        _ => policy
            .allowed_capabilities
            .iter()
            .map(|c| cap_name(c))
            .collect(),
    };
    let sets = CAP_SETS.into_iter().chain(["ambient"]);
    for set in sets.clone() {
        let field = format!("process.capabilities.{set}");
        for c in spec::strings(caps.get(set), &field)? {
            let name = cap_name(&c);
            if !allowed.contains(&name) && !containerd_default(&name) {
                return Err(refused(&name, &field, level));
            }
        }
    }
    for set in sets {
        let field = format!("process.capabilities.{set}");
        if !caps.contains_key(set) {
            continue;
        }
        let have = spec::strings(caps.get(set), &field)?;
        let (keep, drop): (Vec<String>, Vec<String>) = have
            .into_iter()
            .partition(|c| allowed.contains(&cap_name(c)));
        for c in drop {
            report.remove("capabilities", &field, c);
        }
        caps.insert(set.to_string(), keep.into());
    }
    Ok(())
}

/// The Create error for a capability the workload asked for and the policy
/// does not allow: named, with the knob, instead of an EPERM deep inside
/// the application later.
fn refused(cap: &str, field: &str, level: Level) -> HardenError {
    let how = match level {
        Level::Strict => format!(
            "the strict level allows no capability (choose the default level for this container, \
             and add {cap} to allowed_capabilities under [policy] in nucleus.toml)"
        ),
        _ => "an operator may allow it with allowed_capabilities under [policy] in nucleus.toml"
            .to_string(),
    };
    HardenError(format!(
        "capability {cap} asked for in {field} is not allowed by the nucleus policy at level {}; {how}",
        level.name()
    ))
}

/// Refuses a `cwd` that leads outside the container's root: through a file
/// descriptor or another process's directory in /proc (`/proc/self/fd/7`,
/// `/proc/1/cwd`: the pattern of CVE-2024-21626, where runc before 1.1.12
/// leaked a host directory's descriptor that such a cwd reached), or with
/// `..` components (a runtime resolving them naively would leave the root).
pub fn cwd(process: &Map<String, Value>) -> Result<(), HardenError> {
    let Some(cwd) = process.get("cwd").and_then(Value::as_str) else {
        return Ok(());
    };
    let parts: Vec<&str> = cwd
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let why = if !cwd.starts_with('/') {
        Some("is not an absolute path")
    } else if parts.contains(&"..") {
        Some("climbs with '..' (a runtime resolving it naively would leave the container's root)")
    } else if parts.first() == Some(&"proc")
        && parts.get(1).is_some_and(|p| {
            *p == "self" || *p == "thread-self" || p.chars().all(|c| c.is_ascii_digit())
        })
    {
        Some(
            "goes through a process's entry in /proc, which can reach outside the container's \
             root (the pattern of CVE-2024-21626)",
        )
    } else {
        None
    };
    match why {
        Some(why) => Err(HardenError(format!(
            "process.cwd {cwd:?} {why}; refused by the nucleus policy"
        ))),
        None => Ok(()),
    }
}

/// Sets `noNewPrivileges`: setuid binaries and file capabilities grant nothing.
pub fn no_new_privileges(process: &mut Map<String, Value>, report: &mut Report) {
    let before = process.get("noNewPrivileges").cloned();
    if before != Some(Value::Bool(true)) {
        report.set(
            "no-new-privileges",
            "process.noNewPrivileges",
            before.as_ref().map(spec::show),
            Some("true".into()),
        );
        process.insert("noNewPrivileges".into(), Value::Bool(true));
    }
}

/// The hard RLIMIT_NOFILE of this process (what it hands its children).
pub fn own_nofile_hard() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_max
    } else {
        u64::MAX
    }
}

fn limit_of(r: &Map<String, Value>, key: &str) -> Option<u64> {
    r.get(key).and_then(Value::as_u64)
}

/// Default: RLIMIT_NOFILE when the spec has none. Strict: NOFILE, NPROC and
/// MEMLOCK no higher than the policy's values.
pub fn rlimits(
    process: &mut Map<String, Value>,
    level: Level,
    policy: &Policy,
    report: &mut Report,
) -> Result<(), HardenError> {
    let wanted: Vec<(&str, u64, u64, bool)> = match level {
        Level::Strict => vec![
            (
                "RLIMIT_NOFILE",
                policy.strict_nofile,
                policy.strict_nofile,
                true,
            ),
            (
                "RLIMIT_NPROC",
                policy.strict_nproc,
                policy.strict_nproc,
                true,
            ),
            (
                "RLIMIT_MEMLOCK",
                policy.strict_memlock,
                policy.strict_memlock,
                true,
            ),
        ],
        _ => {
            // Never above the shim's own hard limit: the runtime could not
            // raise it (EPERM without CAP_SYS_RESOURCE), failing the start.
            let hard = policy.nofile[1].min(own_nofile_hard());
            vec![("RLIMIT_NOFILE", policy.nofile[0].min(hard), hard, false)]
        }
    };
    let list = process
        .entry("rlimits")
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    let items = list
        .as_array_mut()
        .ok_or_else(|| HardenError("process.rlimits: expected a list".into()))?;
    for (ty, soft, hard, clamp) in wanted {
        let field = format!("process.rlimits.{ty}");
        let mut found = false;
        // Every entry of the type: runtimes apply them in order, the last wins.
        for (i, r) in items.iter_mut().enumerate() {
            if r.get("type").and_then(Value::as_str) != Some(ty) {
                continue;
            }
            found = true;
            if !clamp {
                continue;
            }
            let r = r.as_object_mut().ok_or_else(|| {
                HardenError(format!("process.rlimits[{i}]: expected a JSON object"))
            })?;
            let (old_soft, old_hard) = (limit_of(r, "soft"), limit_of(r, "hard"));
            let new_soft = old_soft.map_or(soft, |s| s.min(soft));
            let new_hard = old_hard.map_or(hard, |h| h.min(hard)).max(new_soft);
            if (old_soft, old_hard) != (Some(new_soft), Some(new_hard)) {
                let show = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
                report.set(
                    "rlimits",
                    &field,
                    Some(format!("soft {} hard {}", show(old_soft), show(old_hard))),
                    Some(format!("soft {new_soft} hard {new_hard}")),
                );
                r.insert("soft".into(), new_soft.into());
                r.insert("hard".into(), new_hard.into());
            }
        }
        if !found {
            report.add("rlimits", &field, format!("soft {soft} hard {hard}"));
            items.push(json!({"type": ty, "soft": soft, "hard": hard}));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Backend;
    use serde_json::json;

    fn report() -> Report {
        Report::new(Level::Default, Backend::Runc)
    }

    fn clamp(p: &mut Value, level: Level) -> Result<Report, HardenError> {
        let mut r = report();
        capabilities(
            p.as_object_mut().unwrap(),
            level,
            &Policy::default(),
            &mut r,
        )?;
        Ok(r)
    }

    fn limit(p: &mut Value, level: Level) -> Report {
        let mut r = report();
        rlimits(
            p.as_object_mut().unwrap(),
            level,
            &Policy::default(),
            &mut r,
        )
        .unwrap();
        r
    }

    fn containerd_default_process() -> Value {
        let caps = json!(crate::harden::tests::CONTAINERD_DEFAULT_CAPS);
        json!({
            "args": ["/bin/sh"],
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                             "inheritable": caps,
                             "ambient": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]
        })
    }

    #[test]
    fn default_clamps_every_set_ambient_included_to_baseline() {
        let mut p = containerd_default_process();
        let r = clamp(&mut p, Level::Default).unwrap();
        for set in CAP_SETS {
            let got = spec::strings(p.pointer(&format!("/capabilities/{set}")), set).unwrap();
            assert_eq!(got.len(), 13, "{set}: {got:?}");
            assert!(!got
                .iter()
                .any(|c| c == "CAP_NET_RAW" || c == "CAP_SYS_ADMIN"));
        }
        assert_eq!(
            p["capabilities"]["ambient"],
            json!(["CAP_NET_BIND_SERVICE"])
        );
        // NET_RAW from all 5 sets, silently: containerd gave it, the
        // workload did not ask.
        assert_eq!(r.changes.len(), 5);
    }

    #[test]
    fn a_capability_asked_for_and_not_allowed_is_refused_by_name() {
        for set in CAP_SETS.into_iter().chain(["ambient"]) {
            let mut p = containerd_default_process();
            p["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("net_admin"));
            let e = clamp(&mut p, Level::Default).unwrap_err();
            assert!(
                e.0.contains("CAP_NET_ADMIN")
                    && e.0.contains(&format!("process.capabilities.{set}"))
                    && e.0.contains("allowed_capabilities"),
                "{e}"
            );
            let e = clamp(&mut p, Level::Strict).unwrap_err();
            assert!(e.0.contains("strict"), "{e}");
        }
        let allow = Policy {
            allowed_capabilities: vec!["CAP_CHOWN".into(), "SYS_ADMIN".into()],
            ..Policy::default()
        };
        let mut p = json!({"capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_KILL"]}});
        let mut r = report();
        capabilities(p.as_object_mut().unwrap(), Level::Default, &allow, &mut r).unwrap();
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_SYS_ADMIN"]));
        assert_eq!(r.changes.len(), 1, "KILL, a containerd default, dropped");
    }

    #[test]
    fn strict_empties_every_set() {
        let mut p = containerd_default_process();
        clamp(&mut p, Level::Strict).unwrap();
        for set in CAP_SETS.into_iter().chain(["ambient"]) {
            assert_eq!(p["capabilities"][set], json!([]), "{set}");
        }
    }

    #[test]
    fn lowercase_names_match_and_absent_caps_stay_absent() {
        let mut p = json!({"capabilities": {"bounding": ["chown", "CAP_NET_RAW"]}});
        clamp(&mut p, Level::Default).unwrap();
        assert_eq!(p["capabilities"]["bounding"], json!(["chown"]));
        let mut p = json!({"args": ["/bin/true"]});
        clamp(&mut p, Level::Default).unwrap();
        assert!(p.get("capabilities").is_none());
        let mut p = json!({"capabilities": {"bounding": "CAP_NET_RAW"}});
        let e = clamp(&mut p, Level::Default).unwrap_err();
        assert!(e.0.contains("process.capabilities.bounding"), "{e}");
    }

    #[test]
    fn a_cwd_outside_the_root_is_refused() {
        for bad in [
            "/proc/self/fd/7",
            "/proc/thread-self/cwd",
            "/proc/1/cwd",
            "/proc//self/root/etc",
            "/../../etc",
            "/tmp/../..",
            "tmp",
        ] {
            let e = cwd(json!({"cwd": bad}).as_object().unwrap()).unwrap_err();
            assert!(e.0.contains("process.cwd") && e.0.contains(bad), "{e}");
        }
        for fine in [
            "/",
            "/tmp",
            "/proc",
            "/proc/sys",
            "/srv/proc/self",
            "/a/./b",
        ] {
            cwd(json!({"cwd": fine}).as_object().unwrap()).unwrap();
        }
        cwd(json!({}).as_object().unwrap()).unwrap();
    }

    #[test]
    fn no_new_privileges_is_set_and_reported_once() {
        let mut p = json!({"noNewPrivileges": false});
        let mut r = report();
        no_new_privileges(p.as_object_mut().unwrap(), &mut r);
        no_new_privileges(p.as_object_mut().unwrap(), &mut r);
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(r.changes.len(), 1);
    }

    #[test]
    fn default_adds_nofile_only_when_absent() {
        let mut p = containerd_default_process();
        let r = limit(&mut p, Level::Default);
        assert_eq!(p["rlimits"][0]["soft"], 1048576);
        assert!(r.changes.is_empty());
        let mut p = json!({});
        limit(&mut p, Level::Default);
        // The policy's 65536/1048576, capped by what this process may grant.
        let hard = 1048576u64.min(own_nofile_hard());
        assert_eq!(
            p["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 65536u64.min(hard), "hard": hard}])
        );
    }

    #[test]
    fn strict_clamps_nofile_and_adds_nproc_memlock() {
        let mut p = containerd_default_process();
        let r = limit(&mut p, Level::Strict);
        assert_eq!(r.changes.len(), 3, "{:?}", r.changes);
        let get = |ty: &str| {
            p["rlimits"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["type"] == ty)
                .map(|r| (r["soft"].as_u64().unwrap(), r["hard"].as_u64().unwrap()))
        };
        assert_eq!(get("RLIMIT_NOFILE"), Some((1024, 1024)));
        assert_eq!(get("RLIMIT_NPROC"), Some((1024, 1024)));
        assert_eq!(get("RLIMIT_MEMLOCK"), Some((65536, 65536)));
        // Every entry of the type is clamped (the last one wins in runtimes).
        let mut p = json!({"rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
            {"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]});
        limit(&mut p, Level::Strict);
        assert_eq!(
            p["rlimits"][1],
            json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024})
        );
        // A lower value in the spec is kept.
        let mut p = json!({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]});
        limit(&mut p, Level::Strict);
        assert_eq!(
            p["rlimits"][0],
            json!({"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512})
        );
    }
}
