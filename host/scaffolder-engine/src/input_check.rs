//! The check an action's input passes before the action runs, as Backstage's workflow
//! runner makes it: the rendered input against the action's input schema. The runner
//! calls it for each step (each iteration of an `each`), and `scaffolder plugin test`
//! calls it before running an action on its own, so an input a template would refuse is
//! refused there too, with the same words.

use scaffolder_template::validate_input;
use serde_json::Value as Json;

use crate::workflow::describe_errors;

/// Checks `input` against an action's input `schema`. The error is Backstage's message,
/// `Invalid input passed to action <action>, <each problem>`, where `action` is what the
/// message names (the runner adds an `each` item's key: `fs:rename[0]`).
pub fn check_step_input(action: &str, schema: &Json, input: &Json) -> Result<(), String> {
    validate_input(schema, input).map_err(|errors| {
        format!(
            "Invalid input passed to action {action}, {}",
            describe_errors(&errors)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_enum_violation_is_named_with_the_action() {
        let schema = json!({
            "type": "object",
            "properties": { "mode": { "type": "string", "enum": ["a", "b"] } }
        });
        check_step_input("x:y", &schema, &json!({ "mode": "a" })).unwrap();
        let message = check_step_input("x:y", &schema, &json!({ "mode": "c" })).unwrap_err();
        assert!(
            message.starts_with("Invalid input passed to action x:y, instance.mode"),
            "{message}"
        );
    }
}
