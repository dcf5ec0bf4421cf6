//! Where templates come from: directories on disk (re-read when their files change) and,
//! when configured, a Backstage catalog.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use scaffolder_template::Template;

/// A template and the URL its relative `url`s resolve against.
#[derive(Debug, Clone)]
pub struct LoadedTemplate {
    pub template: Template,
    pub base_url: Option<String>,
}

/// Finds templates by namespace and name.
#[async_trait::async_trait]
pub trait TemplateSource: Send + Sync {
    /// `Err` is a message for a 500: the source could not be read.
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, String>;
}

/// Several sources, asked in order.
pub struct TemplateSources(pub Vec<Box<dyn TemplateSource>>);

#[async_trait::async_trait]
impl TemplateSource for TemplateSources {
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, String> {
        for source in &self.0 {
            if let Some(found) = source.find(namespace, name).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// Every YAML file with `kind: Template` under some directories. Each lookup re-checks
/// the files' modification times and re-parses only changed files, so edits show up at
/// once without a file watcher.
pub struct DirectoryTemplates {
    roots: Vec<PathBuf>,
    files: Mutex<HashMap<PathBuf, ParsedFile>>,
}

struct ParsedFile {
    stamp: (SystemTime, u64),
    templates: Vec<Template>,
}

impl DirectoryTemplates {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Self {
            roots,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Re-reads changed files; returns every template found and every file that failed
    /// to parse, for the start-up log.
    pub fn scan(&self) -> (Vec<(PathBuf, Template)>, Vec<String>) {
        let (files, problems) = self.refresh();
        let mut found: Vec<(PathBuf, Template)> = files
            .iter()
            .flat_map(|(path, f)| f.templates.iter().map(|t| (path.clone(), t.clone())))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        (found, problems)
    }

    /// Brings the parsed files up to date: files that are gone are dropped, new or
    /// changed ones (by modification time and size) are parsed. Returns the parsed files
    /// and the problems of the files parsed now.
    fn refresh(&self) -> (MutexGuard<'_, HashMap<PathBuf, ParsedFile>>, Vec<String>) {
        let mut paths = Vec::new();
        for root in &self.roots {
            yaml_files(root, &mut paths);
        }
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let present: HashSet<&PathBuf> = paths.iter().collect();
        files.retain(|path, _| present.contains(path));
        let mut problems = Vec::new();
        for path in &paths {
            let Ok(metadata) = std::fs::metadata(path) else {
                continue;
            };
            let stamp = (
                metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                metadata.len(),
            );
            if files.get(path).is_some_and(|f| f.stamp == stamp) {
                continue;
            }
            let templates = parse_file(path, &mut problems);
            files.insert(path.clone(), ParsedFile { stamp, templates });
        }
        (files, problems)
    }
}

/// The templates of one YAML file; what fails to parse goes to `problems`.
fn parse_file(path: &Path, problems: &mut Vec<String>) -> Vec<Template> {
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(err) => {
            problems.push(format!("{}: {err}", path.display()));
            return Vec::new();
        }
    };
    if !mentions_template_kind(&source) {
        return Vec::new();
    }
    let file = path.display().to_string();
    let documents =
        Template::all_from_yaml(&source, Some(&file)).unwrap_or_else(|err| vec![Err(err)]);
    let mut templates = Vec::new();
    for document in documents {
        match document {
            Ok(template) => templates.push(template),
            Err(err) => {
                tracing::warn!("skipping a template: {err}");
                problems.push(err.to_string());
            }
        }
    }
    templates
}

#[async_trait::async_trait]
impl TemplateSource for DirectoryTemplates {
    /// Re-checks the directories, then clones only the template asked for.
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, String> {
        let (files, _) = self.refresh();
        let found = files.iter().find_map(|(path, file)| {
            file.templates
                .iter()
                .find(|t| {
                    t.metadata.namespace.eq_ignore_ascii_case(namespace)
                        && t.metadata.name.eq_ignore_ascii_case(name)
                })
                .map(|template| (path, template))
        });
        Ok(found.map(|(path, template)| {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            LoadedTemplate {
                template: template.clone(),
                base_url: Some(format!("file://{}", path.display())),
            }
        }))
    }
}

/// A cheap pre-check so that unrelated YAML (CI files, catalog-info of components) is not
/// parsed and not reported.
fn mentions_template_kind(source: &str) -> bool {
    source
        .lines()
        .any(|l| l.trim_start().starts_with("kind:") && l.contains("Template"))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "node_modules" || name == "target" {
            continue;
        }
        if path.is_dir() {
            yaml_files(&path, out);
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
}

/// Templates from a Backstage catalog:
/// `GET {base}/api/catalog/entities/by-name/template/{namespace}/{name}`.
pub struct CatalogTemplates {
    base_url: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl CatalogTemplates {
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            client: reqwest::Client::new(),
        }
    }
}

#[async_trait::async_trait]
impl TemplateSource for CatalogTemplates {
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, String> {
        let url = format!(
            "{}/api/catalog/entities/by-name/template/{namespace}/{name}",
            self.base_url
        );
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("could not reach the catalog at {url}: {e}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(format!(
                "the catalog answered {} for {url}",
                response.status()
            ));
        }
        let entity: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("the catalog's answer for {url} is not JSON: {e}"))?;
        let template = Template::from_json(entity).map_err(|e| e.to_string())?;
        let base_url = template.base_url();
        Ok(Some(LoadedTemplate { template, base_url }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: t\n  title: TITLE\nspec:\n  type: service\n  steps: []\n";

    #[tokio::test]
    async fn edits_are_seen_on_the_next_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let source = DirectoryTemplates::new(vec![dir.path().to_path_buf()]);
        assert!(source.find("default", "t").await.unwrap().is_none());
        let file = dir.path().join("nested/template.yaml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, TEMPLATE.replace("TITLE", "First")).unwrap();
        let found = source.find("default", "t").await.unwrap().unwrap();
        assert_eq!(found.template.metadata.title.as_deref(), Some("First"));
        assert_eq!(found.base_url, Some(format!("file://{}", file.display())));
        // A different length changes the stamp even within one clock tick.
        std::fs::write(&file, TEMPLATE.replace("TITLE", "Second one")).unwrap();
        let found = source.find("default", "t").await.unwrap().unwrap();
        assert_eq!(found.template.metadata.title.as_deref(), Some("Second one"));
        std::fs::remove_file(&file).unwrap();
        assert!(source.find("default", "t").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn broken_templates_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "kind: Template\napiVersion: x\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ci.yaml"), "on: push\n").unwrap();
        let source = DirectoryTemplates::new(vec![dir.path().to_path_buf()]);
        let (found, problems) = source.scan();
        assert!(found.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("bad.yaml"), "{problems:?}");
    }
}
