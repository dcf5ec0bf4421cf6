//! `fetch:plain` and `fetch:plain:file`: content copied into the workspace as it is.

use std::path::Path;

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result};
use serde::Deserialize;

use crate::fetch_action;
use crate::source::{self, Source};
use crate::tree::{self, Content};
use scaffolder_plugin_sdk::paths;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlainInput {
    url: String,
    target_path: Option<String>,
    /// Accepted; it will be used once directories can be downloaded.
    #[allow(dead_code)]
    token: Option<String>,
}

/// Downloads content and places it in the workspace, or in `targetPath` below it.
pub struct FetchPlain;

impl Action for FetchPlain {
    const ID: &'static str = "fetch:plain";
    type Input = PlainInput;
    type Output = ();

    fn info() -> ActionInfo {
        fetch_action(
            "Downloads content and places it in the workspace, or optionally in a subdirectory specified by the `targetPath` input option.",
            include_str!("../schemas/fetch-plain.json"),
        )
        .example(
            "Downloads content and places it in the workspace.",
            "steps:\n  - action: fetch:plain\n    id: fetch-plain\n    name: Fetch plain\n    input:\n      url: https://github.com/backstage/community/tree/main/backstage-community-sessions/assets\n",
        )
        .example(
            "Optionally, if you would prefer the data to be downloaded to a subdirectory in the workspace you may specify the ‘targetPath’ input option.",
            "steps:\n  - action: fetch:plain\n    id: fetch-plain\n    name: Fetch plain\n    input:\n      url: https://github.com/backstage/community/tree/main/backstage-community-sessions/assets\n      targetPath: fetched-data\n",
        )
    }

    fn run(ctx: &Context, input: PlainInput) -> Result<()> {
        ctx.info("Fetching plain content from remote URL");
        let target = input.target_path.as_deref().unwrap_or("./");
        let output = paths::workspace_child(ctx, target)?;
        let path = match source::resolve(ctx, &input.url)? {
            Source::Local(path) => path,
            Source::Remote(url) => return Err(source::directory_over_http(&url)),
        };
        // fs-extra's `copy` starts with an `lstat` of the source.
        let content =
            tree::read(&path).map_err(|err| source::io_error(ctx, &err, "lstat", &path, None))?;
        match content {
            Content::Tree(entries) => {
                std::fs::create_dir_all(&output).map_err(|err| write_failed(target, err))?;
                for entry in entries {
                    let at = Path::new(&output).join(&entry.path);
                    tree::write(&at, &entry.kind).map_err(|err| write_failed(&entry.path, err))?;
                }
            }
            Content::File(contents, mode) => {
                if Path::new(&output).is_dir() {
                    return Err(ActionError::failed(format!(
                        "Cannot overwrite directory '{output}' with non-directory '{}'.",
                        source::host_path(ctx, &path)
                    )));
                }
                let kind = scaffolder_template::EntryKind::File { contents, mode };
                tree::write(Path::new(&output), &kind).map_err(|err| write_failed(target, err))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlainFileInput {
    url: String,
    target_path: String,
    token: Option<String>,
}

/// Downloads a single file and places it at `targetPath` in the workspace.
pub struct FetchPlainFile;

impl Action for FetchPlainFile {
    const ID: &'static str = "fetch:plain:file";
    type Input = PlainFileInput;
    type Output = ();

    fn info() -> ActionInfo {
        fetch_action(
            "Downloads single file and places it in the workspace.",
            include_str!("../schemas/fetch-plain-file.json"),
        )
        .example(
            "Downloads a file and places it in the workspace.",
            "steps:\n  - action: fetch:plain:file\n    id: fetch-plain-file\n    name: Fetch plain file\n    input:\n      url: https://github.com/backstage/community/tree/main/backstage-community-sessions/assets/Backstage%20Community%20Sessions.png\n      targetPath: target-path\n",
        )
    }

    fn run(ctx: &Context, input: PlainFileInput) -> Result<()> {
        ctx.info("Fetching plain content from remote URL");
        let output = paths::workspace_child(ctx, &input.target_path)?;
        let (contents, mode) = source::read_file(ctx, &input.url, input.token.as_deref(), &output)?;
        // A file from the template's directory is copied with `fs.copyFile`, which does not
        // create the target's folder (a download does).
        if let Source::Local(path) = source::resolve(ctx, &input.url)?
            && let Some(parent) = Path::new(&output).parent()
            && !parent.is_dir()
        {
            let err = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(source::io_error(
                ctx,
                &err,
                "copyfile",
                &path,
                Some(&output),
            ));
        }
        let kind = scaffolder_template::EntryKind::File { contents, mode };
        tree::write(Path::new(&output), &kind).map_err(|err| write_failed(&input.target_path, err))
    }
}

pub fn write_failed(path: &str, err: std::io::Error) -> ActionError {
    ActionError::failed(format!("could not write '{path}' in the workspace: {err}"))
}
