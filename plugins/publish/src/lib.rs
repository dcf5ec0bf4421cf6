//! Publishing actions: `publish:git` pushes the workspace to any smart-HTTP git server,
//! `publish:github` creates a GitHub repository through the REST API and pushes to it.
//!
//! Both build the git objects themselves (`objects.rs`, `pack.rs`) and push them with
//! git's smart-HTTP protocol (`pkt_line.rs`, `smart_http.rs`) through `wasi:http`, so
//! they reach only the hosts the operator granted; no git binary, no shell.

mod catalog_url;
mod github_api;
mod initial_commit;
mod objects;
mod pack;
mod pkt_line;
mod publish_git;
mod publish_github;
mod sealed_box;
mod smart_http;
mod worktree;

use scaffolder_plugin_sdk::plugin;

plugin!(publish_git::PublishGit, publish_github::PublishGithub);
