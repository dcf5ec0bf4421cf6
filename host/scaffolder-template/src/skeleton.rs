//! `fetch:template` over an in-memory tree: which entries to write, under which rendered
//! paths, with which contents. The caller reads the template directory and writes the
//! result (and decides about existing files with `replace`); this module does no I/O.
//!
//! Rules (Backstage's `fetch:template`):
//! - every path is rendered; a rendered path that is empty, starts with `/` or contains
//!   `//` is skipped, which is how templates make files conditional;
//! - with `templateFileExtension` only files with that extension have their contents
//!   rendered, and lose the extension; it cannot be combined with
//!   `copyWithoutTemplating` or `cookiecutterCompat`;
//! - otherwise files matching a `copyWithoutTemplating` glob are copied raw;
//! - binary files and symlinks are copied raw; file modes are kept;
//! - the context is `{ values }`, or `{ cookiecutter }` with `{{ }}` delimiters and the
//!   `jsonify` filter in cookiecutter mode.

use globset::{GlobSet, GlobSetBuilder};
use serde_json::{Value as Json, json};

use crate::render::{Renderer, RendererOptions, ScmIntegration, Syntax};

/// One entry of a template directory, relative to it, with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkeletonEntry {
    pub path: String,
    pub kind: EntryKind,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File { contents: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// The `fetch:template` inputs that shape rendering.
#[derive(Debug, Clone)]
pub struct SkeletonOptions {
    pub values: Json,
    pub copy_without_templating: Vec<String>,
    pub cookiecutter_compat: bool,
    /// `templateFileExtension`: `None` for off; `true` in the input is `.njk`.
    pub template_file_extension: Option<String>,
    pub trim_blocks: bool,
    pub lstrip_blocks: bool,
    pub integrations: Vec<ScmIntegration>,
}

/// Why a skeleton could not be rendered; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkeletonError {
    #[error(
        "Fetch action input extension incompatible with copyWithoutTemplating and cookiecutterCompat"
    )]
    IncompatibleExtension,
    #[error("invalid copyWithoutTemplating pattern '{pattern}': {message}")]
    InvalidGlob { pattern: String, message: String },
    #[error("could not render the path '{path}': {message}")]
    Path { path: String, message: String },
    #[error("could not render '{path}': {message}")]
    Contents { path: String, message: String },
}

/// A rendered entry.
pub type RenderedEntry = SkeletonEntry;

impl Default for SkeletonOptions {
    fn default() -> Self {
        Self {
            values: Json::Object(Default::default()),
            copy_without_templating: Vec::new(),
            cookiecutter_compat: false,
            template_file_extension: None,
            trim_blocks: false,
            lstrip_blocks: false,
            integrations: ScmIntegration::defaults(),
        }
    }
}

impl SkeletonOptions {
    /// Normalises Backstage's `templateFileExtension` input: `true` is `.njk`, a string
    /// gets a leading dot, `false`/absent is off.
    pub fn extension_from_input(input: Option<&Json>) -> Option<String> {
        match input? {
            Json::Bool(true) => Some(".njk".into()),
            Json::String(s) if !s.is_empty() => Some(if s.starts_with('.') {
                s.clone()
            } else {
                format!(".{s}")
            }),
            _ => None,
        }
    }
}

/// Renders a template tree.
pub fn render_skeleton(
    entries: &[SkeletonEntry],
    options: &SkeletonOptions,
) -> Result<Vec<RenderedEntry>, SkeletonError> {
    if options.template_file_extension.is_some()
        && (!options.copy_without_templating.is_empty() || options.cookiecutter_compat)
    {
        return Err(SkeletonError::IncompatibleExtension);
    }
    let raw_globs = glob_set(&options.copy_without_templating)?;
    let renderer = Renderer::new(RendererOptions {
        syntax: if options.cookiecutter_compat {
            Syntax::Cookiecutter
        } else {
            Syntax::Backstage
        },
        integrations: options.integrations.clone(),
        trim_blocks: options.trim_blocks,
        lstrip_blocks: options.lstrip_blocks,
    });
    let context = if options.cookiecutter_compat {
        json!({ "cookiecutter": options.values })
    } else {
        json!({ "values": options.values })
    };

    let mut out = Vec::new();
    for entry in entries {
        let (render_contents, strip_extension) =
            match (&options.template_file_extension, &entry.kind) {
                (Some(ext), EntryKind::File { .. }) => {
                    let templated = entry.path.ends_with(ext.as_str());
                    (templated, templated.then_some(ext.len()))
                }
                (Some(_), _) => (false, None),
                (None, _) => (!matches_raw(&raw_globs, &entry.path), None),
            };
        let mut path =
            renderer
                .render_text(&entry.path, &context)
                .map_err(|e| SkeletonError::Path {
                    path: entry.path.clone(),
                    message: e.message,
                })?;
        if let Some(len) = strip_extension
            && path.len() >= len
        {
            path.truncate(path.len() - len);
        }
        if path.is_empty() || path.starts_with('/') || path.contains("//") {
            continue;
        }
        let kind = match &entry.kind {
            EntryKind::File { contents, mode } if render_contents && !is_binary(contents) => {
                let text = std::str::from_utf8(contents).expect("is_binary rejects invalid UTF-8");
                let rendered =
                    renderer
                        .render_text(text, &context)
                        .map_err(|e| SkeletonError::Contents {
                            path: entry.path.clone(),
                            message: e.message,
                        })?;
                EntryKind::File {
                    contents: rendered.into_bytes(),
                    mode: *mode,
                }
            }
            other => other.clone(),
        };
        out.push(SkeletonEntry { path, kind });
    }
    Ok(out)
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, SkeletonError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern.trim_start_matches("./"))
            .literal_separator(true)
            .build()
            .map_err(|e| SkeletonError::InvalidGlob {
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| SkeletonError::InvalidGlob {
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

/// Whether an entry is copied raw: the glob matches it or one of its parent directories
/// (a matched directory is copied whole).
fn matches_raw(globs: &GlobSet, path: &str) -> bool {
    if globs.is_empty() {
        return false;
    }
    let mut prefix = path;
    loop {
        if globs.is_match(prefix) || globs.is_match(format!("{prefix}/")) {
            return true;
        }
        match prefix.rfind('/') {
            Some(cut) => prefix = &prefix[..cut],
            None => return false,
        }
    }
}

/// Binary, as `isbinaryfile` decides for practical purposes: a NUL byte near the start,
/// or contents that are not UTF-8.
pub fn is_binary(contents: &[u8]) -> bool {
    contents.iter().take(8000).any(|b| *b == 0) || std::str::from_utf8(contents).is_err()
}
