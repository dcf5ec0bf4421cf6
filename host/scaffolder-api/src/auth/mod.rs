//! Request authentication: turns the `Authorization` header of a request into a [`Principal`].
//!
//! Accepted credentials, in the order they are tried (Backstage's `DefaultAuthService`):
//!
//! 1. no header at all: an anonymous principal, only if [`AuthConfig::allow_anonymous`];
//!    in development mode ([`AuthConfig::serve_unverified_tokens`]: nothing is configured that
//!    could verify a token) any bearer token too, as [`PrincipalKind::Unverified`];
//! 2. a static `externalAccess` token: a service principal with the configured subject;
//! 3. a Backstage user token (`typ: vnd.backstage.user`, or an older token without `typ` and with
//!    `aud: backstage`), verified against the JWKS of [`AuthConfig::backstage_base_url`]: a user principal;
//! 4. a JWT verified by one of the `type: jwks` `externalAccess` entries: a service principal.
//!
//! Limited user tokens (`vnd.backstage.limited-user`, meant for cookie access to static assets) and
//! plugin-to-plugin tokens (`vnd.backstage.plugin`) are refused with a message saying so.
//!
//! Development mode exists because a Backstage frontend always sends a token, its signed-in
//! user's or the guest's: refusing it would make the frontend unusable against a server that
//! accepts the same request without a token. The token is not verified, so it grants nothing
//! a tokenless request does not have and is not passed on to actions; the user a Backstage user
//! token names is only recorded ([`Principal::created_by`]: the task's `createdBy` and
//! `spec.user.ref`), so the frontend's "Owned" task list works. That is no less trustworthy
//! than the rest of the mode: any local process may already create any task, and nothing in
//! this API decides what a caller may do by its user.
//!
//! This module knows nothing about axum: the API middleware hands it the raw header value and
//! turns an [`AuthError`] into a 401 `AuthenticationError` body.
//!
//! Crates. JWTs are checked with `jsonwebtoken` (the most used JWT crate, maintained, with JWK/JWKS
//! types and `exp`/`nbf`/`iss`/`aud` validation built in) on its `rust_crypto` backend, which is pure
//! Rust and so avoids building aws-lc; it supports ES256, ES384, RS256/384/512, PS256/384/512 and
//! EdDSA. Its RSA code (the `rsa` crate) has a known timing side channel in *decryption* and
//! signing (RUSTSEC-2023-0071); we only verify signatures with public keys, which is not affected.
//! Key sets are fetched with `reqwest` over rustls (ring, webpki roots) like the rest of the workspace.

mod authenticator;
mod config;
mod jwks;
mod plugin_token;
mod principal;
#[cfg(test)]
mod tests;

pub use authenticator::Authenticator;
pub use config::{AuthConfig, AuthConfigError, ExternalAccess, JwksAccess, StaticToken};
pub use plugin_token::{
    PluginAuthError, PluginCaller, PluginTokenConfig, PluginTokenVerifier, is_plugin_id,
};
pub use principal::{AuthError, Principal, PrincipalKind};
