//! `fetch:template` and `fetch:template:file`: skeletons rendered with the values given.
//!
//! The rendering rules (paths, conditional entries, raw copies, extensions, cookiecutter
//! mode, binaries) are `scaffolder_template::render_skeleton`'s; this module fetches the
//! tree, renders it entry by entry so that each write can be logged as Backstage logs it,
//! and writes the result under `targetPath`, keeping existing files unless `replace`.

use std::path::Path;

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result};
use scaffolder_template::skeleton::is_binary;
use scaffolder_template::{
    EntryKind, Renderer, RendererOptions, SkeletonEntry, SkeletonError, SkeletonOptions, Syntax,
    render_skeleton,
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
        let output_dir = paths::workspace_child(
            ctx,
            input.target_path.as_deref().unwrap_or("./"),
            "targetPath",
        )?;
        let extension =
            SkeletonOptions::extension_from_input(input.template_file_extension.as_ref());
        let cookiecutter = input.cookiecutter_compat == Some(true);
        // An empty `copyWithoutTemplating` list counts: Backstage tests the array itself.
        if extension.is_some() && (input.copy_without_templating.is_some() || cookiecutter) {
            return Err(ActionError::invalid_input(
                SkeletonError::IncompatibleExtension,
            ));
        }

        ctx.info("Fetching template content from remote URL");
        let entries = match source::resolve(ctx, &input.url)? {
            Source::Local(path) => read_tree(&path, &input.url)?,
            Source::Remote(url) => return Err(source::directory_over_http(&url)),
        };

        ctx.info("Listing files and directories in template");
        let values = Value::Object(input.values.unwrap_or_default());
        ctx.info(format!(
            "Processing {} template files/directories with input values{}",
            entries.len(),
            log_meta(&values)
        ));
        let options = SkeletonOptions {
            values,
            copy_without_templating: input.copy_without_templating.unwrap_or_default(),
            cookiecutter_compat: cookiecutter,
            template_file_extension: extension,
            trim_blocks: input.trim_blocks == Some(true),
            lstrip_blocks: input.lstrip_blocks == Some(true),
            ..SkeletonOptions::default()
        };
        let replace = input.replace == Some(true);
        for entry in &entries {
            write_entry(ctx, entry, &options, &output_dir, replace)?;
        }
        ctx.info(format!("Template result written to {output_dir}"));
        Ok(())
    }
}

/// Renders one template entry and writes it under `output_dir`.
fn write_entry(
    ctx: &Context,
    entry: &SkeletonEntry,
    options: &SkeletonOptions,
    output_dir: &str,
    replace: bool,
) -> Result<()> {
    let rendered = render_skeleton(std::slice::from_ref(entry), options).map_err(skeleton_error)?;
    // An empty rendered path, or one with an empty segment, is a skipped entry.
    let Some(rendered) = rendered.into_iter().next() else {
        return Ok(());
    };
    let target = paths::resolve_child(output_dir, &rendered.path).ok_or_else(|| {
        paths::outside(format!(
            "'{}' renders to '{}', which is outside targetPath",
            entry.path, rendered.path
        ))
    })?;
    if !replace && Path::new(&target).exists() {
        return Ok(());
    }
    let location = match entry.kind {
        EntryKind::Directory => format!("{}/", entry.path),
        _ => entry.path.clone(),
    };
    if options.template_file_extension.is_none() && copied_raw(&entry.path, options) {
        ctx.info(format!(
            "Copying file/directory {location} without processing."
        ));
    }
    match &entry.kind {
        EntryKind::Directory => ctx.info(format!(
            "Writing directory {location} to template output path."
        )),
        EntryKind::File { contents, .. } if !is_binary(contents) => {
            ctx.info(format!("Writing file {location} to template output path."))
        }
        _ => ctx.info(format!(
            "Copying file binary or symbolic link at {location}, to template output path."
        )),
    }
    tree::write(Path::new(&target), &rendered.kind).map_err(|err| write_failed(&rendered.path, err))
}

/// Whether `copyWithoutTemplating` makes `path` a raw copy. Asked of `render_skeleton`
/// itself, with a probe file whose contents change when rendered, so that the glob rules
/// live in one place.
fn copied_raw(path: &str, options: &SkeletonOptions) -> bool {
    if options.copy_without_templating.is_empty() {
        return false;
    }
    let probe: &[u8] = if options.cookiecutter_compat {
        b"{{ 1 }}"
    } else {
        b"${{ 1 }}"
    };
    let entry = SkeletonEntry {
        path: path.to_owned(),
        kind: EntryKind::File {
            contents: probe.to_vec(),
            mode: tree::DEFAULT_MODE,
        },
    };
    render_skeleton(&[entry], options).is_ok_and(|out| {
        out.first().is_some_and(
            |e| matches!(&e.kind, EntryKind::File { contents, .. } if contents == probe),
        )
    })
}

fn read_tree(path: &str, url: &str) -> Result<Vec<SkeletonEntry>> {
    match tree::read(path) {
        Ok(Content::Tree(entries)) => Ok(entries),
        Ok(Content::File(..)) => Err(ActionError::invalid_input(format!(
            "the fetch URL '{url}' is a file, not a directory: use fetch:template:file"
        ))),
        Err(err) => Err(ActionError::failed(format!(
            "could not read '{url}' from the template's directory: {err}"
        ))),
    }
}

fn skeleton_error(err: SkeletonError) -> ActionError {
    match err {
        SkeletonError::IncompatibleExtension | SkeletonError::InvalidGlob { .. } => {
            ActionError::invalid_input(err)
        }
        SkeletonError::Path { .. } | SkeletonError::Contents { .. } => ActionError::failed(err),
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
        let output = paths::workspace_child(ctx, &input.target_path, "targetPath")?;
        if input.replace != Some(true) && Path::new(&output).exists() {
            ctx.info(format!(
                "File {} already exists in workspace, not replacing.",
                input.target_path
            ));
            return Ok(());
        }
        ctx.info("Fetching template file content from remote URL");
        // Rendered into a new file, as Backstage does: the source's mode is not kept.
        let (contents, _mode) = source::read_file(ctx, &input.url, input.token.as_deref())?;

        let values = Value::Object(input.values.unwrap_or_default());
        ctx.info(format!(
            "Processing template file with input values{}",
            log_meta(&values)
        ));
        let cookiecutter = input.cookiecutter_compat == Some(true);
        let renderer = Renderer::new(RendererOptions {
            syntax: if cookiecutter {
                Syntax::Cookiecutter
            } else {
                Syntax::Backstage
            },
            trim_blocks: input.trim_blocks == Some(true),
            lstrip_blocks: input.lstrip_blocks == Some(true),
            ..RendererOptions::default()
        });
        let context = if cookiecutter {
            json!({ "cookiecutter": values })
        } else {
            json!({ "values": values })
        };
        // Backstage reads the file as UTF-8 text, whatever it holds.
        let text = String::from_utf8_lossy(&contents);
        let rendered = renderer.render_text(&text, &context).map_err(|err| {
            ActionError::failed(format!("could not render '{}': {err}", input.url))
        })?;
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
/// sorted (safe-stable-stringify), nothing for an empty object.
fn log_meta(values: &Value) -> String {
    match values {
        Value::Object(map) if map.is_empty() => String::new(),
        other => format!(" {}", sorted(other)),
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
