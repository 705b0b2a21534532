//! Which container a request means. A [`Selector`] (today `--container-id`; id labels and
//! workspace folders come with their issue) is resolved through the [`Runtime`] into a
//! [`Target`]: the running container to exec in. A stopped container is an error here, before
//! any exec is attempted.

use crate::runtime::{Container, Runtime, RuntimeError};

/// How the user named the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `--container-id`: a full id, a name or a unique id prefix.
    ContainerId(String),
}

/// The container a request resolved to.
#[derive(Debug, Clone)]
pub struct Target {
    pub container: Container,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(
        "Container {name} is not running (state: {status}). Start it with `docker start {name}`."
    )]
    NotRunning { name: String, status: String },
}

/// Resolves a selector to a running container.
pub async fn resolve(runtime: &dyn Runtime, selector: &Selector) -> Result<Target, DiscoveryError> {
    let container = match selector {
        Selector::ContainerId(id) => runtime.inspect(id).await?,
    };
    if !container.running {
        return Err(DiscoveryError::NotRunning {
            name: container.name,
            status: container.status,
        });
    }
    Ok(Target { container })
}
