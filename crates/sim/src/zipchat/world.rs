//! The simulated Zipchat account: generated from a seed, and what the tests read of it.

use super::*;

impl World {
    /// A world of `conversations` conversations in chat 1 (and a few in chat 2), from `seed`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let mut g = Gen::for_vendor(seed, "zipchat", now);
        let mut users = BTreeMap::new();
        for (chat, first_id) in [(CHAT_ID, 7u64), (OTHER_CHAT_ID, 50)] {
            let list = (0..4)
                .map(|i| {
                    let name = g.agent_name(i + (first_id as usize));
                    let first = name.split(' ').next().unwrap_or("agent").to_owned();
                    User {
                        id: first_id + i as u64,
                        email: format!("{}@shop.example.com", ascii_local(&first)),
                        name,
                        avatar_url: (i % 2 == 0).then(|| {
                            format!(
                                "https://cdn.example.com/avatars/{}.png",
                                first_id + i as u64
                            )
                        }),
                    }
                })
                .collect();
            users.insert(chat, list);
        }
        let mut world = World {
            conversations: BTreeMap::new(),
            users,
            next_message_id: 1,
            windows: BTreeMap::new(),
            quota: QUOTA,
        };
        let others = 5.min(conversations);
        for i in 0..conversations + others {
            let (chat, id) = if i < conversations {
                (CHAT_ID, 12_000 + i as u64)
            } else {
                (OTHER_CHAT_ID, 90_000 + i as u64)
            };
            let conv = world.generate_conversation(&mut g, chat, id);
            world.conversations.insert(id, conv);
        }
        world
    }

    pub(super) fn generate_conversation(&mut self, g: &mut Gen, chat_id: u64, id: u64) -> Conv {
        let channel = *g.pick(&[
            "web",
            "web",
            "web",
            "web",
            "whatsapp",
            "whatsapp",
            "instagram",
            "messenger",
            "email",
            "chat",
        ]);
        let created_at = g.time_within(Duration::days(30));
        let lead = (!g.chance(0.15)).then(|| {
            let (first, last) = g.person();
            Lead {
                id: 100 + id,
                email: (!g.chance(0.2)).then(|| g.email_for(&first)),
                phone_number: g.chance(0.5).then(|| g.phone()),
                email_marketing_consent: g.chance(0.5),
                shopify_customer_id: g.chance(0.3).then(|| 7_000_000 + id),
                first_name: first,
                last_name: last,
            }
        });
        let manual = g.chance(0.25);
        let assignable: Vec<u64> = self
            .users
            .get(&chat_id)
            .map(|u| u.iter().map(|u| u.id).collect())
            .unwrap_or_default();
        let assignee = manual.then(|| *g.pick(&assignable));
        let mut t = created_at;
        let mut messages = Vec::new();
        let turns = 1 + g.below(4);
        for turn in 0..turns {
            messages.push(self.message(g, "user", false, None, &mut t));
            let reply = if turn % 3 == 2 && g.chance(0.5) {
                json!([
                    {"type": "image", "source": {"url": format!("https://cdn.example.com/products/{}.jpg", id)}},
                    {"type": "text", "text": "Here is the product you asked about."}
                ])
                .to_string()
            } else {
                g.bot_text()
            };
            let m = self.message(g, "assistant", false, None, &mut t);
            messages.push(Msg {
                message: reply,
                ..m
            });
        }
        if let Some(agent) = assignee {
            let text = g.agent_text();
            let m = self.message(g, "assistant", true, Some(agent), &mut t);
            messages.push(Msg { message: text, ..m });
        }
        let escalated = manual || g.chance(0.15);
        let last_escalated_at = escalated.then(|| messages[messages.len() / 2].created_at);
        let last_escalation_resolved_at = (escalated && g.chance(0.4)).then_some(t);
        Conv {
            id,
            chat_id,
            created_at,
            last_message_at: t,
            channel,
            manual_reply_mode: manual,
            last_escalated_at,
            last_escalation_resolved_at,
            assignee,
            lead,
            messages,
        }
    }

    pub(super) fn message(
        &mut self,
        g: &mut Gen,
        role: &'static str,
        manual: bool,
        sender: Option<u64>,
        t: &mut DateTime<Utc>,
    ) -> Msg {
        *t = g.time_after(*t, Duration::minutes(90));
        let id = self.next_message_id;
        self.next_message_id += 1;
        Msg {
            id,
            role,
            message: if role == "user" {
                g.customer_text()
            } else {
                String::new()
            },
            manual_reply: manual,
            sender_id: sender,
            created_at: *t,
        }
    }

    /// Overrides the quota (tests that need more headroom than the real 120 / 60 s).
    pub fn set_quota(&mut self, quota: u32) {
        self.quota = quota;
    }

    pub(super) fn user(&self, chat: u64, id: u64) -> Option<&User> {
        self.users.get(&chat)?.iter().find(|u| u.id == id)
    }
}

impl World {
    /// Every conversation of `chat` as `(id, last_message_at)`, for tests that compare.
    pub fn conversation_ids(&self, chat: u64) -> Vec<u64> {
        self.conversations
            .values()
            .filter(|c| c.chat_id == chat)
            .map(|c| c.id)
            .collect()
    }

    /// The conversation of `chat` with the latest message.
    pub fn newest_conversation(&self, chat: u64) -> Option<u64> {
        self.conversations
            .values()
            .filter(|c| c.chat_id == chat)
            .max_by(|a, b| {
                a.last_message_at
                    .cmp(&b.last_message_at)
                    .then(a.id.cmp(&b.id))
            })
            .map(|c| c.id)
    }

    /// How many messages a conversation holds (tests read replies back through this).
    pub fn message_count(&self, id: u64) -> usize {
        self.conversations.get(&id).map_or(0, |c| c.messages.len())
    }
}

pub(super) fn ascii_local(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The live account's rules (Zipchat has no conversation status): a customer writes; the AI
/// answers a customer's last message where the conversation is in AI mode.
impl World {
    pub(super) fn live_tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        // Only the chat the simulator's integration key reads: a change in the other chat is
        // one no connection of the demo can see.
        let all: Vec<u64> = self
            .conversations
            .values()
            .filter(|c| c.chat_id == CHAT_ID)
            .map(|c| c.id)
            .collect();
        let awaiting_ai: Vec<u64> = self
            .conversations
            .values()
            .filter(|c| c.chat_id == CHAT_ID)
            .filter(|c| !c.manual_reply_mode && c.messages.last().is_some_and(|m| m.role == "user"))
            .map(|c| c.id)
            .collect();
        let (id, by) = if !awaiting_ai.is_empty() && g.below(10) < 4 {
            (*g.pick(&awaiting_ai), "bot")
        } else if !all.is_empty() {
            (*g.pick(&all), "customer")
        } else {
            return None;
        };
        let message_id = self.next_message_id;
        self.next_message_id += 1;
        let text = if by == "bot" {
            g.bot_text()
        } else {
            g.customer_text()
        };
        let c = self.conversations.get_mut(&id)?;
        let created_at = now.max(c.last_message_at);
        c.messages.push(Msg {
            id: message_id,
            role: if by == "bot" { "assistant" } else { "user" },
            message: text,
            manual_reply: false,
            sender_id: None,
            created_at,
        });
        c.last_message_at = created_at;
        Some(Tick {
            conversation: id.to_string(),
            kind: ChangeKind::Message,
            message: Some(message_id.to_string()),
            by,
        })
    }
}
