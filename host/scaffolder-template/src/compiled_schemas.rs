//! Compiled JSON Schemas, kept by their text. Compiling a schema costs far more than
//! checking a value against it (about a tenth of a dry run went to compiling the same
//! action input and parameter schemas again), and the same few schemas come back on
//! every run. Schemas come from clients too (a dry run carries its template), so the
//! cache is bounded: at most [`MAX_ENTRIES`] schemas of at most [`MAX_SCHEMA_BYTES`] of
//! JSON text each; the least recently used goes first, and a larger schema is compiled
//! each time without being kept.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value as Json;

/// Schemas kept at most.
const MAX_ENTRIES: usize = 128;
/// JSON text of the largest schema kept.
const MAX_SCHEMA_BYTES: usize = 32 * 1024;

/// How a schema is compiled; part of the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Checking {
    /// Backstage's backend check (the `jsonschema` package): draft 7, known formats
    /// checked, unknown ones ignored.
    WithFormats,
    /// The frontend's check while it fills in defaults: draft 7, formats not checked.
    WithoutFormats,
}

/// The compiled `schema`, from the cache when it was compiled before.
pub(crate) fn compiled(
    schema: &Json,
    checking: Checking,
) -> Result<Arc<Validator>, ValidationError<'static>> {
    let text = serde_json::to_string(schema).unwrap_or_default();
    if text.len() > MAX_SCHEMA_BYTES {
        return compile(schema, checking).map(Arc::new);
    }
    let key = (checking, text);
    if let Some(validator) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(validator);
    }
    let validator = Arc::new(compile(schema, checking)?);
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, validator.clone());
    Ok(validator)
}

fn compile(schema: &Json, checking: Checking) -> Result<Validator, ValidationError<'static>> {
    let options = jsonschema::options().with_draft(Draft::Draft7);
    match checking {
        Checking::WithFormats => options
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(schema),
        Checking::WithoutFormats => options.build(schema),
    }
}

static CACHE: LazyLock<Mutex<Lru>> = LazyLock::new(|| Mutex::new(Lru::default()));

type Key = (Checking, String);

/// A small least-recently-used map; eviction scans it, which at [`MAX_ENTRIES`] costs
/// less than the compile it follows.
#[derive(Default)]
struct Lru {
    entries: HashMap<Key, (Arc<Validator>, u64)>,
    clock: u64,
}

impl Lru {
    fn get(&mut self, key: &Key) -> Option<Arc<Validator>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(validator, used)| {
            *used = clock;
            validator.clone()
        })
    }

    fn insert(&mut self, key: Key, validator: Arc<Validator>) {
        if self.entries.len() >= MAX_ENTRIES
            && !self.entries.contains_key(&key)
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
        {
            self.entries.remove(&oldest);
        }
        self.clock += 1;
        self.entries.insert(key, (validator, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_is_compiled_once_and_kept_by_its_text_and_checking() {
        let schema =
            json!({ "type": "object", "properties": { "compiled-once": { "format": "date" } } });
        let first = compiled(&schema, Checking::WithFormats).unwrap();
        let again = compiled(&schema.clone(), Checking::WithFormats).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = compiled(&schema, Checking::WithoutFormats).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other),
            "the checking is part of the key"
        );
        assert!(!first.is_valid(&json!({ "compiled-once": "not a date" })));
    }

    #[test]
    fn the_least_recently_used_schema_goes_first_when_full() {
        let mut lru = Lru::default();
        let validator = Arc::new(compile(&json!({}), Checking::WithFormats).unwrap());
        let key = |i: usize| (Checking::WithFormats, format!("{{\"title\":\"{i}\"}}"));
        for i in 0..MAX_ENTRIES {
            lru.insert(key(i), validator.clone());
        }
        assert!(lru.get(&key(0)).is_some()); // 0 is now the most recently used
        lru.insert(key(MAX_ENTRIES), validator.clone());
        assert_eq!(lru.entries.len(), MAX_ENTRIES);
        assert!(lru.get(&key(0)).is_some());
        assert!(lru.get(&key(1)).is_none(), "1 was the least recently used");
        assert!(lru.get(&key(MAX_ENTRIES)).is_some());
    }

    #[test]
    fn a_large_schema_is_not_kept() {
        let big = json!({ "description": "x".repeat(MAX_SCHEMA_BYTES) });
        let first = compiled(&big, Checking::WithFormats).unwrap();
        let again = compiled(&big, Checking::WithFormats).unwrap();
        assert!(!Arc::ptr_eq(&first, &again));
    }
}
