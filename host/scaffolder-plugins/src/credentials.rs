//! Registry credentials, found as Docker finds them: `SCAFFOLDER_REGISTRY_USERNAME` and
//! `SCAFFOLDER_REGISTRY_PASSWORD` first, then the docker configuration
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`) through `docker_credential`:
//! its `auths` entries, and the credential helpers it names (`credHelpers`, `credsStore`:
//! `docker-credential-ecr-login`, `-gcloud`, `-acr-env`, ...). Without any, anonymous.

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

/// The key under which `docker login` keeps Docker Hub's credentials.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The credentials to send to `registry` (`host[:port]`). A credential helper that fails
/// is logged and the registry is asked anonymously, so a public plugin still loads and a
/// private one fails with the registry's own answer.
pub async fn registry_auth(registry: &str) -> RegistryAuth {
    if let (Ok(user), Ok(password)) = (
        std::env::var("SCAFFOLDER_REGISTRY_USERNAME"),
        std::env::var("SCAFFOLDER_REGISTRY_PASSWORD"),
    ) {
        return RegistryAuth::Basic(user, password);
    }
    let server = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_SERVER,
        other => other,
    }
    .to_owned();
    // A credential helper is a program: run it off the async threads.
    let found =
        tokio::task::spawn_blocking(move || docker_credential::get_credential(&server)).await;
    match found {
        Ok(Ok(DockerCredential::UsernamePassword(user, password))) => {
            RegistryAuth::Basic(user, password)
        }
        Ok(Ok(DockerCredential::IdentityToken(_))) => {
            tracing::warn!(
                "the docker configuration holds an identity token for {registry}, which is not \
                 a registry password; asking the registry anonymously. Set \
                 SCAFFOLDER_REGISTRY_USERNAME and SCAFFOLDER_REGISTRY_PASSWORD instead"
            );
            RegistryAuth::Anonymous
        }
        Ok(Err(
            CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError
            | CredentialRetrievalError::NoCredentialConfigured,
        )) => RegistryAuth::Anonymous,
        Ok(Err(err)) => {
            tracing::warn!(
                "cannot read the credentials for {registry} from the docker configuration \
                 ({err}); asking the registry anonymously"
            );
            RegistryAuth::Anonymous
        }
        Err(err) => {
            tracing::warn!("looking up the credentials for {registry} stopped ({err})");
            RegistryAuth::Anonymous
        }
    }
}
