//! A loaded plugin: its digest, its actions' metadata, and a pre-instantiated component
//! ready for a fresh store per step (linked at load, or at the first step when the
//! plugin was described from the compile cache).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
use wasmtime::{Store, UpdateDeadline};

use crate::bindings::{ActionPre, wit};
use crate::cache::{self, Description};
use crate::capability::{Capabilities, EffectiveGrants, Grants};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::runtime::RuntimeInner;
use crate::step::{self, StepFailure, StepFailureKind, StepHost, StepRequest, StepState};
use crate::{COMPATIBLE_WIT_VERSIONS, WIT_VERSION};

/// How long `describe` may take at load time.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The interface every plugin exports, without its version.
const PLUGIN_EXPORT: &str = "scaffolder:action/plugin";

/// What the operator configures for one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PluginConfig {
    pub grants: Grants,
    pub limits: Limits,
    /// What `host.get-config` returns, by key. Never secret: it is not redacted.
    pub config: BTreeMap<String, String>,
}

/// Everything a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    pub actions: Vec<ActionInfo>,
}

/// One action's metadata, with schemas parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionInfo {
    pub id: String,
    pub description: String,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub supports_dry_run: bool,
    pub examples: Vec<Example>,
    pub capabilities: Capabilities,
    pub attributes: Attributes,
}

/// A usage example (Backstage's `{description, example}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub description: String,
    pub example: String,
}

/// Scheduling and audit hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

/// A plugin ready to run steps. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    runtime: Arc<RuntimeInner>,
    name: String,
    digest: String,
    wit_version: String,
    cache_hit: bool,
    info: PluginInfo,
    config: PluginConfig,
    /// `config.config`, shared with every step.
    settings: Arc<BTreeMap<String, String>>,
    /// Request ∩ grant of each action, computed once at load.
    grants: HashMap<String, Arc<EffectiveGrants>>,
    code: PluginCode,
}

/// A plugin's compiled code: linked at load, or, for a plugin described from the compile
/// cache, mapped from `path` and linked when a step first needs it.
enum PluginCode {
    Linked(ActionPre<StepState>),
    Cached {
        path: PathBuf,
        linked: tokio::sync::OnceCell<ActionPre<StepState>>,
    },
}

/// What a step of one action needs from its plugin, resolved before its sandbox is built.
pub(crate) struct StepPlan<'a> {
    pub engine: &'a wasmtime::Engine,
    /// The linked component, ready to instantiate.
    pub code: &'a ActionPre<StepState>,
    /// Request ∩ grant of the action.
    pub grants: Arc<EffectiveGrants>,
    pub limits: Limits,
    /// What `host.get-config` answers.
    pub settings: Arc<BTreeMap<String, String>>,
    /// The empty read-only directory preopened as the guest's `/`.
    pub sentinel_dir: &'a Path,
}

impl Plugin {
    pub(crate) async fn prepare(
        runtime: Arc<RuntimeInner>,
        name: &str,
        digest: String,
        component: Component,
        cache_hit: bool,
        config: PluginConfig,
    ) -> Result<Self> {
        let wit_version = exported_wit_version(&runtime, name, &component)?;
        let pre = link(&runtime, name, &component)?;
        let info = describe(&runtime, name, &pre).await?;
        let description = Description { wit_version, info };
        Self::new(
            runtime,
            name,
            digest,
            description,
            cache_hit,
            config,
            PluginCode::Linked(pre),
        )
    }

    /// A plugin that loaded before with this host: its metadata from the cache, its code
    /// mapped from `cached_code` when a step first needs it.
    pub(crate) fn described(
        runtime: Arc<RuntimeInner>,
        name: &str,
        digest: String,
        description: Description,
        cached_code: PathBuf,
        config: PluginConfig,
    ) -> Result<Self> {
        Self::new(
            runtime,
            name,
            digest,
            description,
            true,
            config,
            PluginCode::Cached {
                path: cached_code,
                linked: tokio::sync::OnceCell::new(),
            },
        )
    }

    fn new(
        runtime: Arc<RuntimeInner>,
        name: &str,
        digest: String,
        description: Description,
        cache_hit: bool,
        config: PluginConfig,
        code: PluginCode,
    ) -> Result<Self> {
        let grants = validate(name, &description.info, &config)?;
        Ok(Self {
            inner: Arc::new(PluginInner {
                runtime,
                name: name.into(),
                digest,
                wit_version: description.wit_version,
                cache_hit,
                grants,
                info: description.info,
                settings: Arc::new(config.config.clone()),
                config,
                code,
            }),
        })
    }

