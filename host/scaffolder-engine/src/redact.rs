//! Replacing secret values with `***` in everything a task records.

use std::sync::{Arc, RwLock};

/// The secret values of one run, or of one step of it. Grows when a step adds a secret.
///
/// A step's redactor is a [`Redactor::child`] of the run's: it also hides what that step
/// derived from secrets (Backstage gives each step its own logger with its own
/// redactions), and sees secrets added to the run's redactor later.
#[derive(Debug, Default)]
pub struct Redactor {
    values: RwLock<Vec<String>>,
    parent: Option<Arc<Redactor>>,
}

impl Redactor {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let redactor = Self::default();
        for value in values {
            redactor.add(value);
        }
        redactor
    }

    /// A redactor hiding what `parent` hides and what is added to it.
    pub fn child(parent: Arc<Redactor>) -> Self {
        Self {
            values: RwLock::default(),
            parent: Some(parent),
        }
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
        }
    }

    fn all_values(&self, out: &mut Vec<String>) {
        out.extend(
            self.values
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        if let Some(parent) = &self.parent {
            parent.all_values(out);
        }
    }

    /// `text` with every secret value replaced by `***`. As Backstage's redacting log
    /// format: every place where some value starts is a range as long as the longest value
    /// starting there; overlapping ranges merge into one `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut values = Vec::new();
        self.all_values(&mut values);
        if values.is_empty() {
            return text.to_owned();
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (start, _) in text.char_indices() {
            let rest = &text[start..];
            let Some(value) = values.iter().find(|v| rest.starts_with(v.as_str())) else {
                continue;
            };
            let end = start + value.len();
            match ranges.last_mut() {
                Some(previous) if start < previous.1 => previous.1 = previous.1.max(end),
                _ => ranges.push((start, end)),
            }
        }
        if ranges.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut cursor = 0;
        for (start, end) in ranges {
            out.push_str(&text[cursor..start]);
            out.push_str("***");
            cursor = end;
        }
        out.push_str(&text[cursor..]);
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
    fn overlapping_values_merge_into_one_mark() {
        let r = Redactor::new(["abc", "cde"]);
        assert_eq!(r.redact("xabcdex abcab"), "x***x ***ab");
        assert_eq!(r.redact("é abc é"), "é *** é");
    }

    #[test]
    fn ignores_one_character_values_and_trims() {
        let r = Redactor::new(["a", "  tok3n\n"]);
        assert_eq!(r.redact("a tok3n"), "a ***");
    }

    #[test]
    fn a_child_hides_its_own_values_and_its_parents() {
        let parent = Arc::new(Redactor::new(["secret-1"]));
        let child = Redactor::child(parent.clone());
        child.add("derived-2");
        parent.add("later-3");
        assert_eq!(child.redact("secret-1 derived-2 later-3"), "*** *** ***");
        assert_eq!(parent.redact("derived-2"), "derived-2");
    }
}
