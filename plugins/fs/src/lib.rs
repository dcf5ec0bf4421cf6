//! Backstage's `fs:delete`, `fs:rename` and `fs:readdir`: file operations inside the task
//! workspace, with Backstage 4.2.0's input and output schemas.
//!
//! Every path a template gives is resolved inside the workspace first ([`WorkspacePath`]);
//! one that leaves it fails the step before anything is touched. The plugin requests no
//! capability: the sandbox gives it the workspace and nothing else.

mod delete;
mod path;
mod readdir;
mod rename;

pub use delete::{Delete, DeleteInput};
pub use path::WorkspacePath;
pub use readdir::{Entry, ReadDir, ReadDirInput, ReadDirOutput};
pub use rename::{Rename, RenameInput};

scaffolder_plugin_sdk::plugin!(Delete, Rename, ReadDir);
