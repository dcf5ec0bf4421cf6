//! A well-behaved plugin: the positive cases of the sandbox suite, the companion that must
//! keep working while a hostile plugin misbehaves, and the no-op the benchmark measures.

use scaffolder_plugin_sdk::{Action, ActionInfo, Context, Result, files, http, json, plugin};
use serde::{Deserialize, Serialize};

/// Does nothing; what the step-overhead benchmark measures.
pub struct Noop;

impl Action for Noop {
    const ID: &'static str = "friendly:noop";
    type Input = serde_json::Value;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Does nothing.")
            .supports_dry_run()
            .read_only()
    }

    fn run(_ctx: &Context, _input: Self::Input) -> Result<()> {
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct WriteFileInput {
    path: String,
    content: String,
}

/// Writes a file into the workspace.
pub struct WriteFile;

impl Action for WriteFile {
    const ID: &'static str = "friendly:write-file";
    type Input = WriteFileInput;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Writes a file into the workspace.")
            .supports_dry_run()
            .input_schema(json!({
                "type": "object",
                "required": ["path", "content"],
                "properties": { "path": { "type": "string" }, "content": { "type": "string" } },
                "additionalProperties": false
            }))
    }

    fn run(ctx: &Context, input: WriteFileInput) -> Result<()> {
        if let Some(parent) = std::path::Path::new(&input.path).parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&input.path, input.content)?;
        ctx.info(format!("wrote {}", input.path));
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct PathInput {
    path: String,
}

#[derive(Serialize)]
pub struct ContentOutput {
    content: String,
}

/// Reads a file from the workspace.
pub struct ReadFile;

impl Action for ReadFile {
    const ID: &'static str = "friendly:read-file";
    type Input = PathInput;
    type Output = ContentOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Reads a file from the workspace.").read_only()
    }

    fn run(_ctx: &Context, input: PathInput) -> Result<ContentOutput> {
        let content = std::fs::read_to_string(&input.path).map_err(|err| {
            scaffolder_plugin_sdk::ActionError::failed(format!("{}: {err}", input.path))
        })?;
        Ok(ContentOutput { content })
    }
}

#[derive(Deserialize)]
pub struct UrlInput {
    url: String,
}

#[derive(Serialize)]
pub struct HttpOutput {
    status: u16,
    body: String,
}

/// Fetches a URL from a granted loopback origin.
pub struct HttpGet;

impl Action for HttpGet {
    const ID: &'static str = "friendly:http-get";
    type Input = UrlInput;
    type Output = HttpOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Fetches a URL.")
            .requests_http("http://127.0.0.1:*")
            .read_only()
    }

    fn run(_ctx: &Context, input: UrlInput) -> Result<HttpOutput> {
        let response = http::get(&input.url)?;
        Ok(HttpOutput {
            status: response.status,
            body: response.text()?.to_owned(),
        })
    }
}

#[derive(Serialize)]
pub struct SecretOutput {
    value: String,
}

/// Reads the granted secret `deploy-token`.
pub struct ReadSecret;

impl Action for ReadSecret {
    const ID: &'static str = "friendly:secret";
    type Input = serde_json::Value;
    type Output = SecretOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Reads a granted secret.").requests_secret("deploy-token")
    }

    fn run(ctx: &Context, _input: Self::Input) -> Result<SecretOutput> {
        Ok(SecretOutput {
            value: ctx.required_secret("deploy-token")?,
        })
    }
}

/// Prints to stdout and stderr, which the host turns into step log lines.
pub struct Stdio;

impl Action for Stdio {
    const ID: &'static str = "friendly:stdio";
    type Input = serde_json::Value;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Prints to stdout and stderr.")
    }

    fn run(_ctx: &Context, _input: Self::Input) -> Result<()> {
        println!("hello from stdout");
        eprintln!("hello from stderr");
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct SleepInput {
    millis: u64,
}

/// Sleeps, checking for cancellation every 10 ms.
pub struct Sleep;

impl Action for Sleep {
    const ID: &'static str = "friendly:sleep";
    type Input = SleepInput;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Sleeps.")
    }

    fn run(_ctx: &Context, input: SleepInput) -> Result<()> {
        std::thread::sleep(std::time::Duration::from_millis(input.millis));
        Ok(())
    }
}

#[derive(Serialize)]
pub struct CheckpointOutput {
    runs: u64,
}

/// Counts, in `runs.txt`, how often the guarded work ran; a checkpoint makes it run once.
pub struct Checkpointed;

impl Action for Checkpointed {
    const ID: &'static str = "friendly:checkpoint";
    type Input = serde_json::Value;
    type Output = CheckpointOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Does its work once per task.")
    }

    fn run(ctx: &Context, _input: Self::Input) -> Result<CheckpointOutput> {
        let runs = ctx.checkpoint("count", || {
            let runs = std::fs::read_to_string("runs.txt")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            std::fs::write("runs.txt", runs.to_string())?;
            Ok(runs)
        })?;
        Ok(CheckpointOutput { runs })
    }
}

