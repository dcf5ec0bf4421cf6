//! Backstage's catalog actions, as `@backstage/plugin-scaffolder-backend` 4.2.0 has them:
//!
//! - `catalog:write` writes an entity as a catalog descriptor file into the workspace,
//!   byte for byte as Backstage writes it: `entity` gets the source-template annotation by
//!   JavaScript spread semantics (`entity.rs`, `js.rs`) and is written by a port of the npm
//!   `yaml` package's `stringify` (`yaml.rs`);
//! - `catalog:fetch` and `catalog:register` call the catalog of the Backstage instance
//!   named by the `backstage.baseUrl` configuration (`client.rs`), with the Backstage token
//!   of the user who started the task (the secret `backstageToken`).

mod client;
mod entity;
mod entity_ref;
mod fetch;
mod js;
mod path;
mod register;
mod scm_url;
mod yaml;

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, plugin};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Where the entity goes when `filePath` is not given.
const DEFAULT_FILE_PATH: &str = "catalog-info.yaml";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteInput {
    file_path: Option<String>,
    entity: Map<String, Value>,
}

/// Writes the catalog-info.yaml for your template.
pub struct Write;

impl Action for Write {
    const ID: &'static str = "catalog:write";
    type Input = WriteInput;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Writes the catalog-info.yaml for your template")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "filePath": {
                        "type": "string",
                        "description": "Defaults to catalog-info.yaml"
                    },
                    "entity": {
                        "type": "object",
                        "additionalProperties": {},
                        "description": "You can provide the same values used in the Entity schema."
                    }
                },
                "required": ["entity"],
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .supports_dry_run()
            .idempotent(true)
            .example(
                "Write a catalog yaml file",
                "steps:\n  - action: catalog:write\n    id: create-catalog-info-file\n    name: Create catalog file\n    input:\n      entity:\n        apiVersion: backstage.io/v1alpha1\n        kind: Component\n        metadata:\n          name: test\n          annotations: {}\n        spec:\n          type: service\n          lifecycle: production\n          owner: default/owner\n",
            )
    }

    fn run(ctx: &Context, input: WriteInput) -> Result<()> {
        // Backstage's order: log, check the path, build the document, write.
        let file_path = input.file_path.as_deref().unwrap_or(DEFAULT_FILE_PATH);
        ctx.info(format!("Writing {file_path}"));
        let target = path::safe_child_path(ctx.workspace(), file_path)?;
        let written = entity::with_source_template(&input.entity, ctx.template_ref())
            .map_err(ActionError::failed)?;
        let contents = yaml::stringify(&written);
        // `fs.outputFile`: missing parent directories are created.
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                ActionError::failed(format!("could not create {}: {err}", parent.display()))
            })?;
        }
        std::fs::write(&target, contents).map_err(|err| {
            ActionError::failed(format!("could not write {}: {err}", target.display()))
        })
    }
}

plugin!(Write, fetch::Fetch, register::Register);
