//! Where templates come from: directories on disk (re-read when their files change) and,
//! when configured, a Backstage catalog.
//!
//! A template that exists but does not load is not "not found": lookups answer it as
//! [`FindError::Broken`], which the routes turn into a 400 naming the file, line and
//! column. Which template a broken file is, is read as follows (the rule is the same for
//! the listing, the start-up log and the lookups):
//!
//! - Only YAML files with a line starting `kind:` that mentions `Template` are read at all
//!   (CI files and components' catalog-info are not parsed and not reported).
//! - When the YAML parses, every document whose `kind` is `Template` is a template. One
//!   that fails the model check is a broken template named by its `metadata.name` and
//!   `metadata.namespace` (default `default`) when those are strings; without a name it is
//!   listed and logged, but no ref can reach it.
//! - When the YAML does not parse, the document holding the error (the lines between
//!   `---` markers) is read line by line: a top-level `kind: Template` makes it a broken
//!   template, named by the `name:` and `namespace:` lines of its top-level `metadata:`
//!   block (block style only). A document without `kind: Template` is not a template, and
//!   is neither listed nor reported. The parser reads a file as one stream, so the other
//!   documents of such a file are not loaded either.
//! - Files inside what a template fetches as content (the relative `url` of its `fetch:*`
//!   steps, a skeleton directory or a single file) are content, not templates: a skeleton
//!   may well hold a `template.yaml` that is only a template once rendered. They are
//!   skipped, whatever they hold; a template's own file is never skipped by its own steps.
//! - Two templates with the same ref: a loaded one is found before a broken one; the
//!   listing shows both.
//!
//! Deliberately absent: a file watcher. Each lookup compares modification times and sizes.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use scaffolder_template::{Template, TemplateError};

/// A template and the URL its relative `url`s resolve against.
#[derive(Debug, Clone)]
pub struct LoadedTemplate {
    pub template: Template,
    pub base_url: Option<String>,
}

/// A template that exists but does not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenTemplate {
    /// `template:<namespace>/<name>`, when the file says which template it is.
    pub entity_ref: Option<String>,
    /// Why, and where (file, line, column).
    pub error: TemplateError,
}

/// Why a lookup found no usable template.
#[derive(Debug, Clone)]
pub enum FindError {
    /// The template exists and does not load (a 400 that names the place).
    Broken(BrokenTemplate),
    /// The source could not be read (a 500).
    Unavailable(String),
}

/// One template of a source and whether it loads, for `GET /v2/templates`.
#[derive(Debug, Clone)]
pub struct ListedTemplate {
    /// `template:<namespace>/<name>`, when known.
    pub entity_ref: Option<String>,
    pub title: Option<String>,
    /// The file it was read from.
    pub file: PathBuf,
    /// `None` when it loads.
    pub error: Option<TemplateError>,
}

/// Finds templates by namespace and name.
#[async_trait::async_trait]
pub trait TemplateSource: Send + Sync {
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, FindError>;

    /// Every template the source holds, loaded or not, when it can tell. A catalog lists
    /// its own templates, so the default lists none.
    async fn list(&self) -> Vec<ListedTemplate> {
        Vec::new()
    }
}

/// Several sources, asked in order.
pub struct TemplateSources(pub Vec<Box<dyn TemplateSource>>);

