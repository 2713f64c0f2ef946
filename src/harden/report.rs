//! What hardening changed, rule by rule: a JSON report for the bundle, one
//! summary line for the log and a readable diff for `harden --dry-run`.

use serde_json::{json, Value};

use super::policy::Level;
use crate::runtime::Backend;

/// One change to the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A value added to a list (or an entry created).
    Add(String),
    /// A value removed from a list (or an entry dropped).
    Remove(String),
    /// A field set: before and after (None = absent).
    Set(Option<String>, Option<String>),
}

/// A change made by one rule to one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub rule: &'static str,
    pub field: String,
    pub op: Op,
}

/// Everything hardening did to one spec.
#[derive(Debug, Clone)]
pub struct Report {
    pub level: Level,
    pub backend: Backend,
    /// A privileged container the operator allowed (its process rules skipped).
    pub privileged: bool,
    /// Remarks that are not spec changes (privileged allowed, level off).
    pub notes: Vec<String>,
    pub changes: Vec<Change>,
}

impl Report {
    pub fn new(level: Level, backend: Backend) -> Self {
        Report {
            level,
            backend,
            privileged: false,
            notes: Vec::new(),
            changes: Vec::new(),
        }
    }

    pub fn add(&mut self, rule: &'static str, field: impl Into<String>, v: impl Into<String>) {
        self.push(rule, field, Op::Add(v.into()));
    }

    pub fn remove(&mut self, rule: &'static str, field: impl Into<String>, v: impl Into<String>) {
        self.push(rule, field, Op::Remove(v.into()));
    }

    pub fn set(
        &mut self,
        rule: &'static str,
        field: impl Into<String>,
        before: Option<String>,
        after: Option<String>,
    ) {
        self.push(rule, field, Op::Set(before, after));
    }

    fn push(&mut self, rule: &'static str, field: impl Into<String>, op: Op) {
        self.changes.push(Change {
            rule,
            field: field.into(),
            op,
        });
    }

    /// Rules in the order they first changed something, with their counts.
    fn rule_counts(&self) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for c in &self.changes {
            match out.iter_mut().find(|(r, _)| *r == c.rule) {
                Some((_, n)) => *n += 1,
                None => out.push((c.rule, 1)),
            }
        }
        out
    }

    /// One line for the shim log.
    pub fn summary(&self) -> String {
        let rules: Vec<String> = self
            .rule_counts()
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let mut s = format!(
            "policy {} on {}: {} changes",
            self.level.name(),
            self.backend.name(),
            self.changes.len()
        );
        if !rules.is_empty() {
            s.push_str(&format!(" ({})", rules.join(", ")));
        }
        for n in &self.notes {
            s.push_str("; ");
            s.push_str(n);
        }
        s
    }

    /// The report stored in the bundle.
    pub fn to_json(&self) -> Value {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| {
                let mut v = json!({"rule": c.rule, "field": c.field});
                match &c.op {
                    Op::Add(x) => v["added"] = json!(x),
                    Op::Remove(x) => v["removed"] = json!(x),
                    Op::Set(b, a) => {
                        v["before"] = json!(b);
                        v["after"] = json!(a);
                    }
                }
                v
            })
            .collect();
        json!({
            "level": self.level.name(),
            "backend": self.backend.name(),
            "notes": self.notes,
            "changes": changes,
        })
    }

    /// A readable diff grouped by rule.
    pub fn render(&self) -> String {
        let mut s = format!(
            "nucleus policy {} for {}: {} changes\n",
            self.level.name(),
            self.backend.name(),
            self.changes.len()
        );
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        for (rule, _) in self.rule_counts() {
            s.push_str(&format!("[{rule}]\n"));
            for c in self.changes.iter().filter(|c| c.rule == rule) {
                let line = match &c.op {
                    Op::Add(x) => format!("  + {}: {x}", c.field),
                    Op::Remove(x) => format!("  - {}: {x}", c.field),
                    Op::Set(b, a) => format!(
                        "  ~ {}: {} -> {}",
                        c.field,
                        b.as_deref().unwrap_or("(none)"),
                        a.as_deref().unwrap_or("(none)")
                    ),
                };
                s.push_str(&line);
                s.push('\n');
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_by_rule_and_counts() {
        let mut r = Report::new(Level::Default, Backend::Runc);
        r.remove(
            "capabilities",
            "process.capabilities.bounding",
            "CAP_NET_RAW",
        );
        r.add("masked-paths", "linux.maskedPaths", "/proc/kallsyms");
        r.remove(
            "capabilities",
            "process.capabilities.effective",
            "CAP_NET_RAW",
        );
        r.set(
            "no-new-privileges",
            "process.noNewPrivileges",
            None,
            Some("true".into()),
        );
        assert_eq!(
            r.summary(),
            "policy default on runc: 4 changes (capabilities 2, masked-paths 1, no-new-privileges 1)"
        );
        let text = r.render();
        assert!(text.contains("[capabilities]\n  - process.capabilities.bounding: CAP_NET_RAW\n  - process.capabilities.effective: CAP_NET_RAW\n"), "{text}");
        assert!(
            text.contains("~ process.noNewPrivileges: (none) -> true"),
            "{text}"
        );
        let j = r.to_json();
        assert_eq!(j["changes"][1]["added"], "/proc/kallsyms");
        assert_eq!(j["level"], "default");
    }
}
