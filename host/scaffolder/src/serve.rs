//! `scaffolder serve`: configuration → store, runtime, plugins, engine, API; then serve
//! until SIGTERM or ctrl-c, letting running tasks finish within the grace period.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::http::{HeaderValue, Method};
use scaffolder_api::auth::{
    AuthConfig, Authenticator, ExternalAccess, PluginTokenConfig, PluginTokenVerifier, is_plugin_id,
};
use scaffolder_api::registry::{self, RegistryState};
use scaffolder_api::{
    ApiState, CatalogTemplates, DirectoryTemplates, TemplateSource, TemplateSources,
};
use scaffolder_engine::workspace_store::WorkspaceBackend;
use scaffolder_engine::{ActionRegistry, Engine, EngineConfig, WorkspaceStore};
use scaffolder_plugins::PluginWatch;
use scaffolder_store::Store;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::cli::ServeArgs;
use crate::http_server;
use scaffolder_config::{ActionsRegistryConfig, Config};
use scaffolder_local::setup;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = scaffolder_config::load(&args.configs)?;
    let open_files = http_server::raise_open_file_limit();
    let edge = http_server::Edge::new(
        &config.backend.server,
        open_files,
        config.scaffolder.graceful_shutdown_timeout,
    )?;
    tracing::info!(
        headers_timeout = ?edge.headers_timeout,
        request_timeout = ?edge.request_timeout,
        keep_alive_timeout = ?edge.keep_alive_timeout,
        max_connections = edge.max_connections,
        "connection limits (backend.server)"
    );
    // First, so that everything recorded from the store on is in `/metrics`.
    scaffolder_api::metrics::install_recorder()
        .context("cannot start recording metrics for /metrics")?;
    if let Some(port) = args.port {
        config.backend.listen.port = port;
    }
    if let Some(host) = &args.host {
        config.backend.listen.host = host.clone();
    }
    check_template_directories(&config, &args.templates)?;
    let data_dir = setup::data_dir(args.data_dir.as_deref(), &config)?;
    let working_directory = setup::working_directory(&config, &data_dir)?;

    let database_url = config.backend.database.database_url(&data_dir);
    let secrets_key = config.scaffolder.task_secrets.key.clone();
    if secrets_key.is_none() && !database_url.starts_with("sqlite:") {
        bail!("{POSTGRES_NEEDS_A_KEY}");
    }
    let secrets_encrypted = secrets_key.is_some();
    let store = Store::connect_with(&database_url, secrets_key)
        .await
        .with_context(|| {
            format!(
                "cannot open the task database {}",
                redact_url(&database_url)
            )
        })?;
    tracing::info!(
        database = %redact_url(&database_url),
        secrets_encrypted,
        "task database ready"
    );

    let workspace_store = workspace_store(&config, &store)?;

    let runtime = setup::runtime(&data_dir)?;
    let plugin_set = config.plugin_set(&args.plugins);
    let plugins = scaffolder_plugins::load_plugins(&runtime, &plugin_set, &data_dir).await?;
    let actions = ActionRegistry::with_origins(plugins)?;
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
        EngineConfig {
            workspace_store,
            ..config.engine_config(working_directory.clone())
        },
    );
    let templates = template_sources(&config, &args.templates);
    let auth = authenticator(&config)?;
    let shutdown = CancellationToken::new();
    let health = scaffolder_api::health::Health::new(shutdown.clone());
    let state = ApiState {
        engine: engine.clone(),
        templates,
        auth,
        shutdown: shutdown.clone(),
    };
    let mut app = scaffolder_api::app(state, cors_layer(&config)?);
    if let Some(registry) = &config.scaffolder.actions_registry {
        let (base_path, routes) = actions_registry(&config, registry, &engine)?;
        app = app.nest(&base_path, routes);
    }
    let app = scaffolder_api::observed(app, health.clone());
    let server_shutdown_delay = config.backend.lifecycle.server_shutdown_delay;

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
    tokio::spawn({
        let (config_files, extra) = (args.configs.clone(), args.plugins.clone());
        let watch = PluginWatch {
            engine: engine.clone(),
            runtime: runtime.clone(),
            config_files: args.configs.clone(),
            read_config: Box::new(move || {
                Ok(scaffolder_config::load(&config_files)?.plugin_set(&extra))
            }),
            data_dir: data_dir.clone(),
        };
        let shutdown = shutdown.clone();
        async move { watch.run(plugin_set, shutdown).await }
    });
    let workers = tokio::spawn({
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        async move { engine.run_workers(shutdown).await }
    });
    health.mark_started();
    let stop_serving = health.stop_serving_after(server_shutdown_delay);
    http_server::serve(listener, app, edge, stop_serving).await?;
    let _ = workers.await;
    engine.close_dry_runs();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Why a server on PostgreSQL without `scaffolder.taskSecrets.key` does not start, and what
