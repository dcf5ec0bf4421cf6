//! `scaffolder serve`: configuration → store, runtime, plugins, engine, API; then serve
//! until SIGTERM or ctrl-c, letting running tasks finish within the grace period.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::http::{HeaderValue, Method};
use axum::serve::ListenerExt;
use scaffolder_api::auth::{AuthConfig, Authenticator, JwksAccess, StaticToken};
use scaffolder_api::{
    ApiState, CatalogTemplates, DirectoryTemplates, TemplateSource, TemplateSources,
};
use scaffolder_builtins::BACKSTAGE_BASE_URL;
use scaffolder_engine::{ActionRegistry, Engine, EngineConfig, Environment};
use scaffolder_runtime::{Plugin, PluginConfig, Runtime, RuntimeConfig};
use scaffolder_store::Store;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::cli::ServeArgs;
use crate::config::{self, BUILTIN_PREFIX, Config, ExternalAccess};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = config::load(&args.configs)?;
    if let Some(port) = args.port {
        config.backend.listen.port = port;
    }
    if let Some(host) = &args.host {
        config.backend.listen.host = host.clone();
    }
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| config.scaffolder.data_directory.clone())
        .unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let working_directory = config
        .backend
        .working_directory
        .clone()
        .unwrap_or_else(|| data_dir.join("workspaces"));
    std::fs::create_dir_all(&working_directory).with_context(|| {
        format!(
            "backend.workingDirectory {} must exist and be writable",
            working_directory.display()
        )
    })?;

    let database_url = config.backend.database.database_url(&data_dir);
    let store = Store::connect(&database_url).await.with_context(|| {
        format!(
            "cannot open the task database {}",
            redact_url(&database_url)
        )
    })?;
    tracing::info!(database = %redact_url(&database_url), "task database ready");

    let runtime = Runtime::new(&RuntimeConfig {
        cache_dir: Some(data_dir.join("cache")),
        ..RuntimeConfig::default()
    })?;
    let plugins = load_plugins(&runtime, &config, &args.plugins).await?;
    let actions = ActionRegistry::new(plugins)?;
    tracing::info!(
        actions = actions.len(),
        "actions ready: {}",
        actions
            .iter()
            .map(|a| a.info.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let engine = Engine::new(
        store.clone(),
        actions,
        engine_config(&config, working_directory.clone()),
    );
    let templates = template_sources(&config, &args.templates);
    let auth = authenticator(&config)?;
    let shutdown = CancellationToken::new();
    let state = ApiState {
        engine: engine.clone(),
        templates,
        auth,
        shutdown: shutdown.clone(),
    };
    let app = scaffolder_api::app(state, cors_layer(&config)?);

    let address = listen_address(&config)?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let address = listener.local_addr()?;
    tracing::info!(
        data = %data_dir.display(),
        workspaces = %working_directory.display(),
        "serving the scaffolder API at http://{address}{}",
        scaffolder_api::BASE_PATH
    );
    // A line on stdout that scripts and tests can wait for.
    println!(
        "scaffolder listening on http://{address}{}",
        scaffolder_api::BASE_PATH
    );

    tokio::spawn(wait_for_signal(shutdown.clone()));
    let workers = tokio::spawn({
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        async move { engine.run_workers(shutdown).await }
    });
    // No Nagle: event frames are small and must leave at once (with Nagle and delayed
    // ACKs a frame can wait 40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {err}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    let _ = workers.await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("scaffolder");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/scaffolder");
    }
    PathBuf::from(".scaffolder")
}

