//! Where plugins come from and whether to trust them: a configured [`PluginSource`]
//! (built-in, file, `https://` URL, OCI reference) becomes a loaded plugin with its pin
//! and signatures checked ([`load_plugins`]), components are kept in a digest-keyed
//! cache, plugins are published to and signed in OCI registries, plugin directories are
//! built, and the plugin files are watched for reloads ([`PluginWatch`]).
//!
//! It takes a [`PluginSet`] (the plugin specs a configuration resolves to), never the
//! whole configuration.

mod cache;
mod credentials;
pub mod directory;
mod https;
mod load;
pub mod oci;
pub mod private_dir;
pub mod signing;
mod source;
mod watch;

pub use cache::sha256_digest;
pub use load::load_plugins;
pub use source::{PluginSet, PluginSource, PluginSpec};
pub use watch::PluginWatch;
