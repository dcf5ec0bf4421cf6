//! A plugin built against `scaffolder:action@0.1.0`, before `get-config` and `files`
//! existed: the host must keep loading and running it unchanged.

#![allow(unsafe_code, reason = "wit-bindgen generates the unsafe ABI glue")]

wit_bindgen::generate!({
    path: "../../../wit/action@0.1.0",
    world: "action",
});

use exports::scaffolder::action::plugin::Guest;
use scaffolder::action::host;
use scaffolder::action::types::{
    ActionError, ActionInfo, Attributes, Capabilities, Level, PluginInfo, StepContext,
};

struct Legacy;

impl Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            actions: vec![ActionInfo {
                id: "legacy:echo".into(),
                description: "Logs and returns its input.".into(),
                input_schema: r#"{"type":"object"}"#.into(),
                output_schema: None,
                supports_dry_run: true,
                examples: Vec::new(),
                capabilities: Capabilities {
                    outbound_http: Vec::new(),
                    secrets: Vec::new(),
                    tcp: Vec::new(),
                    template_directory: false,
                },
                attributes: Attributes {
                    read_only: true,
                    destructive: false,
                    idempotent: true,
                },
            }],
        }
    }

    fn execute(
        _action_id: String,
        input: String,
        _context: StepContext,
    ) -> Result<String, ActionError> {
        host::log(Level::Info, &format!("echo {input}"));
        Ok(format!(r#"{{"echo":{input}}}"#))
    }
}

export!(Legacy);