/// The database URL without its password, for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The built-in plugins (with their default grants, or those of a `builtin:<name>`
/// entry), then every configured plugin file, then `--plugin` files.
async fn load_plugins(
    runtime: &Runtime,
    config: &Config,
    extra: &[PathBuf],
) -> anyhow::Result<Vec<Arc<Plugin>>> {
    let mut plugins = Vec::new();
    let settings = plugin_settings(config);
    let entries = &config.scaffolder.plugins;
    let builtin_entry = |name: &str| {
        entries
            .iter()
            .find(|e| e.source.to_str() == Some(&format!("{BUILTIN_PREFIX}{name}")))
    };
    for entry in entries {
        if let Some(name) = entry
            .source
            .to_str()
            .and_then(|s| s.strip_prefix(BUILTIN_PREFIX))
            && scaffolder_builtins::plugin(name).is_none()
        {
            let known: Vec<&str> = scaffolder_builtins::PLUGINS
                .iter()
                .map(|p| p.name)
                .collect();
            bail!(
                "scaffolder.plugins: there is no built-in plugin '{name}'; the built-ins are {}",
                known.join(", ")
            );
        }
    }
    for builtin in scaffolder_builtins::PLUGINS {
        let (plugin_config, digest) = match builtin_entry(builtin.name) {
            Some(entry) => (entry.plugin_config(&settings), entry.digest.clone()),
            None => (builtin.server_config(&settings), None),
        };
        let plugin = builtin
            .load(runtime, plugin_config)
            .await
            .with_context(|| format!("cannot load the built-in plugin {}", builtin.name))?;
        check_digest(&plugin, builtin.name, digest.as_deref())?;
        plugins.push(Arc::new(plugin));
    }
    let files = entries
        .iter()
        .filter(|e| !e.source.to_string_lossy().starts_with(BUILTIN_PREFIX))
        .map(|e| {
            (
                e.source.clone(),
                e.digest.clone(),
                e.plugin_config(&settings),
            )
        })
        .chain(extra.iter().map(|p| {
            let plugin_config = PluginConfig {
                config: settings.clone(),
                ..PluginConfig::default()
            };
            (p.clone(), None, plugin_config)
        }));
    for (source, digest, plugin_config) in files {
        let plugin = load_plugin(runtime, &source, digest.as_deref(), plugin_config).await?;
        plugins.push(Arc::new(plugin));
    }
    for plugin in &plugins {
        tracing::info!(
            plugin = plugin.name(),
            digest = plugin.digest(),
            cached = plugin.cache_hit(),
            "plugin loaded"
        );
    }
    Ok(plugins)
}

/// What every plugin reads with `host.get-config` (the keys the WIT documents): the
/// server's own settings that actions of Backstage read from its root config, without
/// credentials.
fn plugin_settings(config: &Config) -> BTreeMap<String, String> {
    let scaffolder = &config.scaffolder;
    let integrations: Vec<serde_json::Value> = config
        .integrations
        .scm_integrations()
        .into_iter()
        .map(|i| {
            let api_base_url = config
                .integrations
                .find(&i.host)
                .and_then(|(_, configured)| configured.api_base_url.clone());
            serde_json::json!({ "kind": i.kind, "host": i.host, "apiBaseUrl": api_base_url })
        })
        .collect();
    [
        ("backend.baseUrl", config.backend.base_url.clone()),
        (BACKSTAGE_BASE_URL, config.backstage.base_url.clone()),
        (
            "scaffolder.defaultAuthor.name",
            scaffolder.default_author.name.clone(),
        ),
        (
            "scaffolder.defaultAuthor.email",
            scaffolder.default_author.email.clone(),
        ),
        (
            "scaffolder.defaultCommitMessage",
            scaffolder.default_commit_message.clone(),
        ),
        (
            "integrations",
            Some(serde_json::Value::from(integrations).to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), value?)))
    .collect()
}

async fn load_plugin(
    runtime: &Runtime,
    source: &Path,
    digest: Option<&str>,
    plugin_config: PluginConfig,
) -> anyhow::Result<Plugin> {
    let plugin = runtime
        .load_file(source, plugin_config)
        .await
        .with_context(|| format!("cannot load the plugin {}", source.display()))?;
    check_digest(&plugin, &source.display().to_string(), digest)?;
    Ok(plugin)
}

/// Refuses a plugin whose digest differs from its pin.
fn check_digest(plugin: &Plugin, source: &str, pinned: Option<&str>) -> anyhow::Result<()> {
    if let Some(pinned) = pinned
        && pinned != plugin.digest()
    {
        bail!(
            "refusing to load {source}: its digest is {} but the configuration pins {pinned}; \
             update the pin if this build is the one you reviewed",
            plugin.digest()
        );
    }
    Ok(())
}

fn engine_config(config: &Config, working_directory: PathBuf) -> EngineConfig {
    let scaffolder = &config.scaffolder;
    EngineConfig {
        concurrent_tasks_limit: scaffolder.concurrent_tasks_limit,
        environment: Environment {
            parameters: scaffolder.default_environment.parameters.clone(),
            secrets: scaffolder.default_environment.secrets.clone(),
        },
        integrations: config.integrations.scm_integrations(),
        recovery_stale_timeout: scaffolder
            .task_recovery
            .enabled
            .then_some(scaffolder.task_recovery.stale_timeout),
        graceful_shutdown_timeout: scaffolder.graceful_shutdown_timeout,
        ..EngineConfig::new(working_directory)
    }
}

