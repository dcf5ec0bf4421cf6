//! Query strings as Backstage's OpenAPI validator treats them: form-style, repeated keys
//! for arrays, and any parameter the route does not document is a 400.

use crate::error::ApiError;

/// The decoded `key=value` pairs of a request's query.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses the query and rejects parameters not in `allowed`.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let query = Self::parse_any(query);
        if let Some((key, _)) = query
            .pairs
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            return Err(ApiError::input(format!("Unknown query parameter '{key}'")));
        }
        Ok(query)
    }

    /// Parses the query of an undocumented route: any parameter is accepted.
    pub fn parse_any(query: Option<&str>) -> Self {
        Self {
            pairs: form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every value of a repeatable parameter compared with stored text: a NUL
    /// character, which no stored text has and PostgreSQL refuses in a query, is a 400.
    pub fn texts(&self, key: &str) -> Result<Vec<String>, ApiError> {
        let values = self.all(key);
        if values.iter().any(|v| v.contains('\0')) {
            return Err(ApiError::input(format!(
                "request/query/{key} must not contain NUL characters"
            )));
        }
        Ok(values)
    }

    /// A single integer parameter with a lower bound, with the validator's messages.
    pub fn integer(&self, key: &str, minimum: i64) -> Result<Option<i64>, ApiError> {
        let Some((_, value)) = self.pairs.iter().rev().find(|(k, _)| k == key) else {
            return Ok(None);
        };
        let n: i64 = value
            .parse()
            .map_err(|_| ApiError::input(format!("request/query/{key} must be integer")))?;
        if n < minimum {
            return Err(ApiError::input(format!(
                "request/query/{key} must be >= {minimum}"
            )));
        }
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_rejected() {
        let err = Query::parse(Some("limit=1&bogus=2"), &["limit"])
            .err()
            .unwrap();
        assert!(
            matches!(err, ApiError::Standard { message, .. } if message == "Unknown query parameter 'bogus'")
        );
    }

    #[test]
    fn repeated_keys_and_percent_encoding() {
        let q = Query::parse(
            Some("createdBy=user%3Adefault%2Fa&createdBy=b"),
            &["createdBy"],
        )
        .unwrap();
        assert_eq!(q.all("createdBy"), vec!["user:default/a", "b"]);
    }

    #[test]
    fn texts_have_no_nul() {
        let q = Query::parse(Some("status=open&status=a%00"), &["status"]).unwrap();
        assert!(q.texts("status").is_err());
        let q = Query::parse(Some("status=open&status=%FF"), &["status"]).unwrap();
        assert_eq!(q.texts("status").unwrap(), vec!["open", "\u{FFFD}"]);
    }

    #[test]
    fn integers_are_checked() {
        let q = Query::parse(Some("limit=abc"), &["limit"]).unwrap();
        assert!(q.integer("limit", 0).is_err());
        let q = Query::parse(Some("limit=-1"), &["limit"]).unwrap();
        assert!(q.integer("limit", 0).is_err());
        let q = Query::parse(Some("limit=5"), &["limit"]).unwrap();
        assert_eq!(q.integer("limit", 0).unwrap(), Some(5));
    }
}