/// to do.
const POSTGRES_NEEDS_A_KEY: &str = "\
refusing to store task secrets on PostgreSQL in plaintext: set scaffolder.taskSecrets.key to \
32 random bytes in base64. Create a key once with `openssl rand -base64 32`, keep it where the \
server's other credentials are kept, and give it to every replica, e.g.
  scaffolder:
    taskSecrets:
      key: ${SCAFFOLDER_TASK_SECRETS_KEY}
with SCAFFOLDER_TASK_SECRETS_KEY set in the server's environment. Keep the same key across \
restarts: the secrets of running tasks cannot be read with another one";

/// `scaffolder.workspaceStore` on the connected task database, and a log line saying
/// where workspaces go (never the keys).
fn workspace_store(config: &Config, store: &Store) -> anyhow::Result<Option<WorkspaceStore>> {
    let Some(settings) = config.scaffolder.workspace_store.resolve(store.backend()) else {
        tracing::info!(
            "workspace store: none; a task's workspace stays on the replica that runs it"
        );
        return Ok(None);
    };
    let workspaces = WorkspaceStore::new(store.clone(), &settings)
        .context("cannot set up scaffolder.workspaceStore")?;
    let (max_bytes, max_entries) = (settings.max_bytes, settings.max_entries);
    match &settings.backend {
        WorkspaceBackend::Database => tracing::info!(
            max_bytes,
            max_entries,
            "workspace store: the task database; workspaces are saved after each step"
        ),
        WorkspaceBackend::S3(s3) => {
            let credentials = match s3.access_key_id {
                Some(_) => "configured keys",
                None => "the environment's",
            };
            tracing::info!(
                bucket = %s3.bucket,
                endpoint = s3.endpoint.as_deref().unwrap_or("AWS"),
                region = s3.region.as_deref().unwrap_or(""),
                prefix = %s3.prefix,
                credentials,
                max_bytes,
                max_entries,
                "workspace store: S3; workspaces are saved after each step"
            )
        }
    }
    Ok(Some(workspaces))
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

/// Refuses to start when a template directory does not exist or is not a directory: a
/// typo in `--templates ./exmaples` would otherwise serve no template, silently.
fn check_template_directories(config: &Config, args: &[PathBuf]) -> anyhow::Result<()> {
    let working_directory = std::env::current_dir()
        .map(|d| format!("relative paths start at {}", d.display()))
        .unwrap_or_else(|_| "relative paths start at the working directory".into());
    let given = args
        .iter()
        .map(|dir| (dir, "--templates", working_directory.as_str()))
        .chain(config.scaffolder.templates.iter().map(|dir| {
            (
                dir,
                "scaffolder.templates in the configuration",
                "relative paths start at the configuration file's directory",
            )
        }));
    for (dir, from, relative) in given {
        match std::fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => bail!(
                "the template directory {} (from {from}) is not a directory; give the directory that holds the templates",
                dir.display()
            ),
            Err(err) => bail!(
                "the template directory {} (from {from}) cannot be read: {err}; check the path ({relative})",
                dir.display()
            ),
        }
    }
    Ok(())
}

