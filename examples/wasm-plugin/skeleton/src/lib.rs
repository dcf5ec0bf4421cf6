//! ${{ values.description }}
//!
//! Each action is a type implementing `Action`: serde types for its input and output, the
//! metadata the scaffolder shows (`info`), and `run`. `plugin!` at the bottom exports them.

use scaffolder_plugin_sdk::{
    Action, ActionError, ActionInfo, Context, Result, io_error_message, json, plugin,
};
use serde::{Deserialize, Serialize};

/// The input of `${{ values.name }}:greet`, as the template's step gives it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreetInput {
    /// Who to greet.
    pub name: String,
    /// A file in the workspace to write the greeting to.
    #[serde(default)]
    pub file: Option<String>,
}

/// The output of `${{ values.name }}:greet`; later steps read it as
/// `steps['<step id>'].output.greeting`.
#[derive(Debug, Serialize)]
pub struct GreetOutput {
    pub greeting: String,
}

/// Greets someone, and writes the greeting into the workspace when asked.
pub struct Greet;

impl Action for Greet {
    const ID: &'static str = "${{ values.name }}:greet";
    type Input = GreetInput;
    type Output = GreetOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Greets someone, and writes the greeting to a file when asked.")
            .input_schema(json!({
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": { "type": "string", "description": "Who to greet." },
                    "file": { "type": "string", "description": "A file in the workspace to write the greeting to." }
                },
                "additionalProperties": false
            }))
            .output_schema(json!({
                "type": "object",
                "required": ["greeting"],
                "properties": { "greeting": { "type": "string" } }
            }))
            // It only touches the workspace, so a dry run may run it for real.
            .supports_dry_run()
            .idempotent(true)
            .example(
                "Greet the platform team",
                "steps:\n  - id: greet\n    action: ${{ values.name }}:greet\n    input:\n      name: Platform team\n      file: GREETING.txt\n",
            )
    }

    fn run(ctx: &Context, input: GreetInput) -> Result<GreetOutput> {
        let greeting = greeting(&input.name);
        ctx.info(&greeting);
        if let Some(file) = &input.file {
            // The workspace is the current directory; nothing else on the host is reachable.
            // A failure says what it was doing; `io_error_message` words the I/O error.
            std::fs::write(file, format!("{greeting}\n")).map_err(|err| {
                ActionError::failed(format!("cannot write {file}: {}", io_error_message(&err)))
            })?;
            ctx.info(format!("wrote {file}"));
        }
        Ok(GreetOutput { greeting })
    }
}

/// The greeting for `name`. Plain Rust, so `cargo test` checks it natively.
pub fn greeting(name: &str) -> String {
    format!("Hello, {name}!")
}

plugin!(Greet);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        assert_eq!(greeting("World"), "Hello, World!");
    }

    #[test]
    fn declares_its_action() {
        let info = plugin_info();
        assert_eq!(info.actions.len(), 1);
        assert_eq!(info.actions[0].id, "${{ values.name }}:greet");
    }
}
