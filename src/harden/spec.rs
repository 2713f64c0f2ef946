//! Small helpers to read and edit an OCI spec kept as JSON. The spec stays a
//! `serde_json::Value` so fields this shim does not know (newer runtime-spec
//! versions, vendor extensions) reach the runtime untouched.

use serde_json::{Map, Value};

use super::HardenError;

/// The spec's top-level object.
pub fn root(spec: &mut Value) -> Result<&mut Map<String, Value>, HardenError> {
    spec.as_object_mut()
        .ok_or_else(|| HardenError("the OCI spec must be a JSON object".into()))
}

/// The object at `key`, created when absent or null; `field` names it in errors.
pub fn child<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<&'a mut Map<String, Value>, HardenError> {
    let slot = parent
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| HardenError(format!("{field}: expected a JSON object")))
}

/// The existing object at `key`, if any.
pub fn existing<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a mut Map<String, Value>>, HardenError> {
    match parent.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(HardenError(format!("{field}: expected a JSON object"))),
    }
}

/// A list of strings (absent or null = empty).
pub fn strings(v: Option<&Value>, field: &str) -> Result<Vec<String>, HardenError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| HardenError(format!("{field}: expected strings, found {i}")))
            })
            .collect(),
        Some(other) => Err(HardenError(format!(
            "{field}: expected a list of strings, found {other}"
        ))),
    }
}

/// A list of objects (absent or null = empty).
pub fn objects<'a>(
    v: Option<&'a mut Value>,
    field: &str,
) -> Result<Vec<&'a mut Map<String, Value>>, HardenError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter_mut()
            .enumerate()
            .map(|(i, item)| {
                item.as_object_mut()
                    .ok_or_else(|| HardenError(format!("{field}[{i}]: expected a JSON object")))
            })
            .collect(),
        Some(_) => Err(HardenError(format!("{field}: expected a list"))),
    }
}

/// A short text for a JSON value in reports.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
