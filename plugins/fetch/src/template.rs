//! `fetch:template` and `fetch:template:file`: skeletons rendered with the values given.
//!
//! Backstage's `createTemplateActionHandler`, step by step: the tree is listed as globby
//! lists it (breadth first, names sorted, directories marked with `/`), each entry's path
//! is rendered (an empty result, or one starting with `/` or holding `//`, skips it), its
//! contents are rendered unless `copyWithoutTemplating` names it or `templateFileExtension`
//! leaves it out, binaries are copied, existing files are kept unless `replace`, and every
//! write is logged with Backstage's wording. Rendering itself is `scaffolder_template`'s.

use std::path::Path;

use globset::{GlobBuilder, GlobSetBuilder};
use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result};
use scaffolder_template::skeleton::is_binary;
use scaffolder_template::{
    EntryKind, Renderer, RendererOptions, SkeletonEntry, SkeletonError, SkeletonOptions, Syntax,
};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use crate::fetch_action;
use crate::plain::write_failed;
use crate::source::{self, Source};
use crate::tree::{self, Content};
use scaffolder_plugin_sdk::paths;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateInput {
    url: String,
    target_path: Option<String>,
    values: Option<Map<String, Value>>,
    /// Deprecated in Backstage and ignored since 4.2.0: accepted, not acted on.
    #[serde(rename = "copyWithoutRender")]
    _copy_without_render: Option<IgnoredAny>,
    copy_without_templating: Option<Vec<String>>,
    cookiecutter_compat: Option<bool>,
    template_file_extension: Option<Value>,
    replace: Option<bool>,
    trim_blocks: Option<bool>,
    lstrip_blocks: Option<bool>,
    /// Accepted; it will be used once directories can be downloaded.
    #[allow(dead_code)]
    token: Option<String>,
}

/// Downloads a skeleton, renders its paths and contents, and writes the result.
pub struct FetchTemplate;

impl Action for FetchTemplate {
    const ID: &'static str = "fetch:template";
    type Input = TemplateInput;
    type Output = ();

    fn info() -> ActionInfo {
        fetch_action(
            "Downloads a skeleton, templates variables into file and directory names and content, and places the result in the workspace, or optionally in a subdirectory specified by the `targetPath` input option.",
            include_str!("../schemas/fetch-template.json"),
        )
        .example(
            "Downloads a skeleton directory that lives alongside the template file and fill it out with values.",
            "steps:\n  - action: fetch:template\n    id: fetch-template\n    name: Fetch template\n    input:\n      url: ./skeleton\n      targetPath: ./target\n      values:\n        name: test-project\n        count: 1234\n        itemList:\n          - first\n          - second\n          - third\n        showDummyFile: false\n",
        )
    }

    fn run(ctx: &Context, input: TemplateInput) -> Result<()> {
        // Settings are checked before anything is fetched, as Backstage does.
        let output_dir = paths::workspace_child(ctx, input.target_path.as_deref().unwrap_or("./"))?;
        let cookiecutter = input.cookiecutter_compat == Some(true);
        // Backstage tests the input's truthiness: `true` or a non-empty string; and an
        // empty `copyWithoutTemplating` list counts, as it tests the array itself.
        let extension =
            SkeletonOptions::extension_from_input(input.template_file_extension.as_ref());
        if extension.is_some() && (input.copy_without_templating.is_some() || cookiecutter) {
            return Err(ActionError::invalid_input(
                SkeletonError::IncompatibleExtension,
            ));
        }

        ctx.info("Fetching template content from remote URL");
        let template_dir = match source::resolve(ctx, &input.url)? {
            Source::Local(path) => path,
            Source::Remote(url) => return Err(source::directory_over_http(&url)),
        };
        let entries = read_tree(ctx, &template_dir)?;

        ctx.info("Listing files and directories in template");
        let raw = RawCopies::new(
            input.copy_without_templating.as_deref().unwrap_or_default(),
            &entries,
        )?;
        ctx.info(format!(
            "Processing {} template files/directories with input values{}",
            entries.len(),
            log_meta(input.values.as_ref())
        ));
        let values = Value::Object(input.values.unwrap_or_default());
        let renderer = renderer(cookiecutter, input.trim_blocks, input.lstrip_blocks);
        let context = render_context(cookiecutter, values);
        let replace = input.replace == Some(true);
        for entry in &entries {
            write_entry(
                ctx,
                entry,
                &Settings {
                    renderer: &renderer,
                    context: &context,
                    extension: extension.as_deref(),
                    raw: &raw,
                    output_dir: &output_dir,
                    replace,
                },
            )?;
        }
        ctx.info(format!("Template result written to {output_dir}"));
        Ok(())
    }
}

