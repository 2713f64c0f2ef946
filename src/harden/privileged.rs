//! Privileged containers (`ctr run --privileged`, CRI `privileged: true`,
//! Docker `--privileged`): all recognised by the device rule that allows
//! every device. Refused unless the operator's config allows them.

use serde_json::Value;

/// Why the spec is privileged, or None.
pub fn detect(spec: &Value) -> Option<&'static str> {
    let devices = spec.pointer("/linux/resources/devices")?.as_array()?;
    devices
        .iter()
        .any(|d| {
            let allow = d.get("allow").and_then(Value::as_bool) == Some(true);
            let any_type = matches!(d.get("type").and_then(Value::as_str), None | Some("a"));
            let any_number = |k: &str| {
                matches!(d.get(k), None | Some(Value::Null))
                    || d.get(k).and_then(Value::as_i64) == Some(-1)
            };
            let access = d.get("access").and_then(Value::as_str).unwrap_or("rwm");
            let full = ['r', 'w', 'm'].iter().all(|c| access.contains(*c));
            allow && any_type && any_number("major") && any_number("minor") && full
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
        let typed = json!({"linux": {"resources": {"devices": [{"allow": true, "type": "a", "major": -1, "access": "rwm"}]}}});
        assert!(detect(&typed).is_some());
        let normal = json!({"linux": {"resources": {"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "access": "r"}
        ]}}});
        assert!(detect(&normal).is_none());
        assert!(detect(&json!({})).is_none());
    }
}
