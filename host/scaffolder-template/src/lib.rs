//! Backstage `scaffolder.backstage.io/v1beta3` templates as a pure library: the model and
//! its parsing, parameter validation, and `${{ … }}` rendering with Nunjucks semantics.
//!
//! **Architecture Invariant:** this crate does no I/O of its own. Callers hand it text
//! and values; the same code runs in the host and inside the `fetch:template` plugin
//! compiled to `wasm32-wasip2`.

mod compiled_schemas;
mod context;
pub mod defaults;
mod error;
mod model;
pub mod parameters;
pub mod render;
pub mod skeleton;
mod step_references;
pub mod yaml;

pub use context::TemplateContext;
pub use error::TemplateError;
pub use model::{API_VERSION, Metadata, RecoveryStrategy, Step, Template, TemplateSpec};
pub use parameters::{ParameterError, validate_input, validate_secrets, validate_values};
pub use render::{
    Condition, RenderError, Renderer, RendererOptions, ScmIntegration, ScmKind, Syntax, is_truthy,
};
pub use skeleton::{EntryKind, SkeletonEntry, SkeletonError, SkeletonOptions, render_skeleton};
pub use step_references::step_reference_warnings;
