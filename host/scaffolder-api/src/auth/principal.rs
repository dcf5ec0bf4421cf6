//! Who a request comes from ([`Principal`]) and why it could not be told ([`AuthError`]).

use std::fmt;

/// The authenticated caller of a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who the caller is.
    pub kind: PrincipalKind,
    /// The raw bearer token (stored as the task's `backstageToken` secret), `None` for anonymous.
    pub token: Option<String>,
}

/// The kinds of principal Backstage distinguishes (`BackstagePrincipalTypes`, minus `none` = anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A user signed in to Backstage; `user_ref` is the `sub` of the token, e.g. `user:default/jane`.
    User {
        /// The user's entity ref.
        user_ref: String,
    },
    /// A service calling with an external access token, e.g. `ci-bot` or `external:github:repo:acme/x`.
    Service {
        /// The service's subject.
        subject: String,
    },
    /// No credentials, accepted because anonymous access is allowed.
    Anonymous,
    /// A bearer token served without verification in development mode
    /// ([`AuthConfig::serve_unverified_tokens`]): it has an anonymous caller's rights.
    Unverified {
        /// The `sub` of a Backstage user token, read without checking the signature; never an
        /// identity to decide anything by, only a name to record ([`Principal::created_by`]).
        claimed_user_ref: Option<String>,
    },
}

impl Principal {
    /// The verified user's entity ref; `None` for services, anonymous and unverified callers.
    pub fn user_ref(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::User { user_ref } => Some(user_ref),
            PrincipalKind::Service { .. }
            | PrincipalKind::Anonymous
            | PrincipalKind::Unverified { .. } => None,
        }
    }

    /// The user a task records as `createdBy` and `spec.user.ref`: the verified user, or in
    /// development mode the user an unverified Backstage token names. Backstage records no
    /// creator for service principals, nor do we. Not for deciding what the caller may do.
    pub fn created_by(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Unverified { claimed_user_ref } => claimed_user_ref.as_deref(),
            _ => self.user_ref(),
        }
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("kind", &self.kind)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A request could not be authenticated; the API answers 401 `AuthenticationError` with `message`.
///
/// The message never contains the presented token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// What was wrong, in Backstage's wording where it has one (`Missing credentials`).
    pub message: String,
}

impl AuthError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}
