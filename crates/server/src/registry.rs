//! The connection registry: connection id -> `Arc<dyn Provider>`. The one place that knows every
//! vendor; adding one is one line here.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use switchboard_core::{Provider, ProviderKind};

use crate::config::ConnectionConfig;

/// Every configured connection, by id, in id order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    connections: BTreeMap<String, Arc<dyn Provider>>,
}

fn build(c: &ConnectionConfig) -> anyhow::Result<Arc<dyn Provider>> {
    let provider: Arc<dyn Provider> = match c.provider {
        ProviderKind::Zipchat => {
            Arc::new(switchboard_zipchat::Zipchat::new(&c.id, &c.settings()?)?)
        }
        ProviderKind::Chatbotx => {
            Arc::new(switchboard_chatbotx::Chatbotx::new(&c.id, &c.settings()?)?)
        }
        ProviderKind::Octopush => {
            Arc::new(switchboard_octopush::Octopush::new(&c.id, &c.settings()?)?)
        }
        other => anyhow::bail!(
            "connection `{}`: the {other} adapter is not available in this build",
            c.id
        ),
    };
    Ok(provider)
}

impl Registry {
    /// Builds every connection of the config.
    pub fn from_config(connections: &[ConnectionConfig]) -> anyhow::Result<Registry> {
        let mut registry = Registry::default();
        for c in connections {
            let provider = build(c).with_context(|| format!("[[connections]] `{}`", c.id))?;
            registry.insert(provider);
        }
        Ok(registry)
    }

    /// Adds a connection (tests add in-memory providers).
    pub fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.connections
            .insert(provider.info().connection.clone(), provider);
    }

    /// The connection with `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.connections.get(id)
    }

    /// Every connection, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.connections.values()
    }
}
