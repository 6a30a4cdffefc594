//! The simulated PingBack account: generated from a seed, its sessions, and what the tests read of it.

use super::*;

impl World {
    /// A business with a team of six and `conversations` conversations (plus five of another
    /// business), from `seed`, with times before `now`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let mut g = Gen::for_vendor(seed, "pingback", now);
        let business_id = g.uuid();
        let roles: [(&str, &str, bool); 6] = [
            ("owner", "live", true),
            ("admin", "live", true),
            ("agent", "away", true),
            ("agent", "live", true),
            ("agent", "offline", true),
            ("agent", "offline", false),
        ];
        let members = roles
            .iter()
            .enumerate()
            .map(|(i, (role, status, active))| {
                let name = g.agent_name(i);
                let (email, password) = match i {
                    0 => (EMAIL.to_owned(), Some(PASSWORD)),
                    2 => (AGENT_EMAIL.to_owned(), Some(AGENT_PASSWORD)),
                    _ => (g.email_for(&name), None),
                };
                Member {
                    membership_id: g.uuid(),
                    user_id: g.uuid(),
                    email,
                    name,
                    role,
                    status,
                    is_active: *active,
                    invited_at: g.time_within(Duration::days(400)),
                    password,
                }
            })
            .collect();
        let mut world = World {
            business_created_at: g.time_within(Duration::days(500)),
            business_name: "Helpdesk Ltd".to_owned(),
            default_channel_id: g.uuid(),
            business_id,
            members,
            conversations: BTreeMap::new(),
            sessions: BTreeMap::new(),
            logins: 0,
            messages_this_month: 1_000 + g.below(2_000) as u32,
            message_limit: MONTHLY_MESSAGE_LIMIT,
            ids: Gen::for_vendor(seed ^ 0x5eed, "pingback-runtime", now),
        };
        let other_business = g.uuid();
        for i in 0..conversations {
            let conv = world.generate_conversation(&mut g, i, None);
            world.conversations.insert(conv.id.clone(), conv);
        }
        for i in 0..5.min(conversations) {
            let conv =
                world.generate_conversation(&mut g, conversations + i, Some(&other_business));
            world.conversations.insert(conv.id.clone(), conv);
        }
        world
    }

    pub(super) fn generate_conversation(
        &self,
        g: &mut Gen,
        i: usize,
        other_business: Option<&str>,
    ) -> Conv {
        let business_id = other_business.unwrap_or(&self.business_id).to_owned();
        let channel_type = *g.pick(&[
            "widget",
            "widget",
            "widget",
            "webchat",
            "email",
            "email",
            "whatsapp",
            "whatsapp",
            "telegram",
            "instagram",
            "x",
            "sms",
        ]);
        // A few conversations were opened by an agent without a first message (days ago).
        let turns = if g.chance(0.03) { 0 } else { 1 + g.below(5) };
        let created_at = g.time_within(Duration::days(30))
            - if turns == 0 {
                Duration::days(3)
            } else {
                Duration::zero()
            };
        let customer_uuid = g.uuid();
        let customer = (!g.chance(0.1)).then(|| {
            let (first, last) = g.person();
            // Some customers carry integer ids, as in the docs' own example.
            let legacy = g.chance(0.1);
            Customer {
                id: if legacy {
                    json!(40 + i)
                } else {
                    json!(customer_uuid)
                },
                business_id: if legacy { json!(7) } else { json!(business_id) },
                email: g.chance(0.7).then(|| g.email_for(&first)),
                phone: g.chance(0.4).then(|| g.phone()),
                external_id: g.chance(0.3).then(|| format!("crm-{}", 48_000 + i)),
                name: (!g.chance(0.1)).then(|| format!("{first} {last}")),
                created_at: created_at - Duration::days(g.below(90) as i64),
            }
        });
        let status = *g.pick(&[
            "open", "open", "open", "open", "pending", "pending", "resolved", "resolved", "closed",
        ]);
        let active: Vec<&Member> = self.members.iter().filter(|m| m.is_active).collect();
        let assigned = other_business.is_none() && (status != "open" || g.chance(0.5));
        let assignee_id = assigned
            .then(|| active.get(g.below(active.len())).map(|m| m.user_id.clone()))
            .flatten();
        let conv_id = g.uuid();
        let mut messages = Vec::new();
        let mut t = created_at;
        for turn in 0..turns {
            t = g.time_after(t, Duration::minutes(120));
            let attachments = if g.chance(0.08) {
                vec![json!({
                    "url": format!("https://files.pingback.live/uploads/{}/photo.jpg", g.uuid()),
                    "filename": "photo.jpg",
                    "content_type": "image/jpeg",
                })]
            } else {
                Vec::new()
            };
            messages.push(Msg {
                id: g.uuid(),
                sender_type: "customer",
                sender_id: None,
                content: g.customer_text(),
                attachments,
                created_at: t,
            });
            let replier = assignee_id.clone().or_else(|| {
                (turn == 0 && g.chance(0.3)).then(|| active[g.below(active.len())].user_id.clone())
            });
            if let Some(agent) = replier.filter(|_| turn + 1 < turns || g.chance(0.6)) {
                t = g.time_after(t, Duration::minutes(60));
                messages.push(Msg {
                    id: g.uuid(),
                    sender_type: "agent",
                    sender_id: Some(agent),
                    content: g.agent_text(),
                    attachments: Vec::new(),
                    created_at: t,
                });
            }
        }
        let first_response_at = messages
            .iter()
            .find(|m| m.sender_type == "agent")
            .map(|m| m.created_at);
        let resolved_at =
            matches!(status, "resolved" | "closed").then(|| g.time_after(t, Duration::hours(3)));
        let closed_at = (status == "closed")
            .then(|| g.time_after(resolved_at.unwrap_or(t), Duration::hours(24)));
        let updated_at = closed_at.or(resolved_at).unwrap_or(t);
        Conv {
            id: conv_id,
            customer_id: customer.as_ref().map(|_| customer_uuid),
            business_id,
            assignee_id,
            status,
            channel_type,
            channel_id: (channel_type != "x" || g.chance(0.5)).then(|| g.uuid()),
            created_at,
            updated_at,
            first_response_at,
            resolved_at,
            closed_at,
            customer,
            messages,
        }
    }
}