fn template_sources(config: &Config, dirs: &[PathBuf]) -> Arc<dyn TemplateSource> {
    let dirs: Vec<PathBuf> = dirs
        .iter()
        .chain(&config.scaffolder.templates)
        .cloned()
        .collect();
    let directories = DirectoryTemplates::new(dirs.clone());
    let listed = directories.scan();
    for dir in &dirs {
        if listed.iter().any(|t| t.file.starts_with(dir)) {
            tracing::info!("templates from {}", dir.display());
        } else {
            tracing::warn!(
                "no template found under {}: it holds no YAML file with `kind: Template`",
                dir.display()
            );
        }
    }
    for template in listed.iter().filter(|t| t.error.is_none()) {
        let entity_ref = template.entity_ref.as_deref().unwrap_or_default();
        tracing::info!("template {entity_ref} ({})", template.file.display());
    }
    let broken = listed.iter().filter(|t| t.error.is_some()).count();
    if broken > 0 {
        tracing::warn!(
            "{broken} template(s) cannot be loaded; requests for them answer 400 with the place until they are fixed (GET /api/scaffolder/v2/templates lists them)"
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

/// The actions registry routes and where they are mounted (`/api/<pluginId>`).
fn actions_registry(
    config: &Config,
    registry: &ActionsRegistryConfig,
    engine: &Engine,
) -> anyhow::Result<(String, axum::Router)> {
    let plugin_id = &registry.plugin_id;
    if !is_plugin_id(plugin_id) || plugin_id == "scaffolder" {
        bail!(
            "scaffolder.actionsRegistry.pluginId: '{plugin_id}' must be a Backstage plugin id \
             (letters, digits, '-', '_') other than 'scaffolder'"
        );
    }
    if let Some(caller) = registry.allowed_callers.iter().find(|c| !is_plugin_id(c)) {
        bail!("scaffolder.actionsRegistry.allowedCallers: '{caller}' is not a Backstage plugin id");
    }
    let Some(base_url) = &config.backstage.base_url else {
        bail!(
            "scaffolder.actionsRegistry needs backstage.baseUrl: the tokens of Backstage's \
             plugins are verified against the keys that backend publishes"
        );
    };
    let exposed = if registry.actions.is_empty() {
        None
    } else {
        Some(Arc::new(
            registry::exposed_actions(&registry.actions)
                .context("scaffolder.actionsRegistry.actions")?,
        ))
    };
    let verifier = PluginTokenVerifier::new(PluginTokenConfig {
        plugin_id: plugin_id.clone(),
        backstage_base_url: base_url.clone(),
        allowed_callers: registry.allowed_callers.clone(),
    });
    let base_path = format!("/api/{plugin_id}");
    tracing::info!(
        callers = %registry.allowed_callers.join(", "),
        "serving the actions registry of plugin '{plugin_id}' at {base_path}/.backstage/actions/v1/actions for {base_url}"
    );
    let state = RegistryState {
        engine: engine.clone(),
        plugin_id: plugin_id.clone(),
        verifier,
        exposed,
    };
    Ok((base_path, registry::router(state)))
}

/// Tokens are required unless nothing is configured and the server binds to loopback.
fn authenticator(config: &Config) -> anyhow::Result<Authenticator> {
    let mut auth = AuthConfig {
        allow_anonymous: false,
        static_tokens: Vec::new(),
        jwks: Vec::new(),
        backstage_base_url: config.backstage.base_url.clone(),
        serve_unverified_tokens: false,
    };
    for access in &config.backend.auth.external_access {
        match access {
            ExternalAccess::Static(token) => auth.static_tokens.push(token.clone()),
            ExternalAccess::Jwks(jwks) => auth.jwks.push(jwks.clone()),
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
        // The README's first command runs this way on purpose, so it is a notice, not a
        // warning; the first unverified token does warn (auth/authenticator.rs).
        tracing::info!(
            "development mode: no authentication is configured, so every request is accepted, \
             and a bearer token (a Backstage frontend always sends one) is served unverified, as \
             if there were none; this is only allowed because the server listens on loopback \
             ({host}). Set backstage.baseUrl to verify Backstage user tokens"
        );
        auth.allow_anonymous = true;
        auth.serve_unverified_tokens = true;
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