/// What every entry of one `fetch:template` run is rendered with.
struct Settings<'a> {
    renderer: &'a Renderer,
    context: &'a Value,
    extension: Option<&'a str>,
    raw: &'a RawCopies,
    output_dir: &'a str,
    replace: bool,
}

/// Renders one template entry and writes it under `output_dir`, logging as Backstage's
/// `createTemplateActionHandler` does.
fn write_entry(ctx: &Context, entry: &SkeletonEntry, settings: &Settings) -> Result<()> {
    // Backstage's `location`: what globby lists, directories with a trailing `/`.
    let location = match entry.kind {
        EntryKind::Directory => format!("{}/", entry.path),
        _ => entry.path.clone(),
    };
    let render_path = |path: &str| {
        settings
            .renderer
            .render_text(path, settings.context)
            .map_err(|err| {
                // Backstage's renderer error, as it is (a `TemplateRenderError`).
                ActionError::failed(err.message)
            })
    };
    let (render_contents, local_output_path) = match settings.extension {
        Some(extension) => {
            let templated = extname(&location) == extension;
            let path = if templated {
                &location[..location.len() - extension.len()]
            } else {
                location.as_str()
            };
            (templated, render_path(path)?)
        }
        None => (!settings.raw.contains(&location), render_path(&location)?),
    };
    // An empty rendered path, one starting with `/` or holding `//` is a skipped entry.
    if local_output_path.is_empty()
        || local_output_path.starts_with('/')
        || local_output_path.contains("//")
    {
        return Ok(());
    }
    let target =
        paths::resolve_child(settings.output_dir, &local_output_path).ok_or_else(paths::outside)?;
    // `fs.existsSync` follows links: a dangling one does not exist.
    if !settings.replace && Path::new(&target).exists() {
        return Ok(());
    }
    if !render_contents && settings.extension.is_none() {
        ctx.info(format!(
            "Copying file/directory {location} without processing."
        ));
    }
    match &entry.kind {
        EntryKind::Directory => {
            ctx.info(format!(
                "Writing directory {location} to template output path."
            ));
            tree::write(Path::new(&target), &entry.kind)
        }
        EntryKind::File { contents, mode } if !is_binary(contents) => {
            ctx.info(format!(
                "Writing file {location} to template output path with mode {}.",
                S_IFREG | mode
            ));
            let contents = if render_contents {
                // Backstage reads the file as UTF-8 text.
                let text = String::from_utf8_lossy(contents);
                settings
                    .renderer
                    .render_text(&text, settings.context)
                    .map_err(|err| ActionError::failed(err.message))?
                    .into_bytes()
            } else {
                contents.clone()
            };
            let kind = EntryKind::File {
                contents,
                mode: *mode,
            };
            tree::write(Path::new(&target), &kind)
        }
        _ => {
            ctx.info(format!(
                "Copying file binary or symbolic link at {location}, to template output path."
            ));
            tree::write(Path::new(&target), &entry.kind)
        }
    }
    .map_err(|err| write_failed(&local_output_path, err))
}

/// The file-type bits of a regular file in `stat`'s `mode`, which Backstage logs whole.
const S_IFREG: u32 = 0o100_000;

/// Node's `path.extname`: from the last `.` of the last segment (trailing `/` ignored),
/// empty when that segment has no dot or only a leading one.
fn extname(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    let base = &trimmed[trimmed.rfind('/').map_or(0, |i| i + 1)..];
    match base.rfind('.') {
        None => "",
        Some(dot) if base[..dot].chars().all(|c| c == '.') => "",
        Some(dot) => &base[dot..],
    }
}

