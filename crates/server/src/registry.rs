//! The connection registry: connection id -> `Arc<dyn Provider>`. The one place that knows every
//! vendor; adding one is one line here.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use switchboard_core::{Capabilities, Checked, PagingStyle, Provider, ProviderKind};

use switchboard_upstream::Shared;

use crate::config::ConnectionConfig;

/// Every configured connection, by id, in id order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    connections: BTreeMap<String, Arc<dyn Provider>>,
}

fn build(c: &ConnectionConfig, shared: &Shared) -> anyhow::Result<Arc<dyn Provider>> {
    let provider: Arc<dyn Provider> = match c.provider {
        ProviderKind::Zipchat => Arc::new(switchboard_zipchat::Zipchat::new(
            &c.id,
            &c.settings()?,
            shared,
        )?),
        ProviderKind::Chatbotx => Arc::new(switchboard_chatbotx::Chatbotx::new(
            &c.id,
            &c.settings()?,
            shared,
        )?),
        ProviderKind::Pingback => Arc::new(switchboard_pingback::Pingback::new(
            &c.id,
            &c.settings()?,
            shared,
        )?),
        ProviderKind::Octopush => Arc::new(switchboard_octopush::Octopush::new(
            &c.id,
            &c.settings()?,
            shared,
        )?),
    };
    Ok(provider)
}

impl Registry {
    /// Builds every connection of the config.
    pub fn from_config(
        connections: &[ConnectionConfig],
        shared: &Shared,
    ) -> anyhow::Result<Registry> {
        let mut registry = Registry::default();
        for c in connections {
            let provider =
                build(c, shared).with_context(|| format!("[[connections]] `{}`", c.id))?;
            registry.insert(provider);
        }
        Ok(registry)
    }

    /// Adds a connection (tests add in-memory providers), behind its capability check: an
    /// operation its vendor cannot do is refused before the adapter is called.
    pub fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.connections
            .insert(provider.info().connection.clone(), Checked::wrap(provider));
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

/// Every vendor this build knows, with its capabilities, in a stable order.
pub fn vendors() -> Vec<(ProviderKind, Capabilities)> {
    vec![
        (ProviderKind::Zipchat, switchboard_zipchat::capabilities()),
        (ProviderKind::Chatbotx, switchboard_chatbotx::capabilities()),
        (ProviderKind::Pingback, switchboard_pingback::capabilities()),
        (ProviderKind::Octopush, switchboard_octopush::capabilities()),
    ]
}

fn vendor_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Zipchat => "Zipchat",
        ProviderKind::Chatbotx => "ChatbotX",
        ProviderKind::Pingback => "PingBack",
        ProviderKind::Octopush => "Octopush",
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no (501)" }.to_owned()
}

/// Renders one cell of the capability table.
type Cell = fn(&Capabilities) -> String;

/// What each vendor supports, as a Markdown table rendered from the adapters' `Capabilities`
/// (the README's table is this, checked by a test).
pub fn capability_table() -> String {
    let vendors = vendors();
    let rows: Vec<(&str, Cell)> = vec![
        ("list the inbox", |c| yes_no(c.list_conversations)),
        ("read one conversation", |c| yes_no(c.get_conversation)),
        ("read messages", |c| yes_no(c.list_messages)),
        ("list agents", |c| yes_no(c.list_agents)),
        ("take over (assign to an agent)", |c| yes_no(c.assign)),
        ("hand back / unassign", |c| yes_no(c.unassign)),
        ("reply", |c| yes_no(c.send_message)),
        ("set status", |c| {
            if c.set_status.is_empty() {
                "no (501)".to_owned()
            } else {
                let names: Vec<&str> = c.set_status.iter().map(|s| s.as_str()).collect();
                names.join(", ")
            }
        }),
        ("`Idempotency-Key` passed to the vendor", |c| {
            if c.idempotent_replies { "yes" } else { "no" }.to_owned()
        }),
        ("filters the vendor applies (others: the gateway)", |c| {
            let f = c.native_filters;
            let names: Vec<&str> = [
                (f.status, "status"),
                (f.mode, "mode"),
                (f.channel, "channel"),
                (f.assignee, "assignee_id"),
                (f.updated_since, "updated_since"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        }),
        ("upstream paging", |c| {
            match c.paging {
                PagingStyle::PageNumber => "page number",
                PagingStyle::Cursor => "cursor",
                PagingStyle::Single => "one response",
            }
            .to_owned()
        }),
        ("list sorted by activity", |c| {
            if c.sorted_by_activity {
                "yes"
            } else {
                "no: sorted by the gateway in windows of 10 pages"
            }
            .to_owned()
        }),
        ("upstream page size (conversations / messages)", |c| {
            format!("{} / {}", c.max_page_size, c.max_message_page_size)
        }),
    ];
    let mut out = String::from("| |");
    for (kind, _) in &vendors {
        out.push_str(&format!(" {} |", vendor_name(*kind)));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(vendors.len()));
    out.push('\n');
    for (label, cell) in rows {
        out.push_str(&format!("| {label} |"));
        for (_, caps) in &vendors {
            out.push_str(&format!(" {} |", cell(caps)));
        }
        out.push('\n');
    }
    out
}