#[async_trait::async_trait]
impl TemplateSource for TemplateSources {
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, FindError> {
        for source in &self.0 {
            if let Some(found) = source.find(namespace, name).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn list(&self) -> Vec<ListedTemplate> {
        let mut all = Vec::new();
        for source in &self.0 {
            all.extend(source.list().await);
        }
        all
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
    entries: Vec<Entry>,
    /// Inside what another template here fetches as content: worked out by `refresh`
    /// when the set of files changes, not on every lookup.
    is_content: bool,
}

enum Entry {
    Loaded(Box<Template>),
    Broken(BrokenTemplate),
}

impl DirectoryTemplates {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Self {
            roots,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Re-reads changed files; returns every template found, loaded or not, sorted by
    /// file (for the start-up log and the listing). Content files are left out.
    pub fn scan(&self) -> Vec<ListedTemplate> {
        let files = self.refresh();
        let mut listed: Vec<ListedTemplate> = files
            .iter()
            .filter(|(_, file)| !file.is_content)
            .flat_map(|(path, file)| {
                file.entries.iter().map(|entry| match entry {
                    Entry::Loaded(template) => ListedTemplate {
                        entity_ref: Some(template.entity_ref()),
                        title: template.metadata.title.clone(),
                        file: path.clone(),
                        error: None,
                    },
                    Entry::Broken(broken) => ListedTemplate {
                        entity_ref: broken.entity_ref.clone(),
                        title: None,
                        file: path.clone(),
                        error: Some(broken.error.clone()),
                    },
                })
            })
            .collect();
        listed.sort_by(|a, b| (&a.file, &a.entity_ref).cmp(&(&b.file, &b.entity_ref)));
        listed
    }

    /// Brings the parsed files up to date: files that are gone are dropped, new or
    /// changed ones (by modification time and size) are parsed, which files are content is
    /// worked out again if anything changed, and the problems of those parsed now are
    /// logged, except in content.
    fn refresh(&self) -> MutexGuard<'_, HashMap<PathBuf, ParsedFile>> {
        let mut paths = Vec::new();
        for root in &self.roots {
            yaml_files(root, &mut paths);
        }
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let present: HashSet<&PathBuf> = paths.iter().collect();
        let known = files.len();
        files.retain(|path, _| present.contains(path));
        let mut changed = files.len() != known;
        let mut parsed_now = Vec::new();
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
            let entries = parse_file(path);
            let file = ParsedFile {
                stamp,
                entries,
                is_content: false,
            };
            files.insert(path.clone(), file);
            parsed_now.push(path);
            changed = true;
        }
        if changed {
            let content = content_roots(&files);
            let marks: Vec<(PathBuf, bool)> = files
                .keys()
                .map(|path| (path.clone(), is_content(path, &content)))
                .collect();
            for (path, is_content) in marks {
                if let Some(file) = files.get_mut(&path) {
                    file.is_content = is_content;
                }
            }
        }
        for path in parsed_now {
            if files[path].is_content {
                continue;
            }
            for entry in &files[path].entries {
                match entry {
                    Entry::Loaded(template) => {
                        for warning in &template.warnings {
                            tracing::warn!("template {}: {warning}", template.entity_ref());
                        }
                    }
                    Entry::Broken(broken) => match &broken.entity_ref {
                        Some(entity_ref) => tracing::warn!(
                            "template {entity_ref} cannot be loaded (requests for it answer 400 until the file is fixed): {}",
                            broken.error
                        ),
                        None => tracing::warn!(
                            "a template without a name cannot be loaded: {}",
                            broken.error
                        ),
                    },
                }
            }
        }
        files
    }
}

/// The entries of one YAML file (none for a file that is not a template).
fn parse_file(path: &Path) -> Vec<Entry> {
    let file = path.display().to_string();
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(err) => {
            // Named only if it looks like a template; unreadable files cannot tell.
            tracing::debug!("skipping {file}: {err}");
            return Vec::new();
        }
    };
    if !mentions_template_kind(&source) {
        return Vec::new();
    }
    match scaffolder_template::yaml::parse_documents(&source) {
        Ok(documents) => documents
            .iter()
            .filter(|doc| doc.value.get("kind").and_then(|k| k.as_str()) == Some("Template"))
            .map(|doc| match Template::from_document(doc, Some(&file)) {
                Ok(template) => Entry::Loaded(Box::new(template)),
                Err(error) => Entry::Broken(BrokenTemplate {
                    entity_ref: entity_ref_of(&doc.value),
                    error,
                }),
            })
            .collect(),
        Err(syntax) => {
            let document = document_around(&source, syntax.position.line);
            let Some(entity_ref) = scan_document(document) else {
                return Vec::new();
            };
            vec![Entry::Broken(BrokenTemplate {
                entity_ref,
                error: TemplateError {
                    file: Some(file),
                    position: Some(syntax.position),
                    path: None,
                    message: format!("invalid YAML: {}", syntax.message),
                },
            })]
        }
    }
}

/// `template:<namespace>/<name>` of a parsed entity, when its name is a string.
fn entity_ref_of(entity: &serde_json::Value) -> Option<String> {
    let metadata = entity.get("metadata")?;
    let name = metadata.get("name")?.as_str()?;
    let namespace = match metadata.get("namespace") {
        None => "default",
        Some(namespace) => namespace.as_str()?,
    };
    Some(format!("template:{namespace}/{name}"))
}

/// The lines of the YAML document (between `---` markers) that holds 1-based `line`.
fn document_around(source: &str, line: usize) -> Vec<&str> {
    let mut document = Vec::new();
    for (number, text) in source.lines().enumerate() {
        if text == "---" || text.starts_with("--- ") {
            if number + 1 > line {
                break;
            }
            document.clear();
            continue;
        }
        document.push(text);
    }
    document
}

/// Reads a document that does not parse line by line: `None` unless it has a top-level
/// `kind: Template`; then the ref its top-level `metadata:` block names, if any.
fn scan_document(lines: Vec<&str>) -> Option<Option<String>> {
    let value = |text: &str| {
        let text = match text.find(" #") {
            Some(comment) => &text[..comment],
            None => text,
        };
        text.trim().trim_matches(['"', '\'']).to_owned()
    };
    let mut is_template = false;
    let (mut name, mut namespace) = (None, None);
    let mut in_metadata = false;
    let mut metadata_indent = None;
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if indent == 0 {
            in_metadata = text.trim_end() == "metadata:";
            if let Some(kind) = text.strip_prefix("kind:") {
                is_template = value(kind) == "Template";
            }
            continue;
        }
        if !in_metadata || *metadata_indent.get_or_insert(indent) != indent {
            continue;
        }
        if let Some(v) = text.strip_prefix("name:") {
            name = Some(value(v));
        } else if let Some(v) = text.strip_prefix("namespace:") {
            namespace = Some(value(v));
        }
    }
    is_template.then(|| {
        name.filter(|n| !n.is_empty()).map(|name| {
            let namespace = namespace.unwrap_or_else(|| "default".to_owned());
            format!("template:{namespace}/{name}")
        })
    })
}

