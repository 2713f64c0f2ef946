//! Privileged containers (`ctr run --privileged`, CRI `privileged: true`,
//! Docker `--privileged`): all recognised by the device rule that allows
//! every device. Refused unless the operator's config allows them.

use serde_json::Value;

/// Why the spec is privileged, or None: a device rule that allows reading
/// or writing every device (type absent, empty or `a`; no major/minor).
pub fn detect(spec: &Value) -> Option<&'static str> {
    let devices = spec.pointer("/linux/resources/devices")?.as_array()?;
    devices
        .iter()
        .any(|d| {
            let allow = d.get("allow").and_then(Value::as_bool) == Some(true);
            let any_type = matches!(
                d.get("type").and_then(Value::as_str),
                None | Some("") | Some("a")
            );
            let any_number = |k: &str| match d.get(k) {
                None | Some(Value::Null) => true,
                Some(v) => v.as_i64() == Some(-1),
            };
            let access = d.get("access").and_then(Value::as_str).unwrap_or("rwm");
            let opens = access.is_empty() || access.contains('r') || access.contains('w');
            allow && any_type && any_number("major") && any_number("minor") && opens
        })
        .then_some("linux.resources.devices allows every device")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_allow_all_device_rule_marks_privileged() {
        let ctr_privileged =
            json!({"linux": {"resources": {"devices": [{"allow": true, "access": "rwm"}]}}});
        assert!(detect(&ctr_privileged).is_some());
        for rule in [
            json!({"allow": true, "type": "a", "major": -1, "access": "rwm"}),
            json!({"allow": true, "type": "", "access": "rwm"}),
            json!({"allow": true, "access": "rw"}),
            json!({"allow": true, "access": "r"}),
        ] {
            let spec = json!({"linux": {"resources": {"devices": [rule.clone()]}}});
            assert!(detect(&spec).is_some(), "{rule}");
        }
        let normal = json!({"linux": {"resources": {"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "access": "m"}
        ]}}});
        assert!(detect(&normal).is_none());
        assert!(detect(&json!({})).is_none());
    }
}