impl World {
    pub(super) fn own(&self, id: &str) -> Option<&Conv> {
        self.conversations
            .get(id)
            .filter(|c| c.business_id == self.business_id)
    }

    pub(super) fn own_mut(&mut self, id: &str) -> Option<&mut Conv> {
        let business = self.business_id.clone();
        self.conversations
            .get_mut(id)
            .filter(|c| c.business_id == business)
    }

    pub(super) fn issue_token(&mut self, caller: Caller) -> String {
        self.logins += 1;
        let token = format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{:016x}{:08x}.{:016x}",
            self.ids.u64(),
            self.logins,
            self.ids.u64()
        );
        self.sessions.insert(token.clone(), caller);
        token
    }

    /// The business the login belongs to.
    pub fn business_id(&self) -> &str {
        &self.business_id
    }

    /// Ids of the business's conversations (those of the other business are excluded).
    pub fn conversation_ids(&self) -> Vec<String> {
        self.conversations
            .values()
            .filter(|c| c.business_id == self.business_id)
            .map(|c| c.id.clone())
            .collect()
    }

    /// How many messages a conversation holds.
    pub fn message_count(&self, conversation: &str) -> usize {
        self.conversations
            .get(conversation)
            .map_or(0, |c| c.messages.len())
    }

    /// Ids of conversations that belong to another business (404 through this login).
    pub fn foreign_conversation_ids(&self) -> Vec<String> {
        self.conversations
            .values()
            .filter(|c| c.business_id != self.business_id)
            .map(|c| c.id.clone())
            .collect()
    }

    /// The `user_id`s of the active team members (the assignable agents).
    pub fn active_agent_ids(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.is_active)
            .map(|m| m.user_id.clone())
            .collect()
    }

    /// The `user_id` of the member who logs in with `email`.
    pub fn user_id_of(&self, email: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.email == email)
            .map(|m| m.user_id.clone())
    }

    /// A conversation's status, assignee and message count, for tests that read writes back.
    pub fn conversation_state(&self, id: &str) -> Option<(String, Option<String>, usize)> {
        self.own(id)
            .map(|c| (c.status.to_owned(), c.assignee_id.clone(), c.messages.len()))
    }

    /// Invalidates every issued token (as a logout, a password change or an expiry would).
    pub fn revoke_tokens(&mut self) {
        self.sessions.clear();
    }

    /// How many successful logins the API has served.
    pub fn logins(&self) -> u64 {
        self.logins
    }

    /// Sets the monthly message quota (tests that exhaust it).
    pub fn set_message_limit(&mut self, limit: u32) {
        self.message_limit = limit;
    }

    /// Messages counted against this month's quota.
    pub fn messages_this_month(&self) -> u32 {
        self.messages_this_month
    }
}

/// The live account's rules (PingBack has no bot): a customer writes in one of the business's
/// open or pending conversations; an agent resolves one.
impl World {
    pub(super) fn live_tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        let active: Vec<String> = self
            .conversations
            .values()
            .filter(|c| c.business_id == self.business_id && matches!(c.status, "open" | "pending"))
            .map(|c| c.id.clone())
            .collect();
        if active.is_empty() {
            return None;
        }
        let id = g.pick(&active).clone();
        let agent = g.below(10) >= 8;
        let message_id = g.uuid();
        let content = g.customer_text();
        let c = self.conversations.get_mut(&id)?;
        let last = c.messages.last().map_or(c.updated_at, |m| m.created_at);
        let t = now.max(c.updated_at).max(last);
        c.updated_at = t;
        if agent {
            c.status = "resolved";
            c.resolved_at = Some(t);
            return Some(Tick {
                conversation: id,
                kind: ChangeKind::Status,
                message: None,
                by: "agent",
            });
        }
        c.messages.push(Msg {
            id: message_id.clone(),
            sender_type: "customer",
            sender_id: None,
            content,
            attachments: Vec::new(),
            created_at: t,
        });
        Some(Tick {
            conversation: id,
            kind: ChangeKind::Message,
            message: Some(message_id),
            by: "customer",
        })
    }
}
