//! The connection registry: connection id -> `Arc<dyn Provider>`, and the one table of the
//! vendors this build knows ([`VENDORS`]). Everything that lists vendors derives from that table:
//! `provider = "..."` in the config, the inbox's `provider` filter, the spec's `ProviderKind`
//! enum and description, the capability table in docs/vendors.md and the gateway behaviour
//! suite. Adding a vendor is one entry in it (and one in `switchboard-demo`, which pairs it with
//! its simulator; docs/vendors.md lists every file a new vendor touches).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use switchboard_core::inbox::UNSORTED_CHUNK_PAGES;
use switchboard_core::{Capabilities, Checked, PagingStyle, Provider, ProviderKind};
use switchboard_upstream::{Adapter, Shared, Vendor};

use crate::config::ConnectionConfig;

/// One vendor this build knows.
#[derive(Debug)]
pub struct VendorEntry {
    /// Who it is: kind, name, capabilities, defaults.
    pub vendor: &'static Vendor,
    /// Builds a connection from its `[[connections]]` section.
    connect: fn(&ConnectionConfig, &Shared) -> anyhow::Result<Arc<dyn Provider>>,
}

impl VendorEntry {
    /// The entry of adapter `A`.
    const fn of<A: Adapter>() -> VendorEntry {
        VendorEntry {
            vendor: A::VENDOR,
            connect: connect::<A>,
        }
    }

    /// The vendor's `provider = "..."` name.
    pub fn kind(&self) -> &'static ProviderKind {
        &self.vendor.kind
    }

    /// What the vendor can do.
    pub fn capabilities(&self) -> Capabilities {
        (self.vendor.capabilities)()
    }
}

fn connect<A: Adapter>(c: &ConnectionConfig, shared: &Shared) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(A::connect(&c.id, &c.settings()?, shared)?))
}

/// Every vendor this build knows, in a stable order (the order of docs/vendors.md's table and of
/// the spec's enum).
pub static VENDORS: &[VendorEntry] = &[
    VendorEntry::of::<switchboard_zipchat::Zipchat>(),
    VendorEntry::of::<switchboard_chatbotx::Chatbotx>(),
    VendorEntry::of::<switchboard_pingback::Pingback>(),
    VendorEntry::of::<switchboard_octopush::Octopush>(),
];

/// The vendor named `kind` (its `provider = "..."` name).
pub fn vendor(kind: &str) -> Option<&'static VendorEntry> {
    VENDORS.iter().find(|v| v.vendor.kind.as_str() == kind)
}

/// The kind named `name`, if this build knows it.
pub fn kind(name: &str) -> Option<ProviderKind> {
    vendor(name).map(|v| v.kind().clone())
}

/// Where `kind` stands in [`VENDORS`] (unknown kinds last).
pub fn position(kind: &ProviderKind) -> usize {
    VENDORS
        .iter()
        .position(|v| v.kind() == kind)
        .unwrap_or(VENDORS.len())
}

/// The kinds this build knows, for people: `kinds(", ", " or ")` is
/// `zipchat, chatbotx, pingback or octopush`.
pub fn kinds(separator: &str, last: &str) -> String {
    join(
        VENDORS.iter().map(|v| v.vendor.kind.as_str()),
        separator,
        last,
    )
}

/// The vendors' names, for people: `names(", ", " and ")` is
/// `Zipchat, ChatbotX, PingBack and Octopush`.
pub fn names(separator: &str, last: &str) -> String {
    join(VENDORS.iter().map(|v| v.vendor.name), separator, last)
}

fn join<'a>(items: impl Iterator<Item = &'a str>, separator: &str, last: &str) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        None => String::new(),
        Some((only, [])) => (*only).to_owned(),
        Some((tail, init)) => format!("{}{last}{tail}", init.join(separator)),
    }
}

/// Every configured connection, by id, in id order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    connections: BTreeMap<String, Arc<dyn Provider>>,
}

fn build(c: &ConnectionConfig, shared: &Shared) -> anyhow::Result<Arc<dyn Provider>> {
    let entry = vendor(c.provider.as_str())
        .with_context(|| format!("unknown provider `{}`", c.provider))?;
    (entry.connect)(c, shared)
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

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no (501)" }.to_owned()
}

/// Renders one cell of the capability table.
type Cell = fn(&Capabilities) -> String;

/// What each vendor supports, as a Markdown table rendered from the adapters' `Capabilities`
/// (docs/vendors.md's table is this, checked by `tests/readme.rs`).
pub fn capability_table() -> String {
    let vendors: Vec<(&str, Capabilities)> = VENDORS
        .iter()
        .map(|v| (v.vendor.name, v.capabilities()))
        .collect();
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
                "yes".to_owned()
            } else {
                format!(
                    "not documented: checked as read; once seen out of order, sorted by the gateway in windows of {UNSORTED_CHUNK_PAGES} pages (`sort_window_pages`)"
                )
            }
        }),
        ("upstream page size (conversations / messages)", |c| {
            format!("{} / {}", c.max_page_size, c.max_message_page_size)
        }),
    ];
    let mut out = String::from("| |");
    for (name, _) in &vendors {
        out.push_str(&format!(" {name} |"));
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
    out.push_str("| passthrough (`/v1/connections/{id}/passthrough/{path}`) reaches |");
    for entry in VENDORS {
        out.push_str(&format!(" {} |", entry.vendor.passthrough));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_vendor_is_named_once() {
        let unique = |names: Vec<&str>| names.iter().collect::<HashSet<_>>().len() == names.len();
        assert!(unique(VENDORS.iter().map(|v| v.kind().as_str()).collect()));
    }

    #[test]
    fn lists_read_like_a_sentence() {
        let list = |items: &[&'static str]| join(items.iter().copied(), ", ", " or ");
        assert_eq!(list(&["a", "b", "c"]), "a, b or c");
        assert_eq!(list(&["a", "b"]), "a or b");
        assert_eq!(list(&["a"]), "a");
        assert_eq!(list(&[]), "");
        assert_eq!(kinds(", ", ", ").split(", ").count(), VENDORS.len());
    }
}