fn template_sources(config: &Config, dirs: &[PathBuf]) -> Arc<dyn TemplateSource> {
    let dirs: Vec<PathBuf> = dirs
        .iter()
        .chain(&config.scaffolder.templates)
        .cloned()
        .collect();
    let directories = DirectoryTemplates::new(dirs.clone());
    let (found, problems) = directories.scan();
    for dir in &dirs {
        tracing::info!("templates from {}", dir.display());
    }
    for (path, template) in &found {
        tracing::info!("template {} ({})", template.entity_ref(), path.display());
    }
    if !problems.is_empty() {
        tracing::warn!(
            "{} template file(s) could not be loaded; they are skipped until fixed",
            problems.len()
        );
    }
    let mut sources: Vec<Box<dyn TemplateSource>> = vec![Box::new(directories)];
    if let Some(base) = &config.backstage.base_url {
        tracing::info!("templates from the catalog at {base}");
        sources.push(Box::new(CatalogTemplates::new(
            base,
            config.backstage.catalog.token.clone(),
        )));
    }
    Arc::new(TemplateSources(sources))
}

/// Tokens are required unless nothing is configured and the server binds to loopback.
fn authenticator(config: &Config) -> anyhow::Result<Authenticator> {
    let mut auth = AuthConfig {
        allow_anonymous: false,
        static_tokens: Vec::new(),
        jwks: Vec::new(),
        backstage_base_url: config.backstage.base_url.clone(),
    };
    for access in &config.backend.auth.external_access {
        match access {
            ExternalAccess::Static { token, subject } => auth.static_tokens.push(StaticToken {
                token: token.clone(),
                subject: subject.clone(),
            }),
            ExternalAccess::Jwks {
                url,
                issuer,
                algorithms,
                audience,
                subject_prefix,
            } => auth.jwks.push(JwksAccess {
                url: url.clone(),
                issuer: issuer.clone(),
                algorithms: algorithms.clone(),
                audience: audience.first().cloned(),
                subject_prefix: subject_prefix.clone(),
            }),
        }
    }
    let configured = !auth.static_tokens.is_empty()
        || !auth.jwks.is_empty()
        || auth.backstage_base_url.is_some();
    if !configured {
        let host = &config.backend.listen.host;
        if !is_loopback(host) {
            bail!(
                "refusing to serve {host} without authentication: configure \
                 backend.auth.externalAccess (static tokens or a JWKS) or backstage.baseUrl, \
                 or bind to 127.0.0.1"
            );
        }
        tracing::warn!(
            "development mode: no authentication is configured, so requests without a token are \
             accepted; this is only allowed because the server listens on loopback ({host})"
        );
        auth.allow_anonymous = true;
    }
    auth.validate()?;
    Ok(Authenticator::new(auth))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn listen_address(config: &Config) -> anyhow::Result<SocketAddr> {
    let listen = &config.backend.listen;
    let host = if listen.host == "localhost" {
        "127.0.0.1"
    } else {
        listen.host.trim_matches(['[', ']'])
    };
    let ip: IpAddr = host
        .parse()
        .with_context(|| format!("backend.listen.host '{}' is not an IP address", listen.host))?;
    Ok(SocketAddr::new(ip, listen.port))
}

fn cors_layer(config: &Config) -> anyhow::Result<Option<CorsLayer>> {
    let Some(cors) = &config.backend.cors else {
        return Ok(None);
    };
    let origin = if cors.origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let origins = cors
            .origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o)
                    .with_context(|| format!("backend.cors.origin '{o}' is not a valid origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(origins)
    };
    let methods = cors
        .methods
        .iter()
        .map(|m| {
            Method::from_bytes(m.as_bytes())
                .with_context(|| format!("backend.cors.methods: '{m}' is not an HTTP method"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods(methods)
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::ACCEPT,
            ])
            .allow_credentials(cors.credentials),
    ))
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::warn!("cannot listen for SIGTERM: {err}");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new tasks are claimed, running ones get the grace period");
    shutdown.cancel();
}
