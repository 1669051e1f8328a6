//! Image references as Flux's image-reflector-controller reads `spec.image` (go-containerregistry's
//! `name.ParseReference`, no tag): the registry host, the repository path and the canonical name.

use std::fmt;

use crate::RegistryError;

/// Docker Hub's registry host, which `docker.io` and a missing host stand for.
pub const DOCKER_HUB: &str = "index.docker.io";
const DOCKER_HUB_ALIAS: &str = "docker.io";
const DOCKER_HUB_NAMESPACE: &str = "library";
const REPOSITORY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";
const MAX_REPOSITORY_LEN: usize = 255;

/// A repository in a registry, e.g. `index.docker.io` + `library/nginx`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageName {
    /// The registry host with an optional port, e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// The repository path inside the registry, e.g. `library/nginx` or `org/team/app`.
    pub repository: String,
}

impl ImageName {
    /// Parses an image reference without tag or digest, e.g. `nginx`, `ghcr.io/org/app` or
    /// `127.0.0.1:5000/team/app`.
    pub fn parse(image: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidImage {
            image: image.to_owned(),
            reason,
        };
        if image.contains("://") {
            return Err(invalid(
                "it must not start with a URL scheme; write e.g. 'ghcr.io/org/app'".into(),
            ));
        }
        let (registry, repository) = match image.split_once('/') {
            Some((host, rest)) if host.contains('.') || host.contains(':') => (host, rest),
            _ => ("", image),
        };
        let registry = match registry {
            "" | DOCKER_HUB_ALIAS => DOCKER_HUB,
            host => host,
        };
        check_registry(registry).map_err(invalid)?;
        if let Some((_, digest)) = repository.split_once('@') {
            return Err(invalid(format!(
                "it must not contain a digest; remove '@{digest}'"
            )));
        }
        if let Some((_, tag)) = repository.rsplit_once(':') {
            return Err(invalid(format!(
                "it must not contain a tag; remove ':{tag}' (tags are listed, not named)"
            )));
        }
        check_repository(repository).map_err(invalid)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("{DOCKER_HUB_NAMESPACE}/{repository}")
        } else {
            repository.to_owned()
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository,
        })
    }
}

/// `registry/repository`, Flux's `status.canonicalImageName`.
impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// The canonical name Flux reports for `image`: `nginx` → `index.docker.io/library/nginx`.
pub fn canonical_name(image: &str) -> Result<String, RegistryError> {
    ImageName::parse(image).map(|name| name.to_string())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok());
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "'{registry}' is not a registry host[:port]; write e.g. 'ghcr.io/org/app'"
        ))
    }
}

fn check_repository(repository: &str) -> Result<(), String> {
    if let Some(bad) = repository.chars().find(|c| !REPOSITORY_CHARS.contains(*c)) {
        return Err(format!(
            "the repository '{repository}' contains '{bad}'; only lowercase letters, digits and '_-./' are allowed"
        ));
    }
    if repository.len() < 2 || repository.len() > MAX_REPOSITORY_LEN {
        return Err(format!(
            "the repository '{repository}' must be 2 to {MAX_REPOSITORY_LEN} characters long"
        ));
    }
    if repository.split('/').any(str::is_empty) {
        return Err(format!(
            "the repository '{repository}' has an empty path component"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn canonical_names_as_flux_reports_them() {
        for (image, canonical) in [
            ("nginx", "index.docker.io/library/nginx"),
            ("docker.io/nginx", "index.docker.io/library/nginx"),
            ("index.docker.io/nginx", "index.docker.io/library/nginx"),
            ("fluxcd/flux", "index.docker.io/fluxcd/flux"),
            ("docker.io/fluxcd/flux", "index.docker.io/fluxcd/flux"),
            ("localhost/app", "index.docker.io/localhost/app"),
            ("ghcr.io/org/team/app", "ghcr.io/org/team/app"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app"),
            ("localhost:5000/a/b/c", "localhost:5000/a/b/c"),
        ] {
            assert_eq!(canonical_name(image).unwrap(), canonical, "{image}");
        }
    }

    #[test]
    fn invalid_images_say_why() {
        for (image, hint) in [
            ("https://ghcr.io/app", "URL scheme"),
            ("ghcr.io/app:v1", "remove ':v1'"),
            ("127.0.0.1:5000/app:v1", "remove ':v1'"),
            ("ghcr.io/app@sha256:abc", "digest"),
            ("ghcr.io/App", "contains 'A'"),
            ("ghcr.io/a//b", "empty path component"),
            ("host:notaport/app", "not a registry host"),
            ("", "2 to 255"),
        ] {
            let message = ImageName::parse(image).unwrap_err().to_string();
            assert!(message.contains(hint), "{image}: {message}");
        }
    }

    proptest! {
        #[test]
        fn canonical_name_is_a_fixed_point(
            host in prop::option::of("[a-z]{1,8}\\.(io|com)(:[0-9]{2,4})?"),
            path in "[a-z0-9]{2,6}(/[a-z0-9_-]{1,6}){0,3}",
        ) {
            let image = host.map_or(path.clone(), |host| format!("{host}/{path}"));
            let canonical = canonical_name(&image).unwrap();
            prop_assert_eq!(canonical_name(&canonical).unwrap(), canonical.clone());
            prop_assert!(canonical.ends_with(&path));
        }
    }
}