/// What the loaded templates fetch as content: the relative, literal `url` of each
/// `fetch:*` step, resolved against the template's file, with that file.
fn content_roots(files: &HashMap<PathBuf, ParsedFile>) -> Vec<(PathBuf, &Path)> {
    let mut roots = Vec::new();
    for (path, file) in files {
        let Some(dir) = path.parent() else { continue };
        for entry in &file.entries {
            let Entry::Loaded(template) = entry else {
                continue;
            };
            for step in &template.spec.steps {
                if !step.action.starts_with("fetch:") {
                    continue;
                }
                let Some(url) = step.input.get("url").and_then(|u| u.as_str()) else {
                    continue;
                };
                if url.contains("${{") || url.contains(':') || url.starts_with('/') {
                    continue;
                }
                roots.push((normalize(&dir.join(url)), path.as_path()));
            }
        }
    }
    roots
}

/// Whether `path` lies inside what another file's template fetches as content.
fn is_content(path: &Path, roots: &[(PathBuf, &Path)]) -> bool {
    let path = normalize(path);
    roots
        .iter()
        .any(|(root, owner)| path.starts_with(root) && normalize(owner) != path)
}

/// `a/./b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[async_trait::async_trait]
impl TemplateSource for DirectoryTemplates {
    /// Re-checks the directories, then clones only the template asked for.
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, FindError> {
        let files = self.refresh();
        let wanted = format!("template:{namespace}/{name}");
        let mut broken = None;
        for (path, file) in files.iter() {
            if file.is_content {
                continue;
            }
            for entry in &file.entries {
                match entry {
                    Entry::Loaded(template)
                        if template.metadata.namespace.eq_ignore_ascii_case(namespace)
                            && template.metadata.name.eq_ignore_ascii_case(name) =>
                    {
                        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                        return Ok(Some(LoadedTemplate {
                            template: (**template).clone(),
                            base_url: Some(format!("file://{}", path.display())),
                        }));
                    }
                    Entry::Broken(b)
                        if b.entity_ref
                            .as_deref()
                            .is_some_and(|r| r.eq_ignore_ascii_case(&wanted)) =>
                    {
                        broken.get_or_insert_with(|| b.clone());
                    }
                    _ => {}
                }
            }
        }
        match broken {
            Some(broken) => Err(FindError::Broken(broken)),
            None => Ok(None),
        }
    }

