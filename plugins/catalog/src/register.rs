//! `catalog:register`: registers a catalog descriptor's URL as a location in the catalog
//! and outputs the main entity it defines.

use scaffolder_plugin_sdk::{Action, ActionInfo, Context, Result, Value, json};
use serde::{Deserialize, Serialize};

use crate::client::{CatalogClient, TOKEN_SECRET};
use crate::entity_ref::EntityName;
use crate::scm_url;
use scaffolder_plugin_sdk::integrations;

/// Where the descriptor is when `catalogInfoPath` is not given.
const DEFAULT_CATALOG_INFO_PATH: &str = "/catalog-info.yaml";

/// The input schema's two shapes (`anyOf`; the host validated which one it is).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RegisterInput {
    #[serde(rename_all = "camelCase")]
    Url {
        catalog_info_url: String,
        #[serde(default)]
        optional: bool,
    },
    #[serde(rename_all = "camelCase")]
    Repository {
        repo_contents_url: String,
        catalog_info_path: Option<String>,
        #[serde(default)]
        optional: bool,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_ref: Option<String>,
    catalog_info_url: String,
}

/// Registers entities from a catalog descriptor file into the software catalog.
pub struct Register;

impl Action for Register {
    const ID: &'static str = "catalog:register";
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn info() -> ActionInfo {
        let optional = json!({
            "type": "boolean",
            "description": "Permit the registered location to optionally exist. Default: false"
        });
        ActionInfo::new(
            "Registers entities from a catalog descriptor file in the workspace into the software catalog.",
        )
        .input_schema(json!({
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "catalogInfoUrl": { "type": "string", "description": "An absolute URL pointing to the catalog info file location" },
                        "optional": optional
                    },
                    "required": ["catalogInfoUrl"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": {
                        "repoContentsUrl": { "type": "string", "description": "An absolute URL pointing to the root of a repository directory tree" },
                        "catalogInfoPath": { "type": "string", "description": "A relative path from the repo root pointing to the catalog info file, defaults to /catalog-info.yaml" },
                        "optional": optional
                    },
                    "required": ["repoContentsUrl"],
                    "additionalProperties": false
                }
            ],
            "$schema": "http://json-schema.org/draft-07/schema#"
        }))
        .destructive(false)
        .requests_http("https://*:*")
        .requests_http("http://*:*")
        .requests_secret(TOKEN_SECRET)
        .example(
            "Register with the catalog",
            "steps:\n  - action: catalog:register\n    id: register-with-catalog\n    name: Register with the catalog\n    input:\n      catalogInfoUrl: http://github.com/backstage/backstage/blob/master/catalog-info.yaml\n",
        )
    }

    fn run(ctx: &Context, input: RegisterInput) -> Result<RegisterOutput> {
        let (catalog_info_url, optional) = match input {
            RegisterInput::Url {
                catalog_info_url,
                optional,
            } => (catalog_info_url, optional),
            RegisterInput::Repository {
                repo_contents_url,
                catalog_info_path,
                optional,
            } => {
                let integrations = integrations::integrations(ctx)?;
                let path = catalog_info_path
                    .as_deref()
                    .unwrap_or(DEFAULT_CATALOG_INFO_PATH);
                (
                    scm_url::resolve(&integrations, &repo_contents_url, path)?,
                    optional,
                )
            }
        };
        ctx.info(format!("Registering {catalog_info_url} in the catalog"));
        let catalog = CatalogClient::new(ctx)?;
        // Backstage's order: register, then ask again with `dryRun` for the entities,
        // each failure ignored when `optional`.
        if let Err(err) = catalog.add_location(&catalog_info_url, false)
            && !optional
        {
            return Err(err);
        }
        let entity_ref = match catalog.add_location(&catalog_info_url, true) {
            Ok(answer) => main_entity_ref(&answer["entities"]),
            Err(_) if optional => None,
            Err(err) => return Err(err),
        };
        Ok(RegisterOutput {
            entity_ref,
            catalog_info_url,
        })
    }
}

/// The first non-generated `Component`, else the first non-generated entity, else the
/// first entity.
fn main_entity_ref(entities: &Value) -> Option<String> {
    let entities = entities.as_array()?;
    let generated = |e: &&Value| {
        e["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("generated-"))
    };
    let entity = entities
        .iter()
        .find(|e| !generated(e) && e["kind"] == "Component")
        .or_else(|| entities.iter().find(|e| !generated(e)))
        .or_else(|| entities.first())?;
    EntityName::of_entity(entity).map(|name| name.to_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_entity_is_the_first_real_component() {
        let entities = json!([
            { "kind": "Location", "metadata": { "name": "generated-abc" } },
            { "kind": "API", "metadata": { "name": "svc-api", "namespace": "Prod" } },
            { "kind": "Component", "metadata": { "name": "Svc" } }
        ]);
        assert_eq!(
            main_entity_ref(&entities).as_deref(),
            Some("component:default/svc")
        );
        let no_component = json!([
            { "kind": "Location", "metadata": { "name": "generated-abc" } },
            { "kind": "API", "metadata": { "name": "svc-api", "namespace": "Prod" } }
        ]);
        assert_eq!(
            main_entity_ref(&no_component).as_deref(),
            Some("api:prod/svc-api")
        );
        let generated_only =
            json!([{ "kind": "Location", "metadata": { "name": "generated-abc" } }]);
        assert_eq!(
            main_entity_ref(&generated_only).as_deref(),
            Some("location:default/generated-abc")
        );
        assert_eq!(main_entity_ref(&json!([])), None);
    }
}
