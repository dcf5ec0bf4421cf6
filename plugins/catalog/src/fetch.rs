//! `catalog:fetch`: entities from the catalog by reference.

use scaffolder_plugin_sdk::{Action, ActionError, ActionInfo, Context, Result, Value, json};
use serde::{Deserialize, Serialize};

use crate::client::{CatalogClient, TOKEN_SECRET};
use crate::entity_ref::{self, EntityName};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchInput {
    entity_ref: Option<String>,
    entity_refs: Option<Vec<String>>,
    #[serde(default)]
    optional: bool,
    default_kind: Option<String>,
    default_namespace: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct FetchOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entities: Option<Vec<Value>>,
}

/// Returns entity or entities from the catalog by entity reference(s).
pub struct Fetch;

impl Action for Fetch {
    const ID: &'static str = "catalog:fetch";
    type Input = FetchInput;
    type Output = FetchOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Returns entity or entities from the catalog by entity reference(s)")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "entityRef": { "type": "string", "description": "Entity reference of the entity to get" },
                    "entityRefs": { "type": "array", "items": { "type": "string" }, "description": "Entity references of the entities to get" },
                    "optional": { "type": "boolean", "description": "Allow the entity or entities to optionally exist. Default: false" },
                    "defaultKind": { "type": "string", "description": "The default kind" },
                    "defaultNamespace": { "type": "string", "description": "The default namespace" }
                },
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .output_schema(json!({
                "type": "object",
                "properties": {
                    "entity": { "description": "Object containing same values used in the Entity schema. Only when used with `entityRef` parameter." },
                    "entities": { "type": "array" }
                },
                "additionalProperties": false,
                "$schema": "http://json-schema.org/draft-07/schema#"
            }))
            .supports_dry_run()
            .read_only()
            .requests_http("https://*:*")
            .requests_http("http://*:*")
            .requests_secret(TOKEN_SECRET)
            .example(
                "Fetch entity by reference",
                "steps:\n  - action: catalog:fetch\n    id: fetch\n    name: Fetch catalog entity\n    input:\n      entityRef: component:default/name\n",
            )
            .example(
                "Fetch multiple entities by reference",
                "steps:\n  - action: catalog:fetch\n    id: fetchMultiple\n    name: Fetch catalog entities\n    input:\n      entityRefs:\n        - component:default/name\n",
            )
    }

    fn run(ctx: &Context, input: FetchInput) -> Result<FetchOutput> {
        // Backstage tests truthiness: an empty `entityRef` counts as none.
        let entity_ref = input.entity_ref.as_deref().filter(|r| !r.is_empty());
        if entity_ref.is_none() && input.entity_refs.is_none() {
            if input.optional {
                return Ok(FetchOutput::default());
            }
            return Err(ActionError::failed(
                "Missing entity reference or references",
            ));
        }
        let parse = |reference: &str| -> Result<EntityName> {
            entity_ref::parse(
                reference,
                input.default_kind.as_deref(),
                input.default_namespace.as_deref(),
            )
            .map_err(ActionError::failed)
        };
        // Backstage parses a ref just before asking the catalog for it; with no catalog
        // configured here, a malformed ref still reports its own error first.
        let name = entity_ref.map(parse).transpose()?;
        let catalog = CatalogClient::new(ctx)?;
        let mut output = FetchOutput::default();
        if let (Some(reference), Some(name)) = (entity_ref, &name) {
            let entity = catalog.entity_by_ref(name)?;
            if entity.is_none() && !input.optional {
                return Err(ActionError::failed(format!("Entity {reference} not found")));
            }
            output.entity = Some(entity.unwrap_or(Value::Null));
        }
        if let Some(references) = &input.entity_refs {
            let refs = references
                .iter()
                .map(|r| parse(r).map(|name| name.to_ref()))
                .collect::<Result<Vec<_>>>()?;
            let items = catalog.entities_by_refs(&refs)?;
            let mut entities = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                if item.is_null() && !input.optional {
                    let reference = references.get(i).map_or("", String::as_str);
                    return Err(ActionError::failed(format!("Entity {reference} not found")));
                }
                entities.push(item);
            }
            output.entities = Some(entities);
        }
        Ok(output)
    }
}
