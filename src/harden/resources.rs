//! Resource limits the policy adds: a pids limit against fork bombs.

use serde_json::{Map, Value};

use super::report::Report;
use super::{spec, HardenError, Policy};

/// Sets `linux.resources.pids.limit` when the spec has none (absent, 0 or
/// negative all mean unlimited).
pub fn pids(
    linux: &mut Map<String, Value>,
    policy: &Policy,
    report: &mut Report,
) -> Result<(), HardenError> {
    let resources = spec::child(linux, "resources", "linux.resources")?;
    let pids = spec::child(resources, "pids", "linux.resources.pids")?;
    let current = pids.get("limit").and_then(Value::as_i64).filter(|l| *l > 0);
    if current.is_none() {
        report.set(
            "pids",
            "linux.resources.pids.limit",
            pids.get("limit").map(spec::show),
            Some(policy.pids_limit.to_string()),
        );
        pids.insert("limit".into(), policy.pids_limit.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::policy::Level;
    use crate::runtime::Backend;
    use serde_json::json;

    #[test]
    fn limit_added_when_missing_or_unlimited_and_kept_otherwise() {
        for (before, after) in [
            (json!({}), 4096),
            (json!({"resources": {"pids": {"limit": -1}}}), 4096),
            (json!({"resources": {"pids": {"limit": 0}}}), 4096),
            (json!({"resources": {"pids": {"limit": 100}}}), 100),
            (json!({"resources": null}), 4096),
        ] {
            let mut linux = before.clone();
            let mut r = Report::new(Level::Default, Backend::Runc);
            pids(linux.as_object_mut().unwrap(), &Policy::default(), &mut r).unwrap();
            assert_eq!(linux["resources"]["pids"]["limit"], after, "{before}");
            assert_eq!(r.changes.len(), usize::from(after == 4096));
        }
        let mut bad = json!({"resources": []});
        let e = pids(
            bad.as_object_mut().unwrap(),
            &Policy::default(),
            &mut Report::new(Level::Default, Backend::Runc),
        )
        .unwrap_err();
        assert!(e.0.contains("linux.resources"), "{e}");
    }
}
