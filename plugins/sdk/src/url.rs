//! URLs as Backstage's actions handle them with WHATWG `new URL`: enough of it for
//! resolving references against a template's or a repository's location.

/// The scheme of an absolute URL, as `new URL` accepts it; none for a relative reference.
pub fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// Resolves `reference` against the absolute `http(s)` URL `base`, as a browser does for
/// relative links (query and fragment of the base dropped, `.`/`..` applied).
pub fn join(base: &str, reference: &str) -> String {
    if scheme(reference).is_some() {
        return reference.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(network_path) = reference.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let base_path = &rest[authority_end..];
    let base_path = &base_path[..base_path.find(['?', '#']).unwrap_or(base_path.len())];
    let split = reference.find(['?', '#']).unwrap_or(reference.len());
    let (path, suffix) = reference.split_at(split);
    let joined = if path.is_empty() {
        base_path.to_owned()
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        let directory = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        format!("{directory}/{path}")
    };
    let mut resolved = crate::paths::normalize(&joined);
    let keeps_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if keeps_slash && resolved != "/" {
        resolved.push('/');
    }
    format!("{scheme}://{authority}{resolved}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_references_resolve_like_a_browser() {
        let base = "https://example.com/org/repo/blob/main/template.yaml?x=1";
        assert_eq!(
            join(base, "./skeleton/a.txt"),
            "https://example.com/org/repo/blob/main/skeleton/a.txt"
        );
        assert_eq!(
            join(base, "../other/"),
            "https://example.com/org/repo/blob/other/"
        );
        assert_eq!(join(base, "/root.txt"), "https://example.com/root.txt");
        assert_eq!(
            join(base, "https://other.example/x"),
            "https://other.example/x"
        );
        assert_eq!(join("http://h:8080/a/b", "c?d=1"), "http://h:8080/a/c?d=1");
    }

    #[test]
    fn schemes_are_what_new_url_accepts() {
        assert_eq!(scheme("https://x"), Some("https"));
        assert_eq!(scheme("file:///x"), Some("file"));
        assert_eq!(scheme("./skeleton"), None);
        assert_eq!(scheme("skeleton"), None);
        assert_eq!(scheme("../a:b"), None);
    }
}
