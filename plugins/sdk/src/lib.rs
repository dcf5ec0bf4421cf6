//! The guest side of the `scaffolder:action@0.1.1` contract.
//!
//! A plugin is a `cdylib` crate compiled for `wasm32-wasip2`. Each action is a type that
//! implements [`Action`] with serde-typed input and output; [`plugin!`] exports them all:
//!
//! ```ignore
//! use scaffolder_plugin_sdk::{plugin, Action, ActionInfo, Context, Result};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { name: String }
//!
//! #[derive(Serialize)]
//! struct Output { greeting: String }
//!
//! struct Greet;
//!
//! impl Action for Greet {
//!     const ID: &'static str = "example:greet";
//!     type Input = Input;
//!     type Output = Output;
//!
//!     fn info() -> ActionInfo {
//!         ActionInfo::new("Says hello.")
//!             .input_schema(serde_json::json!({
//!                 "type": "object", "required": ["name"],
//!                 "properties": { "name": { "type": "string" } }
//!             }))
//!             .supports_dry_run()
//!     }
//!
//!     fn run(ctx: &Context, input: Input) -> Result<Output> {
//!         ctx.info(format!("greeting {}", input.name));
//!         Ok(Output { greeting: format!("Hello, {}!", input.name) })
//!     }
//! }
//!
//! plugin!(Greet);
//! ```
//!
//! The step's workspace is the current directory, so `std::fs` with relative paths works
//! inside it; everything else on the host is out of reach unless granted.

pub mod files;
pub mod http;
pub mod integrations;
mod io_errors;
pub mod paths;
pub mod url;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/action@0.1.1",
        world: "action",
        pub_export_macro: true,
        export_macro_name: "export_plugin_bindings",
        default_bindings_module: "scaffolder_plugin_sdk::bindings",
    });
}

use bindings::scaffolder::action::host;
use bindings::scaffolder::action::types as wit;

pub use io_errors::io_error_message;
use io_errors::without_os_error_numbers;
pub use serde_json::{Value, json};

/// What an action returns.
pub type Result<T, E = ActionError> = std::result::Result<T, E>;

/// One action of a plugin.
pub trait Action {
    /// Backstage-style id, e.g. `fetch:template`.
    const ID: &'static str;
    /// The rendered input, deserialised from the step's `input` object.
    type Input: DeserializeOwned;
    /// The output object; its fields become `steps.<id>.output.<field>`.
    type Output: Serialize;

    /// Describes the action: schemas, dry-run support, requested capabilities.
    fn info() -> ActionInfo;

    /// Runs the action.
    fn run(ctx: &Context, input: Self::Input) -> Result<Self::Output>;
}

/// Why an action did not complete. The message is shown to the user as the step's failure.
/// The host reports each as a failure kind: `invalidInput`, `failed`, `denied` (the
/// spelling of `scaffolder plugin test` case files and messages; the WIT's variant cases
/// are `invalid-input`, `failed`, `denied`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// The input does not fit the action.
    InvalidInput(String),
    /// The action tried and failed.
    Failed(String),
    /// Something the action needs was not granted.
    Denied(String),
}

impl ActionError {
    /// A failure with this message.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    /// An input problem with this message.
    pub fn invalid_input(message: impl std::fmt::Display) -> Self {
        Self::InvalidInput(message.to_string())
    }
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidInput(m) | Self::Failed(m) | Self::Denied(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ActionError {}

/// `?` on an I/O error: a failure with its message in words ([`io_error_message`]).
impl From<std::io::Error> for ActionError {
    fn from(err: std::io::Error) -> Self {
        Self::Failed(io_error_message(&err))
    }
}

/// Metadata of one action, built with chained calls.
#[derive(Debug, Clone)]
pub struct ActionInfo {
    info: wit::ActionInfo,
}

impl ActionInfo {
    /// An action that takes any object, produces no declared output, does not support dry
    /// runs and requests nothing but its workspace.
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            info: wit::ActionInfo {
                id: String::new(),
                description: description.into(),
                input_schema: r#"{"type":"object"}"#.to_owned(),
                output_schema: None,
                supports_dry_run: false,
                examples: Vec::new(),
                capabilities: wit::Capabilities {
                    outbound_http: Vec::new(),
                    secrets: Vec::new(),
                    tcp: Vec::new(),
                    template_directory: false,
                },
                attributes: wit::Attributes {
                    read_only: false,
                    destructive: true,
                    idempotent: false,
                },
            },
        }
    }