    /// What the compile cache keeps about this plugin.
    pub(crate) fn description(&self) -> Description {
        Description {
            wit_version: self.inner.wit_version.clone(),
            info: self.inner.info.clone(),
        }
    }

    /// The name it was loaded under (its file name, or the configured name).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `sha256:<hex>` of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The `scaffolder:action` version the component targets.
    pub fn wit_version(&self) -> &str {
        &self.inner.wit_version
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn cache_hit(&self) -> bool {
        self.inner.cache_hit
    }

    /// The plugin's actions.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    /// The action with this id.
    pub fn action(&self, id: &str) -> Option<&ActionInfo> {
        self.inner.info.actions.iter().find(|a| a.id == id)
    }

    /// The operator's grants and limits for this plugin.
    pub fn config(&self) -> &PluginConfig {
        &self.inner.config
    }

    /// Runs one step of one of this plugin's actions in a fresh sandbox.
    #[tracing::instrument(
        name = "scaffolder.action",
        skip_all,
        fields(plugin = %self.inner.name, action = %request.action_id, step_id = %request.context.step_id)
    )]
    pub async fn execute(
        &self,
        request: StepRequest,
        host: Arc<dyn StepHost>,
    ) -> Result<serde_json::Value, StepFailure> {
        let plan = self.plan(&request.action_id).await?;
        step::execute(plan, request, host).await
    }

    /// What a step of `action_id` needs; links the code from the compile cache on the
    /// first step when the plugin was described from there.
    async fn plan(&self, action_id: &str) -> Result<StepPlan<'_>, StepFailure> {
        let inner = &self.inner;
        let grants = inner.grants.get(action_id).cloned().ok_or_else(|| {
            StepFailure::new(
                StepFailureKind::Host,
                format!("plugin {} has no action '{action_id}'", inner.name),
            )
        })?;
        Ok(StepPlan {
            engine: &inner.runtime.engine,
            code: self.code().await?,
            grants,
            limits: inner.config.limits.clone(),
            settings: inner.settings.clone(),
            sentinel_dir: inner.runtime.sentinel.path(),
        })
    }

    /// The linked component; links it from the compile cache on the first call when the
    /// plugin was described from there.
    async fn code(&self) -> Result<&ActionPre<StepState>, StepFailure> {
        let inner = &self.inner;
        let (path, linked) = match &inner.code {
            PluginCode::Linked(pre) => return Ok(pre),
            PluginCode::Cached { path, linked } => (path, linked),
        };
        linked
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let linked = match cache::deserialize(&inner.runtime.engine, path) {
                    Ok(component) => {
                        link(&inner.runtime, &inner.name, &component).map_err(|e| e.to_string())
                    }
                    Err(err) => Err(format!("{err:#}")),
                };
                match linked {
                    Ok(pre) => {
                        tracing::debug!(plugin = %inner.name, elapsed = ?started.elapsed(), "plugin code mapped from the compile cache");
                        Ok(pre)
                    }
                    Err(err) => Err(StepFailure::new(
                        StepFailureKind::Host,
                        format!(
                            "the compiled code of {} at {} could not be loaded ({err}); remove the file and restart the server to compile the plugin again",
                            inner.name,
                            path.display()
                        ),
                    )),
                }
            })
            .await
    }
}

/// Finds the exported `scaffolder:action/plugin@X` and checks X.
fn exported_wit_version(
    runtime: &RuntimeInner,
    name: &str,
    component: &Component,
) -> Result<String> {
    let ty = component.component_type();
    for (export, item) in ty.exports(&runtime.engine) {
        let Some((interface, version)) = export.split_once('@') else {
            continue;
        };
        if interface != PLUGIN_EXPORT || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            continue;
        }
        if !COMPATIBLE_WIT_VERSIONS.contains(&version) {
            return Err(Error::UnsupportedWitVersion {
                name: name.into(),
                found: version.into(),
                supported: WIT_VERSION,
            });
        }
        return Ok(version.into());
    }
    Err(Error::MissingExport {
        name: name.into(),
        supported: WIT_VERSION,
    })
}

