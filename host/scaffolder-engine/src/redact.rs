//! Replacing secret values with `***` in everything a task records.

use std::sync::RwLock;

/// The secret values of one run. Grows when a step adds a secret.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    values: RwLock<Vec<String>>,
}

impl Redactor {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let redactor = Self::default();
        for value in values {
            redactor.add(value);
        }
        redactor
    }

    /// Adds a value to hide. As Backstage: trimmed, and values of one character or
    /// less are ignored (they would blank out ordinary text).
    pub fn add(&self, value: &str) {
        let value = value.trim();
        if value.chars().count() <= 1 {
            return;
        }
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        if !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
            values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_owned();
        for value in values.iter() {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "***");
            }
        }
        out
    }

    /// `value` with every secret value replaced by `***` in its strings and keys.
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as Json;
        match value {
            Json::String(text) => Json::String(self.redact(text)),
            Json::Array(items) => Json::Array(items.iter().map(|v| self.redact_json(v)).collect()),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_string_and_key_of_a_json_value() {
        let r = Redactor::new(["hunter2"]);
        assert_eq!(
            r.redact_json(&serde_json::json!({
                "url": "postgres://u:hunter2@db",
                "list": ["hunter2", 7, null],
                "hunter2": true,
            })),
            serde_json::json!({ "url": "postgres://u:***@db", "list": ["***", 7, null], "***": true })
        );
    }

    #[test]
    fn replaces_every_occurrence_and_the_longest_first() {
        let r = Redactor::new(["abc", "abcdef"]);
        assert_eq!(r.redact("x abcdef y abc"), "x *** y ***");
    }

    #[test]
    fn ignores_one_character_values_and_trims() {
        let r = Redactor::new(["a", "  tok3n\n"]);
        assert_eq!(r.redact("a tok3n"), "a ***");
    }
}
