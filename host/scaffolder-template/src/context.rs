//! The variables a template sees (spec §3.4), built in one place so that the rule
//! "secrets only in step `input` and `each`" holds everywhere.

use serde_json::{Map, Value as Json, json};

/// What the workflow knows at a step. Build the JSON with [`Self::with_secrets`] for step
/// `input` and `each`, and with [`Self::without_secrets`] for `if` and `spec.output`.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    /// The submitted values.
    pub parameters: Json,
    /// `steps.<id>.output` of the steps run so far.
    pub steps: Map<String, Json>,
    pub user_ref: Option<String>,
    pub user_entity: Option<Json>,
    pub task_id: String,
    /// `scaffolder.defaultEnvironment.parameters`.
    pub environment_parameters: Map<String, Json>,
    /// `scaffolder.defaultEnvironment.secrets` (empty in dry runs).
    pub environment_secrets: Map<String, Json>,
    /// Task secrets.
    pub secrets: Map<String, Json>,
    /// The current `each` item: key (a string, also for arrays) and value.
    pub each: Option<(String, Json)>,
}

impl TemplateContext {
    /// Records a step's output object.
    pub fn set_output(&mut self, step_id: &str, output: Json) {
        self.steps
            .insert(step_id.to_owned(), json!({ "output": output }));
    }

    /// The context for step `input` and `each`: everything, secrets included.
    pub fn with_secrets(&self) -> Json {
        let mut ctx = self.without_secrets();
        ctx["secrets"] = Json::Object(self.secrets.clone());
        ctx["environment"]["secrets"] = Json::Object(self.environment_secrets.clone());
        ctx
    }

    /// The context for `if` and `spec.output`: no task secrets, environment secrets empty.
    pub fn without_secrets(&self) -> Json {
        let mut user = Map::new();
        if let Some(r) = &self.user_ref {
            user.insert("ref".into(), json!(r));
        }
        if let Some(e) = &self.user_entity {
            user.insert("entity".into(), e.clone());
        }
        let mut ctx = json!({
            "parameters": self.parameters,
            "steps": self.steps,
            "user": user,
            "context": { "task": { "id": self.task_id } },
            // Backstage's base context has `environment.secrets: {}`.
            "environment": { "parameters": self.environment_parameters, "secrets": {} },
        });
        if let Some((key, value)) = &self.each {
            ctx["each"] = json!({ "key": key, "value": value });
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Renderer, RendererOptions};

    fn context() -> TemplateContext {
        let mut c = TemplateContext {
            parameters: json!({ "name": "svc" }),
            task_id: "t-1".into(),
            user_ref: Some("user:default/jane".into()),
            ..TemplateContext::default()
        };
        c.secrets.insert("token".into(), json!("s3cr3t"));
        c.environment_secrets
            .insert("key".into(), json!("env-secret"));
        c.environment_parameters
            .insert("region".into(), json!("eu"));
        c.set_output("fetch", json!({ "n": 1 }));
        c.each = Some(("0".into(), json!("a")));
        c
    }

    fn render(template: &str, ctx: &Json) -> Option<Json> {
        Renderer::new(RendererOptions::default()).render_value(
            &json!(template),
            ctx,
            &mut Vec::new(),
        )
    }

    #[test]
    fn secrets_are_visible_in_input_and_each() {
        let ctx = context().with_secrets();
        assert_eq!(render("${{ secrets.token }}", &ctx), Some(json!("s3cr3t")));
        assert_eq!(
            render("${{ environment.secrets.key }}", &ctx),
            Some(json!("env-secret"))
        );
    }

    #[test]
    fn secrets_are_invisible_in_if_and_output() {
        let ctx = context().without_secrets();
        assert_eq!(render("${{ secrets.token }}", &ctx), None);
        assert_eq!(render("${{ environment.secrets.key }}", &ctx), None);
        assert_eq!(
            render("${{ environment.parameters.region }}", &ctx),
            Some(json!("eu"))
        );
    }

    #[test]
    fn everything_else_is_in_both() {
        for ctx in [context().with_secrets(), context().without_secrets()] {
            assert_eq!(render("${{ parameters.name }}", &ctx), Some(json!("svc")));
            assert_eq!(render("${{ steps.fetch.output.n }}", &ctx), Some(json!(1)));
            assert_eq!(
                render("${{ user.ref }}", &ctx),
                Some(json!("user:default/jane"))
            );
            assert_eq!(render("${{ context.task.id }}", &ctx), Some(json!("t-1")));
            assert_eq!(render("${{ each.key }}", &ctx), Some(json!("0")));
        }
    }
}