/// Links the component against the host's interfaces.
fn link(runtime: &RuntimeInner, name: &str, component: &Component) -> Result<ActionPre<StepState>> {
    let instance_pre = runtime
        .linker()?
        .instantiate_pre(component)
        .map_err(|err| unsupported_import(name, &err))?;
    ActionPre::new(instance_pre).map_err(|err| Error::Instantiate {
        name: name.into(),
        message: format!("{err:#}"),
    })
}

fn unsupported_import(name: &str, err: &wasmtime::Error) -> Error {
    let message = format!("{err:#}");
    // wasmtime says "component imports instance `x`, but a matching implementation was
    // not found in the linker"; pull out the import's name for the user.
    match message.split('`').nth(1) {
        Some(import) if message.contains("not found") || message.contains("matching") => {
            Error::UnsupportedImport {
                name: name.into(),
                import: import.into(),
            }
        }
        _ => Error::Instantiate {
            name: name.into(),
            message,
        },
    }
}

async fn describe(
    runtime: &RuntimeInner,
    name: &str,
    pre: &ActionPre<StepState>,
) -> Result<PluginInfo> {
    let failed = |message: String| Error::Describe {
        name: name.into(),
        message,
    };
    let state = StepState::describing().map_err(|failure| failed(failure.message))?;
    let mut store = Store::new(&runtime.engine, state);
    store.limiter(|state| state.limiter());
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    let call = async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance
            .scaffolder_action_plugin()
            .call_describe(&mut store)
            .await
    };
    let info = tokio::time::timeout(DESCRIBE_TIMEOUT, call)
        .await
        .map_err(|_| {
            failed(format!(
                "describe did not return within {}s",
                DESCRIBE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|err| failed(format!("{err:#}")))?;
    let actions = info
        .actions
        .into_iter()
        .map(|a| convert_action(name, a))
        .collect::<Result<_>>()?;
    Ok(PluginInfo { actions })
}

fn convert_action(name: &str, a: wit::ActionInfo) -> Result<ActionInfo> {
    let schema = |what: &str, json: &str| -> Result<serde_json::Value> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|err| Error::InvalidMetadata {
                name: name.into(),
                message: format!("the {what} schema of '{}' is not JSON: {err}", a.id),
            })?;
        if !value.is_object() {
            return Err(Error::InvalidMetadata {
                name: name.into(),
                message: format!("the {what} schema of '{}' is not a JSON object", a.id),
            });
        }
        Ok(value)
    };
    Ok(ActionInfo {
        input_schema: schema("input", &a.input_schema)?,
        output_schema: a
            .output_schema
            .as_deref()
            .map(|s| schema("output", s))
            .transpose()?,
        id: a.id.clone(),
        description: a.description,
        supports_dry_run: a.supports_dry_run,
        examples: a
            .examples
            .into_iter()
            .map(|e| Example {
                description: e.description,
                example: e.example,
            })
            .collect(),
        capabilities: Capabilities {
            outbound_http: a.capabilities.outbound_http,
            secrets: a.capabilities.secrets,
            tcp: a.capabilities.tcp,
            template_directory: a.capabilities.template_directory,
        },
        attributes: Attributes {
            read_only: a.attributes.read_only,
            destructive: a.attributes.destructive,
            idempotent: a.attributes.idempotent,
        },
    })
}

/// Checks ids and patterns so that a bad plugin fails at load time, not mid-task, and
/// returns each action's effective grants.
fn validate(
    name: &str,
    info: &PluginInfo,
    config: &PluginConfig,
) -> Result<HashMap<String, Arc<EffectiveGrants>>> {
    let invalid = |message: String| Error::InvalidMetadata {
        name: name.into(),
        message,
    };
    if info.actions.is_empty() {
        return Err(invalid("it declares no actions".into()));
    }
    let mut grants = HashMap::new();
    for action in &info.actions {
        let id = &action.id;
        let well_formed = id.split(':').count() >= 2
            && id.split(':').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            });
        if !well_formed {
            return Err(invalid(format!(
                "action id '{id}' is not of the form namespace:verb (letters, digits, '-', '_', '.')"
            )));
        }
        let effective =
            EffectiveGrants::new(&action.capabilities, &config.grants).map_err(|err| {
                invalid(format!(
                    "action '{id}' requests an invalid capability: {err}"
                ))
            })?;
        if grants.insert(id.clone(), Arc::new(effective)).is_some() {
            return Err(invalid(format!("action id '{id}' is declared twice")));
        }
    }
    Ok(grants)
}