    async fn list(&self) -> Vec<ListedTemplate> {
        self.scan()
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
    async fn find(&self, namespace: &str, name: &str) -> Result<Option<LoadedTemplate>, FindError> {
        let url = format!(
            "{}/api/catalog/entities/by-name/template/{namespace}/{name}",
            self.base_url
        );
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            FindError::Unavailable(format!("could not reach the catalog at {url}: {e}"))
        })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(FindError::Unavailable(format!(
                "the catalog answered {} for {url}",
                response.status()
            )));
        }
        let entity: serde_json::Value = response.json().await.map_err(|e| {
            FindError::Unavailable(format!("the catalog's answer for {url} is not JSON: {e}"))
        })?;
        // The catalog holds entities, not files: the location it read the entity from
        // stands for the file, and the JSON path for the line.
        let location = entity
            .pointer("/metadata/annotations/backstage.io~1managed-by-location")
            .and_then(|l| l.as_str())
            .unwrap_or(&url)
            .to_owned();
        let template = Template::from_json(entity).map_err(|error| {
            FindError::Broken(BrokenTemplate {
                entity_ref: Some(format!("template:{namespace}/{name}")),
                error: error.in_file(location),
            })
        })?;
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
    async fn broken_templates_are_listed_and_answered_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "kind: Template\napiVersion: x\nmetadata:\n  name: bad\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ci.yaml"), "on: push\n").unwrap();
        let source = DirectoryTemplates::new(vec![dir.path().to_path_buf()]);
        let listed = source.scan();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            listed[0].entity_ref.as_deref(),
            Some("template:default/bad")
        );
        let error = listed[0].error.as_ref().unwrap();
        assert!(
            error.to_string().contains("bad.yaml:2:13: apiVersion:"),
            "{error}"
        );
        let Err(FindError::Broken(broken)) = source.find("default", "BAD").await else {
            panic!("a broken template is found as broken");
        };
        assert_eq!(&broken.error, error);
    }

    /// Which template a file that does not load is: `Some(Some(ref))` a broken template
    /// with that ref, `Some(None)` one without a name, `None` not a template; and the
    /// line of the error.
    #[test]
    fn broken_files_are_attributed_by_kind_and_metadata() {
        let check = |source: &str, expect: Option<Option<&str>>, line: usize| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("t.yaml");
            std::fs::write(&file, source).unwrap();
            let entries = parse_file(&file);
            let got = entries.first().map(|entry| match entry {
                Entry::Broken(b) => {
                    assert_eq!(b.error.position.map(|p| p.line), Some(line), "{source}");
                    assert_eq!(b.error.file.as_deref(), Some(&*file.display().to_string()));
                    b.entity_ref.clone()
                }
                Entry::Loaded(_) => panic!("loaded: {source}"),
            });
            assert_eq!(got.as_ref().map(|r| r.as_deref()), expect, "{source}");
        };
        // The model check fails: the ref is the parsed metadata's.
        check(
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: m\n  namespace: ns\nspec:\n  type: x\n  steps: [{ id: a }]\n",
            Some(Some("template:ns/m")),
            8,
        );
        check(
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  title: no name\nspec: {}\n",
            Some(None),
            4,
        );
        // The YAML breaks: the ref is read from the document's lines, before or after
        // the error, quotes and comments dropped; nested `name:` keys do not count.
        check(
            "kind: Template\nmetadata:\n  labels:\n    name: not-this\n  name: \"y\" # the name\nspec:\n  steps: [\n",
            Some(Some("template:default/y")),
            8,
        );
        check(
            "kind: Template\nspec: {a: [}\nmetadata:\n  name: later\n",
            Some(Some("template:default/later")),
            2,
        );
        check("kind: Template\nspec: {a: [}\n", Some(None), 2);
        // Only the document holding the error counts.
        check(
            "kind: Template\nmetadata:\n  name: first\n---\nkind: Templates\nmetadata:\n  name: x\nspec: {a: [}\n",
            None,
            0,
        );
        check(
            "kind: Component\nmetadata:\n  name: c\n---\nkind: Template\nmetadata:\n  name: second\nspec: {a: [}\n",
            Some(Some("template:default/second")),
            8,
        );
    }

    #[tokio::test]
    async fn what_a_template_fetches_is_content_not_a_template() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "outer/template.yaml",
            &TEMPLATE.replace("name: t", "name: outer").replace(
                "steps: []",
                "steps:\n    - action: fetch:template\n      input: { url: ./skeleton }\n    - action: fetch:plain:file\n      input: { url: ../files/one.yaml }\n    - action: fetch:plain\n      input: { url: https://example.com/x }",
            ),
        );
        // Broken until rendered, valid, and a single fetched file: all content.
        write(
            "outer/skeleton/example/template.yaml",
            "kind: Template\nmetadata:\n  name: ${{ values.name }}\nspec: {a: [}\n",
        );
        write(
            "outer/skeleton/valid.yaml",
            &TEMPLATE.replace("name: t", "name: inner"),
        );
        write("files/one.yaml", &TEMPLATE.replace("name: t", "name: one"));
        write("files/two.yaml", &TEMPLATE.replace("name: t", "name: two"));
        let source = DirectoryTemplates::new(vec![dir.path().join("./")]);
        let refs: Vec<_> = source
            .scan()
            .into_iter()
            .map(|t| (t.entity_ref.unwrap(), t.error.is_none()))
            .collect();
        assert_eq!(
            refs,
            [
                ("template:default/two".to_owned(), true),
                ("template:default/outer".to_owned(), true)
            ]
        );
        assert!(source.find("default", "inner").await.unwrap().is_none());
    }
}
