//! YAML to JSON with positions: every node's JSON path (`spec.steps[2].action`) maps to
//! the line and column where it starts, so errors found after parsing can point at the
//! place. Scalars resolve with the YAML 1.2 core schema, as Backstage's `yaml` package
//! does.

use std::collections::HashMap;

use serde_json::{Map, Number, Value as Json};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in the source, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One parsed document.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Json,
    positions: HashMap<String, Position>,
}

impl Document {
    /// Where the node at `path` starts, or its closest ancestor that exists.
    pub fn position(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(p) = self.positions.get(path) {
                return Some(*p);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub position: Position,
    pub message: String,
}

/// Parses every document of a YAML stream.
pub fn parse_documents(source: &str) -> Result<Vec<Document>, SyntaxError> {
    let mut builder = Builder::default();
    Parser::new_from_str(source)
        .load(&mut builder, true)
        .map_err(|err| SyntaxError {
            position: position(err.marker()),
            message: err.info().to_owned(),
        })?;
    if let Some(message) = builder.error {
        return Err(message);
    }
    Ok(builder.documents)
}

/// The JSON path of a key under `parent`: `parent.key`, or `parent["odd key"]`.
pub fn child_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '-' || c == ':');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Json::String(key.to_owned())),
    }
}

/// The JSON path of an array item under `parent`.
pub fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

fn position(marker: &Marker) -> Position {
    Position {
        line: marker.line(),
        column: marker.col() + 1,
    }
}

enum Frame {
    Sequence {
        path: String,
        items: Vec<Json>,
        anchor: usize,
    },
    Mapping {
        path: String,
        map: Map<String, Json>,
        key: Option<String>,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    documents: Vec<Document>,
    positions: HashMap<String, Position>,
    anchors: HashMap<usize, Json>,
    root: Option<Json>,
    error: Option<SyntaxError>,
}

/// Nesting deeper than this is refused (a defence against stack exhaustion).
const MAX_DEPTH: usize = 256;

impl Builder {
    /// The path the next node will have, or `None` when the next scalar is a mapping key.
    fn next_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, items, .. }) => Some(child_index(path, items.len())),
            Some(Frame::Mapping {
                path,
                key: Some(key),
                ..
            }) => Some(child_key(path, key)),
            Some(Frame::Mapping { key: None, .. }) => None,
        }
    }

    fn fail(&mut self, mark: Marker, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                position: position(&mark),
                message,
            });
        }
    }

    /// Places a finished node into its parent (or makes it the document root).
    fn place(&mut self, value: Json, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Sequence { items, .. }) => items.push(value),
            Some(Frame::Mapping { map, key, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, value);
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::DocumentStart => {
                self.positions.clear();
                self.root = None;
            }
            Event::DocumentEnd => {
                let value = self.root.take().unwrap_or(Json::Null);
                self.documents.push(Document {
                    value,
                    positions: std::mem::take(&mut self.positions),
                });
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail(mark, format!("nesting deeper than {MAX_DEPTH} levels"));
                }
                let Some(path) = self.next_path() else {
                    return self.fail(mark, "a mapping key must be a plain value".into());
                };
                self.positions.insert(path.clone(), position(&mark));
                self.stack
                    .push(if matches!(event, Event::SequenceStart(..)) {
                        Frame::Sequence {
                            path,
                            items: Vec::new(),
                            anchor,
                        }
                    } else {
                        Frame::Mapping {
                            path,
                            map: Map::new(),
                            key: None,
                            anchor,
                        }
                    });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Sequence { items, anchor, .. }) = self.stack.pop() {
                    self.place(Json::Array(items), anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Mapping { map, anchor, .. }) = self.stack.pop() {
                    self.place(Json::Object(map), anchor);
                }
            }
            Event::Scalar(text, style, anchor, tag) => match self.next_path() {
                None => {
                    if let Some(Frame::Mapping { key, map, path, .. }) = self.stack.last_mut() {
                        if map.contains_key(&text) {
                            let message = format!(
                                "duplicate key '{text}' in {}",
                                if path.is_empty() {
                                    "the document"
                                } else {
                                    path
                                }
                            );
                            return self.fail(mark, message);
                        }
                        *key = Some(text);
                    }
                }
                Some(path) => {
                    self.positions.insert(path, position(&mark));
                    let value = resolve_scalar(text, style, tag.as_ref());
                    self.place(value, anchor);
                }
            },
            Event::Alias(id) => {
                let Some(value) = self.anchors.get(&id).cloned() else {
                    return self.fail(mark, "alias to an unknown anchor".into());
                };
                match self.next_path() {
                    Some(path) => {
                        self.positions.insert(path, position(&mark));
                        self.place(value, 0);
                    }
                    None => match value {
                        Json::String(s) => {
                            if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
                                *key = Some(s);
                            }
                        }
                        _ => self.fail(mark, "a mapping key must be a plain value".into()),
                    },
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }
}

/// YAML 1.2 core schema resolution of a scalar.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Json {
    if tag.is_some_and(|t| t.suffix == "str") {
        return Json::String(text);
    }
    if style != TScalarStyle::Plain {
        return Json::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Json::Null,
        "true" | "True" | "TRUE" => return Json::Bool(true),
        "false" | "False" | "FALSE" => return Json::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(&text) {
        return Json::Number(n.into());
    }
    if looks_like_float(&text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Json::Number(n);
    }
    Json::String(text)
}

fn parse_int(text: &str) -> Option<i64> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(sign * value)
}

fn looks_like_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && t.bytes().any(|b| b.is_ascii_digit())
        && (t.contains('.') || t.contains(['e', 'E']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(source: &str) -> Document {
        let mut docs = parse_documents(source).unwrap();
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn scalars_resolve_with_the_core_schema() {
        let doc = one(
            "a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\nf: yes\ng: 0x1f\nh: ~\ni: -3\nj: 1e3\nk: 1.2.3\n",
        );
        assert_eq!(
            doc.value,
            json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1", "f": "yes", "g": 31, "h": null, "i": -3, "j": 1000.0, "k": "1.2.3"})
        );
    }

    #[test]
    fn positions_point_at_nodes() {
        let doc = one("spec:\n  steps:\n    - id: a\n      action: x\n    - id: b\n");
        assert_eq!(doc.position("spec.steps[1]").map(|p| p.line), Some(5));
        assert_eq!(
            doc.position("spec.steps[0].action"),
            Some(Position {
                line: 4,
                column: 15
            })
        );
        // A missing node points at its closest ancestor.
        assert_eq!(
            doc.position("spec.steps[1].action"),
            doc.position("spec.steps[1]")
        );
    }

    #[test]
    fn anchors_and_block_scalars() {
        let doc = one("a: &x {k: v}\nb: *x\nc: |\n  line1\n  line2\n");
        assert_eq!(
            doc.value,
            json!({"a": {"k": "v"}, "b": {"k": "v"}, "c": "line1\nline2\n"})
        );
    }

    #[test]
    fn several_documents() {
        let docs = parse_documents("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].value, json!({"b": 2}));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.position.line >= 1, "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate key 'a'"), "{err:?}");
        assert_eq!(err.position.line, 2);
    }

    #[test]
    fn odd_keys_are_quoted_in_paths() {
        assert_eq!(
            child_key("metadata.annotations", "backstage.io/x"),
            "metadata.annotations[\"backstage.io/x\"]"
        );
        assert_eq!(child_key("", "spec"), "spec");
    }
}
