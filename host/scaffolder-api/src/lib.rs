//! The Backstage scaffolder REST API (`/api/scaffolder/v2/...`, spec §1) over the task
//! engine: the same routes, status codes, bodies and quirks, so Backstage's
//! `ScaffolderClient` and frontend work against it unchanged.
//!
//! Every route goes through [`auth`] (a `401` in the standard shape) and
//! [`error::standard_error_body`]; handlers live in `routes/`, one file per resource.

pub mod auth;
mod body;
mod entity_check;
mod error;
pub mod health;
mod ids;
pub mod metrics;
mod query;
pub mod registry;
pub mod request_span;
mod routes;
pub mod templates;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scaffolder_engine::Engine;
use tower_http::cors::CorsLayer;

pub use error::ApiError;
pub use routes::dry_run::response_body as dry_run_response_body;
pub use templates::{
    BrokenTemplate, CatalogTemplates, DirectoryTemplates, FindError, ListedTemplate,
    LoadedTemplate, TemplateSource, TemplateSources,
};

/// Where the router is mounted in a standard Backstage backend.
pub const BASE_PATH: &str = "/api/scaffolder";

/// The task secret holding the caller's Backstage token, as Backstage names it; the
/// catalog actions call the catalog with it.
pub const BACKSTAGE_TOKEN_SECRET: &str = "backstageToken";

/// Backstage's `express.json({ limit: '10MB' })`, sized for dry-run uploads.
const BODY_LIMIT: usize = 10 * 1024 * 1024;

/// What every route needs.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Engine,
    pub templates: Arc<dyn TemplateSource>,
    pub auth: auth::Authenticator,
    /// Fired on shutdown: open event streams end so the server can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The app: the scaffolder routes under [`BASE_PATH`], [`metrics::PATH`], and CORS when
/// configured.
pub fn app(state: ApiState, cors: Option<CorsLayer>) -> Router {
    let mut app = Router::new()
        .merge(metrics::router(state.clone()))
        .nest(BASE_PATH, router(state));
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app
}

/// `app` with Backstage's health routes (no authentication) and a request span around
/// every route: apply last, so routes nested into `app` get their span too.
pub fn observed(app: Router, health: health::Health) -> Router {
    app.merge(health::router(health))
        .layer(middleware::from_fn(request_span::request_span))
}

/// The scaffolder routes, relative to the base path.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v2/templates", get(routes::templates::list))
        .route(
            "/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
            get(routes::templates::parameter_schema),
        )
        .route("/v2/actions", get(routes::misc::actions))
        .route("/v2/plugins", get(routes::misc::plugins))
        .route(
            "/v2/tasks",
            post(routes::tasks::create).get(routes::tasks::list),
        )
        .route("/v2/tasks/{task_id}", get(routes::tasks::get))
        .route("/v2/tasks/{task_id}/cancel", post(routes::tasks::cancel))
        .route("/v2/tasks/{task_id}/retry", post(routes::tasks::retry))
        .route(
            "/v2/tasks/{task_id}/eventstream",
            get(routes::events::eventstream),
        )
        .route("/v2/tasks/{task_id}/events", get(routes::events::events))
        .route("/v2/dry-run", post(routes::dry_run::dry_run))
        .route(
            "/v2/autocomplete/{provider}/{resource}",
            post(routes::misc::autocomplete),
        )
        .route(
            "/v2/templating-extensions",
            get(routes::misc::templating_extensions),
        )
        .route("/openapi.json", get(routes::openapi::document))
        .layer(middleware::from_fn_with_state(
            body::large_bodies(),
            body::bounded_body,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(error::standard_error_body))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Checks the bearer token and stores the [`auth::Principal`] for the handlers; a refusal
/// is logged with its reason (never the token), so the operator sees why a caller gets 401.
async fn authenticate(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let header = authorization(&request);
    match state.auth.authenticate(header.as_deref()).await {
        Ok(principal) => {
            request.extensions_mut().insert(Arc::new(principal));
            next.run(request).await
        }
        Err(err) => {
            // The path only: a query string may carry values a caller considers private.
            tracing::warn!(
                method = %request.method(),
                path = %request.uri().path(),
                "request refused with 401: {}",
                err.message
            );
            ApiError::authentication(err.message).into_response()
        }
    }
}

/// The request's `Authorization` header value, if it is text.
pub(crate) fn authorization(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
