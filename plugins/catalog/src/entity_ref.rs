//! Entity references as `@backstage/catalog-model` parses and prints them:
//! `[<kind>:][<namespace>/]<name>`, printed lowercased.

/// The parts of an entity reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityName {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

const DEFAULT_NAMESPACE: &str = "default";

/// `parseEntityRef(reference, { defaultKind, defaultNamespace })`, with its messages.
pub fn parse(
    reference: &str,
    default_kind: Option<&str>,
    default_namespace: Option<&str>,
) -> Result<EntityName, String> {
    if reference.is_empty() {
        return Err("Entity reference must not be empty".into());
    }
    let slash = reference.find('/');
    // A colon after the first slash belongs to the name.
    let colon = reference.find(':').filter(|&c| slash.is_none_or(|s| c < s));
    let kind = colon.map(|c| &reference[..c]);
    let namespace = slash.map(|s| &reference[colon.map_or(0, |c| c + 1)..s]);
    let name = &reference[colon.map_or(0, |c| c + 1).max(slash.map_or(0, |s| s + 1))..];
    if kind == Some("") || namespace == Some("") || name.is_empty() {
        return Err(format!(
            "Entity reference \"{reference}\" was not on the form [<kind>:][<namespace>/]<name>"
        ));
    }
    let textual = serde_json::Value::from(reference).to_string();
    let Some(kind) = kind.or(default_kind).filter(|k| !k.is_empty()) else {
        return Err(format!(
            "Entity reference {textual} had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        ));
    };
    // `defaultNamespace || 'default'`: an empty default counts as none.
    let namespace = namespace.unwrap_or(match default_namespace {
        Some(ns) if !ns.is_empty() => ns,
        _ => DEFAULT_NAMESPACE,
    });
    Ok(EntityName {
        kind: kind.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

impl EntityName {
    /// `stringifyEntityRef`: every part lowercased.
    pub fn to_ref(&self) -> String {
        format!(
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name.to_lowercase()
        )
    }

    /// The reference of a catalog entity (`kind` and `metadata.namespace`/`name`).
    pub fn of_entity(entity: &serde_json::Value) -> Option<Self> {
        let metadata = &entity["metadata"];
        Some(Self {
            kind: entity["kind"].as_str()?.to_owned(),
            namespace: metadata["namespace"]
                .as_str()
                .unwrap_or(DEFAULT_NAMESPACE)
                .to_owned(),
            name: metadata["name"].as_str()?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(kind: &str, namespace: &str, name: &str) -> EntityName {
        EntityName {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn parses_every_form_with_defaults() {
        assert_eq!(
            parse("component:default/svc", None, None),
            Ok(name("component", "default", "svc"))
        );
        assert_eq!(
            parse("prod/svc", Some("Component"), None),
            Ok(name("Component", "prod", "svc"))
        );
        assert_eq!(
            parse("svc", Some("group"), Some("ops")),
            Ok(name("group", "ops", "svc"))
        );
        assert_eq!(
            parse("svc", Some("group"), Some("")),
            Ok(name("group", "default", "svc"))
        );
        // The colon after the slash is part of the name.
        assert_eq!(
            parse("ns/a:b", Some("user"), None),
            Ok(name("user", "ns", "a:b"))
        );
    }

    #[test]
    fn refuses_what_backstage_refuses_with_its_messages() {
        assert_eq!(
            parse("svc", None, None),
            Err("Entity reference \"svc\" had missing or empty kind (e.g. did not start with \"component:\" or similar)".into())
        );
        assert_eq!(
            parse("component:/svc", None, None),
            Err("Entity reference \"component:/svc\" was not on the form [<kind>:][<namespace>/]<name>".into())
        );
        assert_eq!(
            parse("", None, None),
            Err("Entity reference must not be empty".into())
        );
    }

    #[test]
    fn prints_lowercased() {
        assert_eq!(
            name("Component", "Default", "My-Svc").to_ref(),
            "component:default/my-svc"
        );
    }
}