    /// JSON Schema (draft-07) for the input object.
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.info.input_schema = schema.to_string();
        self
    }

    /// JSON Schema for the output object.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.info.output_schema = Some(schema.to_string());
        self
    }

    /// The action may run in dry runs, where it must check [`Context::is_dry_run`].
    pub fn supports_dry_run(mut self) -> Self {
        self.info.supports_dry_run = true;
        self
    }

    /// Adds a usage example: a YAML snippet of template steps.
    pub fn example(mut self, description: impl Into<String>, yaml: impl Into<String>) -> Self {
        self.info.examples.push(wit::Example {
            description: description.into(),
            example: yaml.into(),
        });
        self
    }

    /// Requests outbound HTTP to an origin pattern such as `https://api.github.com`.
    pub fn requests_http(mut self, origin: impl Into<String>) -> Self {
        self.info.capabilities.outbound_http.push(origin.into());
        self
    }

    /// Requests read access to the secret `name`.
    pub fn requests_secret(mut self, name: impl Into<String>) -> Self {
        self.info.capabilities.secrets.push(name.into());
        self
    }

    /// Requests TCP connections to a peer pattern such as `*:5432`.
    pub fn requests_tcp(mut self, peer: impl Into<String>) -> Self {
        self.info.capabilities.tcp.push(peer.into());
        self
    }

    /// Requests the template's directory, read-only, at [`Context::template_directory`].
    pub fn requests_template_directory(mut self) -> Self {
        self.info.capabilities.template_directory = true;
        self
    }

    /// Declares the action read-only, non-destructive and idempotent.
    pub fn read_only(mut self) -> Self {
        self.info.attributes = wit::Attributes {
            read_only: true,
            destructive: false,
            idempotent: true,
        };
        self
    }

    /// Declares whether running twice has the effect of running once.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.info.attributes.idempotent = idempotent;
        self
    }

    /// Declares whether the action may delete or overwrite existing things.
    pub fn destructive(mut self, destructive: bool) -> Self {
        self.info.attributes.destructive = destructive;
        self
    }
}

/// The step an action runs in, and the host services it may call.
pub struct Context {
    inner: wit::StepContext,
}

impl Context {
    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.inner.task_id
    }

    /// The step id.
    pub fn step_id(&self) -> &str {
        &self.inner.step_id
    }

    /// The step's display name.
    pub fn step_name(&self) -> &str {
        &self.inner.step_name
    }

    /// Whether this is a dry run: change nothing outside the workspace.
    pub fn is_dry_run(&self) -> bool {
        self.inner.dry_run
    }

    /// Entity ref of the user who started the task.
    pub fn user_ref(&self) -> Option<&str> {
        self.inner.user_ref.as_deref()
    }

    /// The user's catalog entity, when known.
    pub fn user_entity(&self) -> Option<Value> {
        parse_json_opt(self.inner.user_entity.as_deref())
    }

    /// Entity ref of the template, e.g. `template:default/react-app`.
    pub fn template_ref(&self) -> Option<&str> {
        self.inner.template.as_ref().map(|t| t.entity_ref.as_str())
    }

    /// Where the template was loaded from.
    pub fn template_base_url(&self) -> Option<&str> {
        self.inner
            .template
            .as_ref()
            .and_then(|t| t.base_url.as_deref())
    }

    /// The template entity's metadata.
    pub fn template_metadata(&self) -> Option<Value> {
        parse_json_opt(
            self.inner
                .template
                .as_ref()
                .and_then(|t| t.metadata.as_deref()),
        )
    }

    /// Absolute path of the task workspace (also the current directory).
    pub fn workspace(&self) -> &str {
        &self.inner.workspace
    }

    /// Absolute path of the template's directory, when the action requested it.
    pub fn template_directory(&self) -> Option<&str> {
        self.inner.template_directory.as_deref()
    }

    /// Logs at info level into the step's event log.
    pub fn info(&self, message: impl AsRef<str>) {
        host::log(wit::Level::Info, message.as_ref());
    }

    /// Logs at warn level.
    pub fn warn(&self, message: impl AsRef<str>) {
        host::log(wit::Level::Warn, message.as_ref());
    }

    /// Logs at error level.
    pub fn error(&self, message: impl AsRef<str>) {
        host::log(wit::Level::Error, message.as_ref());
    }

    /// Logs at debug level.
    pub fn debug(&self, message: impl AsRef<str>) {
        host::log(wit::Level::Debug, message.as_ref());
    }

    /// A secret the action was granted, or none.
    pub fn secret(&self, name: &str) -> Option<String> {
        host::get_secret(name)
    }

    /// A secret the action cannot work without.
    pub fn required_secret(&self, name: &str) -> Result<String> {
        self.secret(name).ok_or_else(|| {
            ActionError::Denied(format!(
                "secret '{name}' is not available: add it to the task or grant it to this plugin"
            ))
        })
    }

    /// Adds a task-scoped secret for later steps; it is redacted everywhere from now on.
    pub fn add_secret(&self, name: &str, value: &str) {
        host::add_secret(name, value);
    }

    /// Whether the user cancelled the task.
    pub fn is_cancelled(&self) -> bool {
        host::is_cancelled()
    }

    /// The operator's configuration value under `key` (see `host.get-config` in the WIT
    /// for the keys every plugin gets), or none when it is not set.
    pub fn config(&self, key: &str) -> Option<String> {
        host::get_config(key)
    }

    /// Runs `work` once per task, like Backstage's `ctx.checkpoint`: when an earlier run of
    /// this step already completed the work guarded by `key`, returns its stored value
    /// without running `work` again.
    pub fn checkpoint<T, F>(&self, key: &str, work: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Result<T>,
    {
        if let Some(wit::Checkpoint::Success(json)) = host::checkpoint_get(key) {
            return serde_json::from_str(&json).map_err(|err| {
                ActionError::failed(format!(
                    "checkpoint '{key}' holds an unreadable value: {err}"
                ))
            });
        }
        match work() {
            Ok(value) => {
                let json = serde_json::to_string(&value).map_err(ActionError::failed)?;
                host::checkpoint_set(key, &wit::Checkpoint::Success(json));
                Ok(value)
            }
            Err(err) => {
                host::checkpoint_set(key, &wit::Checkpoint::Failed(err.to_string()));
                Err(err)
            }
        }
    }
}