/// The entries `copyWithoutTemplating` names, as Backstage lists them: globby over the
/// template with `dot: true`, directories included (marked with `/`), a pattern naming a
/// directory expanded to everything below it, `!pattern` excluding.
struct RawCopies {
    locations: std::collections::BTreeSet<String>,
}

impl RawCopies {
    fn new(patterns: &[String], entries: &[SkeletonEntry]) -> Result<Self> {
        let directories: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Directory))
            .map(|e| e.path.as_str())
            .collect();
        let mut include = GlobSetBuilder::new();
        let mut exclude = GlobSetBuilder::new();
        for pattern in patterns {
            let (negated, pattern) = match pattern.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, pattern.as_str()),
            };
            let pattern = pattern.trim_start_matches("./").trim_end_matches('/');
            // globby's `expandDirectories`: a pattern that is a directory means its contents.
            let pattern = if directories.contains(pattern) {
                format!("{pattern}/**")
            } else {
                pattern.to_owned()
            };
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|err| {
                    ActionError::invalid_input(SkeletonError::InvalidGlob {
                        pattern: pattern.clone(),
                        message: err.kind().to_string(),
                    })
                })?;
            if negated {
                exclude.add(glob);
            } else {
                include.add(glob);
            }
        }
        let build = |builder: GlobSetBuilder| {
            builder
                .build()
                .map_err(|err| ActionError::invalid_input(err.to_string()))
        };
        let (include, exclude) = (build(include)?, build(exclude)?);
        let locations = entries
            .iter()
            .filter(|e| include.is_match(&e.path) && !exclude.is_match(&e.path))
            .map(|e| match e.kind {
                EntryKind::Directory => format!("{}/", e.path),
                _ => e.path.clone(),
            })
            .collect();
        Ok(Self { locations })
    }

    fn contains(&self, location: &str) -> bool {
        self.locations.contains(location)
    }
}

fn read_tree(ctx: &Context, path: &str) -> Result<Vec<SkeletonEntry>> {
    match tree::read(path) {
        Ok(Content::Tree(entries)) => Ok(entries),
        // Backstage copies the file to where its temporary folder would be, and globby
        // refuses to list a file.
        Ok(Content::File(..)) => Err(ActionError::failed(
            "The `cwd` option must be a path to a directory",
        )),
        Err(err) => Err(source::io_error(ctx, &err, "lstat", path, None)),
    }
}

fn renderer(
    cookiecutter: bool,
    trim_blocks: Option<bool>,
    lstrip_blocks: Option<bool>,
) -> Renderer {
    Renderer::new(RendererOptions {
        syntax: if cookiecutter {
            Syntax::Cookiecutter
        } else {
            Syntax::Backstage
        },
        trim_blocks: trim_blocks == Some(true),
        lstrip_blocks: lstrip_blocks == Some(true),
        ..RendererOptions::default()
    })
}