#[derive(Deserialize)]
pub struct AddSecretInput {
    name: String,
    value: String,
}

/// Adds a task-scoped secret.
pub struct AddSecret;

impl Action for AddSecret {
    const ID: &'static str = "friendly:add-secret";
    type Input = AddSecretInput;
    type Output = ();

    fn info() -> ActionInfo {
        ActionInfo::new("Adds a task-scoped secret.")
    }

    fn run(ctx: &Context, input: AddSecretInput) -> Result<()> {
        ctx.add_secret(&input.name, &input.value);
        ctx.info(format!("the new secret is {}", input.value));
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct TemplateFileInput {
    path: String,
    #[serde(default)]
    overwrite: bool,
}

/// Reads a file of the template's directory, and optionally tries to overwrite it.
pub struct ReadTemplate;

impl Action for ReadTemplate {
    const ID: &'static str = "friendly:read-template";
    type Input = TemplateFileInput;
    type Output = ContentOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Reads a file of the template.")
            .supports_dry_run()
            .requests_template_directory()
    }

    fn run(ctx: &Context, input: TemplateFileInput) -> Result<ContentOutput> {
        // Without a grant the context names no template directory; try the usual place
        // anyway, so tests see the sandbox refuse it.
        let dir = ctx.template_directory().unwrap_or("/template");
        let path = format!("{dir}/{}", input.path);
        if input.overwrite {
            std::fs::write(&path, "changed")?;
        }
        let content = std::fs::read_to_string(&path)?;
        Ok(ContentOutput { content })
    }
}

#[derive(Deserialize)]
pub struct CountInput {
    file: String,
}

#[derive(Serialize)]
pub struct CountOutput {
    runs: u64,
}

/// Adds one to the number in a workspace file: how often the step really ran.
pub struct Count;

impl Action for Count {
    const ID: &'static str = "friendly:count";
    type Input = CountInput;
    type Output = CountOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Counts its runs in a workspace file.")
            .input_schema(json!({
                "type": "object",
                "required": ["file"],
                "properties": { "file": { "type": "string" } },
                "additionalProperties": false
            }))
            .output_schema(json!({
                "type": "object",
                "properties": { "runs": { "type": "integer" } }
            }))
    }

    fn run(ctx: &Context, input: CountInput) -> Result<CountOutput> {
        let runs = std::fs::read_to_string(&input.file)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        std::fs::write(&input.file, runs.to_string())?;
        ctx.info(format!("run {runs} of {}", input.file));
        Ok(CountOutput { runs })
    }
}

#[derive(Deserialize)]
pub struct ConfigInput {
    key: String,
}

#[derive(Serialize)]
pub struct ConfigOutput {
    value: Option<String>,
}

/// Returns the operator's configuration value under `key`.
pub struct ReadConfig;

impl Action for ReadConfig {
    const ID: &'static str = "friendly:config";
    type Input = ConfigInput;
    type Output = ConfigOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Returns a configuration value.").read_only()
    }

    fn run(ctx: &Context, input: ConfigInput) -> Result<ConfigOutput> {
        Ok(ConfigOutput {
            value: ctx.config(&input.key),
        })
    }
}

#[derive(Deserialize)]
pub struct ChmodInput {
    path: String,
    mode: Option<u32>,
}

#[derive(Serialize)]
pub struct ChmodOutput {
    mode: u32,
}

/// Sets a file's mode when `mode` is given, then returns the mode it has.
pub struct Chmod;

impl Action for Chmod {
    const ID: &'static str = "friendly:chmod";
    type Input = ChmodInput;
    type Output = ChmodOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Sets and reads file modes.").requests_template_directory()
    }

    fn run(_ctx: &Context, input: ChmodInput) -> Result<ChmodOutput> {
        if let Some(mode) = input.mode {
            files::set_mode(&input.path, mode)?;
        }
        Ok(ChmodOutput {
            mode: files::mode(&input.path)?,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoamiOutput {
    task_id: String,
    step_id: String,
    user_ref: Option<String>,
}

/// Returns the run's task, step and user as the host gave them.
pub struct Whoami;

impl Action for Whoami {
    const ID: &'static str = "friendly:whoami";
    type Input = serde_json::Value;
    type Output = WhoamiOutput;

    fn info() -> ActionInfo {
        ActionInfo::new("Returns the task, step and user of the run.").read_only()
    }

    fn run(ctx: &Context, _input: serde_json::Value) -> Result<WhoamiOutput> {
        Ok(WhoamiOutput {
            task_id: ctx.task_id().to_owned(),
            step_id: ctx.step_id().to_owned(),
            user_ref: ctx.user_ref().map(str::to_owned),
        })
    }
}

plugin!(
    Whoami,
    Noop,
    ReadTemplate,
    WriteFile,
    ReadFile,
    HttpGet,
    ReadSecret,
    Stdio,
    Sleep,
    Checkpointed,
    AddSecret,
    Count,
    ReadConfig,
    Chmod
);
