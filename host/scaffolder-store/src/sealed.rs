//! Task secrets encrypted at rest: what the `tasks.secrets` column holds when the operator
//! configured a [`SecretsKey`].
//!
//! The format: `v1:` then base64 (standard alphabet, padded) of a random 96-bit nonce, the
//! ChaCha20-Poly1305 ciphertext of the secrets' JSON text, and its 16-byte tag (RFC 8439).
//! The task id is the associated data, so a value opens only for the task it was written
//! for: copying one task's column onto another's gives an error, not the other's secrets.
//! A stored value without the prefix is plaintext JSON (written without a key, or before
//! encryption existed), and is read as it is, so an upgrade loses no running task.
//!
//! A random nonce per write is safe here: one key seals a few values per task, far below
//! the 2^32 messages after which random 96-bit nonces risk repeating.
//!
//! Deliberately absent: key rotation. One key is in force; a value sealed with another key
//! does not open, and the error tells the operator that the key changed (putting the old
//! key back lets the task finish). Secrets live only until their task ends, so a new key
//! needs no re-encryption once the tasks running at the change have ended.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

/// The prefix of a sealed value; the version says how the rest is read.
const V1: &str = "v1:";
const NONCE_LEN: usize = 12;

/// The 32-byte key task secrets are encrypted with (`scaffolder.taskSecrets.key`). Its
/// `Debug` prints no key material; the bytes are wiped when the last clone is dropped.
#[derive(Clone)]
pub struct SecretsKey(Arc<Zeroizing<[u8; 32]>>);

impl SecretsKey {
    /// Reads a key written as base64 (`openssl rand -base64 32`); surrounding whitespace
    /// is ignored.
    pub fn from_base64(text: &str) -> Result<Self> {
        let invalid = |reason: String| StoreError::InvalidSecretsKey { reason };
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|err| invalid(format!("not base64: {err}")))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            invalid(format!(
                "expected 32 bytes, found {} after base64 decoding",
                bytes.len()
            ))
        })?;
        Ok(Self(Arc::new(Zeroizing::new(key))))
    }

    /// A new random key (for tests; operators create theirs with openssl).
    pub fn generate() -> Self {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        Self(Arc::new(Zeroizing::new(key.into())))
    }

    /// The key as base64, the form configuration holds.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.0.as_slice()))
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey([redacted])")
    }
}

/// The stored form of a task's secrets (their JSON text): sealed when there is a key.
pub(crate) fn seal(key: Option<&SecretsKey>, task_id: &str, json: String) -> String {
    let Some(key) = key else {
        return json;
    };
    let json = Zeroizing::new(json);
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: json.as_bytes(),
                aad: task_id.as_bytes(),
            },
        )
        .expect("ChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    format!("{V1}{}", STANDARD.encode(sealed))
}

/// The JSON text of a task's stored secrets: opened when sealed, as it is when plaintext.
pub(crate) fn open(
    key: Option<&SecretsKey>,
    task_id: &str,
    stored: Option<String>,
) -> Result<Option<String>> {
    let Some(stored) = stored else {
        return Ok(None);
    };
    let Some(body) = stored.strip_prefix(V1) else {
        return Ok(Some(stored));
    };
    let unreadable = |reason: &str| StoreError::UnreadableSecrets {
        task_id: task_id.into(),
        reason: reason.into(),
    };
    let Some(key) = key else {
        return Err(unreadable(
            "they are encrypted and no key is configured; set scaffolder.taskSecrets.key to the \
             key they were written with",
        ));
    };
    let sealed = STANDARD
        .decode(body)
        .map_err(|_| unreadable("the stored value is not valid base64"))?;
    if sealed.len() < NONCE_LEN {
        return Err(unreadable("the stored value is too short"));
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let json = key
        .cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: task_id.as_bytes(),
            },
        )
        .map_err(|_| {
            unreadable(
                "they do not decrypt with the configured key: scaffolder.taskSecrets.key was \
                 changed since they were written (configure the previous key until the task has \
                 ended), or the stored value was altered",
            )
        })?;
    String::from_utf8(json)
        .map(Some)
        .map_err(|_| unreadable("the decrypted value is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_and_task() {
        let key = SecretsKey::generate();
        let sealed = seal(Some(&key), "t1", r#"{"token":"s3cr3t"}"#.into());
        assert!(sealed.starts_with("v1:"), "{sealed}");
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(
            open(Some(&key), "t1", Some(sealed)).unwrap().as_deref(),
            Some(r#"{"token":"s3cr3t"}"#)
        );
    }

    #[test]
    fn each_write_has_its_own_nonce() {
        let key = SecretsKey::generate();
        let a = seal(Some(&key), "t", "{}".into());
        let b = seal(Some(&key), "t", "{}".into());
        assert_ne!(a, b);
    }

    #[test]
    fn a_value_moved_to_another_task_does_not_open() {
        let key = SecretsKey::generate();
        let sealed = seal(Some(&key), "t1", "{}".into());
        let err = open(Some(&key), "t2", Some(sealed)).unwrap_err();
        assert!(err.to_string().contains("task 't2'"), "{err}");
    }

    #[test]
    fn another_key_is_reported_as_a_changed_key() {
        let sealed = seal(Some(&SecretsKey::generate()), "t", "{}".into());
        let err = open(Some(&SecretsKey::generate()), "t", Some(sealed.clone())).unwrap_err();
        assert!(
            err.to_string()
                .contains("scaffolder.taskSecrets.key was changed"),
            "{err}"
        );
        let err = open(None, "t", Some(sealed)).unwrap_err();
        assert!(err.to_string().contains("no key is configured"), "{err}");
    }

    #[test]
    fn plaintext_is_read_as_it_is() {
        let key = SecretsKey::generate();
        assert_eq!(seal(None, "t", "{}".into()), "{}");
        assert_eq!(
            open(Some(&key), "t", Some(r#"{"a":"b"}"#.into()))
                .unwrap()
                .as_deref(),
            Some(r#"{"a":"b"}"#)
        );
        assert_eq!(open(Some(&key), "t", None).unwrap(), None);
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        let key = SecretsKey::generate();
        let again = SecretsKey::from_base64(&format!(" {}\n", key.to_base64())).unwrap();
        assert_eq!(again.to_base64(), key.to_base64());
        for (text, expected) in [
            ("not base64!", "not base64"),
            ("c2hvcnQ=", "expected 32 bytes, found 5"),
        ] {
            let err = SecretsKey::from_base64(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("openssl rand -base64 32"), "{err}");
        }
        assert_eq!(format!("{key:?}"), "SecretsKey([redacted])");
    }
}