/// `{ values }`, or `{ cookiecutter }` in cookiecutter mode.
fn render_context(cookiecutter: bool, values: Value) -> Value {
    if cookiecutter {
        json!({ "cookiecutter": values })
    } else {
        json!({ "values": values })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateFileInput {
    url: String,
    target_path: String,
    values: Option<Map<String, Value>>,
    cookiecutter_compat: Option<bool>,
    replace: Option<bool>,
    trim_blocks: Option<bool>,
    lstrip_blocks: Option<bool>,
    token: Option<String>,
}

/// Downloads a single file, renders it, and writes it at `targetPath`.
pub struct FetchTemplateFile;

impl Action for FetchTemplateFile {
    const ID: &'static str = "fetch:template:file";
    type Input = TemplateFileInput;
    type Output = ();

    fn info() -> ActionInfo {
        fetch_action(
            "Downloads single file and places it in the workspace.",
            include_str!("../schemas/fetch-template-file.json"),
        )
        .example(
            "Downloads a template file and fill it out with values.",
            "steps:\n  - action: fetch:template:file\n    id: fetch-template-file\n    name: Fetch template file\n    input:\n      url: ./skeleton.txt\n      targetPath: ./target/skeleton.txt\n      values:\n        name: test-project\n        count: 1234\n        itemList:\n          - first\n          - second\n          - third\n",
        )
    }

    fn run(ctx: &Context, input: TemplateFileInput) -> Result<()> {
        let output = paths::workspace_child(ctx, &input.target_path)?;
        if input.replace != Some(true) && Path::new(&output).exists() {
            ctx.info(format!(
                "File {} already exists in workspace, not replacing.",
                input.target_path
            ));
            return Ok(());
        }
        ctx.info("Fetching template file content from remote URL");
        // Backstage copies the file into the step's temporary folder first; its error
        // messages name that copy (`mkdtemp` adds six random characters).
        let temporary = format!("{}_step-{}-XXXXXX/tmp", ctx.workspace(), ctx.step_id());
        // Rendered into a new file, as Backstage does: the source's mode is not kept.
        let (contents, _mode) =
            source::read_file(ctx, &input.url, input.token.as_deref(), &temporary)?;

        ctx.info(format!(
            "Processing template file with input values{}",
            log_meta(input.values.as_ref())
        ));
        let cookiecutter = input.cookiecutter_compat == Some(true);
        let renderer = renderer(cookiecutter, input.trim_blocks, input.lstrip_blocks);
        let context = render_context(
            cookiecutter,
            Value::Object(input.values.unwrap_or_default()),
        );
        // Backstage reads the file as UTF-8 text, whatever it holds.
        let text = String::from_utf8_lossy(&contents);
        let rendered = renderer
            .render_text(&text, &context)
            .map_err(|err| ActionError::failed(err.message))?;
        let kind = EntryKind::File {
            contents: rendered.into_bytes(),
            mode: tree::DEFAULT_MODE,
        };
        tree::write(Path::new(&output), &kind)
            .map_err(|err| write_failed(&input.target_path, err))?;
        ctx.info(format!("Template file has been written to {output}"));
        Ok(())
    }
}

/// How winston's `simple()` format appends a log call's metadata: ` <JSON>` with keys
/// sorted (safe-stable-stringify), nothing for no values or an empty object.
fn log_meta(values: Option<&Map<String, Value>>) -> String {
    match values {
        Some(map) if !map.is_empty() => format!(" {}", sorted(&Value::Object(map.clone()))),
        _ => String::new(),
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extname_reads_as_nodes() {
        assert_eq!(extname("a/b.md.njk"), ".njk");
        assert_eq!(extname(".njk"), "");
        assert_eq!(extname("dir/.njk"), "");
        assert_eq!(extname("UPPER.NJK"), ".NJK");
        assert_eq!(extname("dir.njk/"), ".njk");
        assert_eq!(extname("noext"), "");
        assert_eq!(extname("..njk"), "");
        assert_eq!(extname("a."), ".");
    }

    fn entry(path: &str, dir: bool) -> SkeletonEntry {
        SkeletonEntry {
            path: path.to_owned(),
            kind: if dir {
                EntryKind::Directory
            } else {
                EntryKind::File {
                    contents: Vec::new(),
                    mode: 0o644,
                }
            },
        }
    }

    #[test]
    fn raw_copies_are_what_globby_lists() {
        let entries = [
            entry("raw", true),
            entry("raw/a.txt", false),
            entry("raw/sub", true),
            entry("raw/sub/b.txt", false),
            entry("x.keep", false),
            entry("deep", true),
            entry("deep/y.keep", false),
            entry(".hidden.keep", false),
            entry("other.txt", false),
        ];
        let raw = RawCopies::new(
            &[
                "./raw".to_owned(),
                "**/*.keep".to_owned(),
                "!deep/*.keep".to_owned(),
            ],
            &entries,
        )
        .unwrap();
        let listed: Vec<&str> = raw.locations.iter().map(String::as_str).collect();
        // A directory named by a pattern means what is below it, not itself.
        assert_eq!(
            listed,
            [
                ".hidden.keep",
                "raw/a.txt",
                "raw/sub/",
                "raw/sub/b.txt",
                "x.keep"
            ]
        );
    }
}