fn parse_json_opt(json: Option<&str>) -> Option<Value> {
    json.and_then(|j| serde_json::from_str(j).ok())
}

/// One exported action, type-erased for dispatch. Used by [`plugin!`].
#[doc(hidden)]
pub struct Entry {
    pub id: &'static str,
    pub info: fn() -> ActionInfo,
    pub run: fn(&Context, &str) -> Result<String>,
}

#[doc(hidden)]
pub fn entry<A: Action>() -> Entry {
    Entry {
        id: A::ID,
        info: A::info,
        run: run_typed::<A>,
    }
}

fn run_typed<A: Action>(ctx: &Context, input: &str) -> Result<String> {
    let input: A::Input = serde_json::from_str(input)
        .map_err(|err| ActionError::invalid_input(format!("invalid input for {}: {err}", A::ID)))?;
    let output = A::run(ctx, input)?;
    let output = serde_json::to_value(output).map_err(ActionError::failed)?;
    // Steps always have an output object; actions without output return `()` / null.
    let output = if output.is_null() { json!({}) } else { output };
    Ok(output.to_string())
}

#[doc(hidden)]
pub fn describe(entries: &[Entry]) -> wit::PluginInfo {
    wit::PluginInfo {
        actions: entries
            .iter()
            .map(|entry| {
                let mut info = (entry.info)().info;
                info.id = entry.id.to_owned();
                info
            })
            .collect(),
    }
}

#[doc(hidden)]
pub fn execute(
    entries: &[Entry],
    action_id: &str,
    input: &str,
    context: wit::StepContext,
) -> std::result::Result<String, wit::ActionError> {
    let Some(entry) = entries.iter().find(|e| e.id == action_id) else {
        return Err(wit::ActionError::InvalidInput(format!(
            "this plugin has no action '{action_id}'"
        )));
    };
    // Relative paths resolve inside the workspace. (wasi-libc starts in `/`, whatever
    // the host reports as the initial directory.)
    let _ = std::env::set_current_dir(&context.workspace);
    let ctx = Context { inner: context };
    // WASI's error numbers mean nothing where the message is read (`io_errors`).
    (entry.run)(&ctx, input).map_err(|err| match err {
        ActionError::InvalidInput(m) => {
            wit::ActionError::InvalidInput(without_os_error_numbers(&m))
        }
        ActionError::Failed(m) => wit::ActionError::Failed(without_os_error_numbers(&m)),
        ActionError::Denied(m) => wit::ActionError::Denied(without_os_error_numbers(&m)),
    })
}

/// Exports the listed [`Action`] types as this component's plugin.
#[macro_export]
macro_rules! plugin {
    ($($action:ty),+ $(,)?) => {
        struct __ScaffolderPlugin;

        impl $crate::bindings::exports::scaffolder::action::plugin::Guest for __ScaffolderPlugin {
            fn describe() -> $crate::bindings::scaffolder::action::types::PluginInfo {
                $crate::describe(&[$($crate::entry::<$action>()),+])
            }

            fn execute(
                action_id: ::std::string::String,
                input: ::std::string::String,
                context: $crate::bindings::scaffolder::action::types::StepContext,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::scaffolder::action::types::ActionError,
            > {
                $crate::execute(&[$($crate::entry::<$action>()),+], &action_id, &input, context)
            }
        }

        // Exported only in the component: a native build (unit tests of a plugin crate,
        // `cargo build` of the workspace) has no component exports, and their names are
        // not valid native symbol names.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_plugin_bindings!(__ScaffolderPlugin with_types_in $crate::bindings);

        /// The plugin's metadata, for native unit tests of the plugin crate.
        #[cfg(not(target_arch = "wasm32"))]
        pub fn plugin_info() -> $crate::bindings::scaffolder::action::types::PluginInfo {
            <__ScaffolderPlugin as $crate::bindings::exports::scaffolder::action::plugin::Guest>::describe()
        }
    };
}
