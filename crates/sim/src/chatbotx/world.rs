//! The simulated ChatbotX workspace: generated from a seed, and what the tests read of it.

use super::*;

impl World {
    /// A workspace of `conversations` conversations (a few of them with blocked contacts, so
    /// hidden from the default lists), six members, two inbox teams and eight channel inboxes,
    /// from `seed`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let mut g = Gen::for_vendor(seed, "chatbotx", millis(now));
        let members = (0..6)
            .map(|i| {
                let name = g.agent_name(i);
                let first = name
                    .split(' ')
                    .next()
                    .unwrap_or("agent")
                    .to_ascii_lowercase();
                let user = User {
                    id: FIRST_USER + i as u64,
                    email: format!("{first}@shop.example.com"),
                    image: (i % 3 != 2).then(|| {
                        format!(
                            "https://cdn.example.com/avatars/{}.png",
                            FIRST_USER + i as u64
                        )
                    }),
                    created_at: g.time_within(Duration::days(400)),
                    name,
                };
                Member {
                    id: FIRST_MEMBER + i as u64 * 3,
                    role: match i {
                        0 => "owner",
                        1 => "admin",
                        _ => "member",
                    },
                    user,
                }
            })
            .collect();
        let teams = [(0u64, "Support FR"), (1, "Returns & Refunds")]
            .into_iter()
            .map(|(i, name)| Team {
                id: FIRST_TEAM + i,
                name,
                created_at: g.time_within(Duration::days(300)),
            })
            .collect();
        let inboxes = CHANNELS
            .iter()
            .enumerate()
            .map(|(i, channel)| Inbox {
                id: FIRST_INBOX + i as u64,
                channel,
                name: format!("Shop {channel}"),
            })
            .collect();
        let mut world = World {
            conversations: BTreeMap::new(),
            members,
            teams,
            inboxes,
            next_id: FIRST_OBJECT,
            window: (0, 0),
            quota: QUOTA,
            idempotency: HashMap::new(),
        };
        let mut previous: Option<DateTime<Utc>> = None;
        for i in 0..conversations {
            let mut conv = world.generate_conversation(&mut g, i);
            // A few conversations share their activity time with the previous one: the list
            // then orders them by id.
            if let Some(t) = previous.filter(|_| g.chance(0.05)) {
                conv.last_activity_at = t.max(conv.created_at);
            }
            previous = Some(conv.last_activity_at);
            world.conversations.insert(conv.id, conv);
        }
        world
    }

    pub(super) fn object_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn generate_conversation(&mut self, g: &mut Gen, i: usize) -> Conv {
        let weights = [0usize, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7];
        let inbox = *g.pick(&weights);
        let channel = CHANNELS[inbox];
        let created_at = g.time_within(Duration::days(45));
        let (first, last) = g.person();
        let contact = Contact {
            id: FIRST_CONTACT + i as u64,
            email: (channel == "smtp" || g.chance(0.6)).then(|| g.email_for(&first)),
            phone: (channel == "whatsapp" || g.chance(0.3)).then(|| g.phone()),
            avatar: g.chance(0.3).then(|| {
                format!(
                    "https://cdn.example.com/contacts/{}.jpg",
                    FIRST_CONTACT + i as u64
                )
            }),
            locale: g
                .chance(0.7)
                .then(|| *g.pick(&["en", "fr", "de", "ja", "es", "vi"])),
            first_name: (!g.chance(0.05)).then_some(first),
            last_name: (!g.chance(0.1)).then_some(last),
            blocked_at: g.chance(0.03).then_some(created_at),
            created_at,
        };
        let mut contact_inboxes = vec![ContactInbox {
            id: self.object_id(),
            inbox,
        }];
        if g.chance(0.15) {
            let other = (inbox + 1 + g.below(CHANNELS.len() - 1)) % CHANNELS.len();
            contact_inboxes.push(ContactInbox {
                id: self.object_id(),
                inbox: other,
            });
        }
        let bot_enabled = g.chance(0.7);
        let users: Vec<u64> = self.members.iter().map(|m| m.user.id).collect();
        let teams: Vec<u64> = self.teams.iter().map(|t| t.id).collect();
        let (assigned_user, assigned_team) = if !bot_enabled {
            (g.chance(0.85).then(|| *g.pick(&users)), None)
        } else if g.chance(0.15) {
            (None, Some(*g.pick(&teams)))
        } else {
            (g.chance(0.05).then(|| *g.pick(&users)), None)
        };
        let ci = contact_inboxes[0].id;
        let mut t = created_at;
        let mut messages = Vec::new();
        let turns = if g.chance(0.04) {
            40 + g.below(40)
        } else {
            1 + g.below(5)
        };
        for turn in 0..turns {
            t = g.time_after(t, Duration::minutes(60));
            let photo = g.chance(0.08);
            let text = (!photo).then(|| g.customer_text());
            let mut m = self.message(t, ci, text, "incoming", "contact", Some(contact.id));
            if photo {
                let id = self.object_id();
                m.attachments.push(Attachment {
                    id,
                    file_type: "image",
                    mime_type: "image/jpeg",
                    name: g
                        .chance(0.5)
                        .then(|| format!("IMG_{}.jpg", 1000 + g.below(9000))),
                    origin_path: format!("workspaces/{WORKSPACE}/attachments/{id}.jpg"),
                });
            }
            messages.push(m);
            t = g.time_after(t, Duration::minutes(2));
            let human_turn = !bot_enabled && turn + 1 == turns;
            if human_turn {
                if let Some(user) = assigned_user {
                    let name = self.user(user).map(|u| u.name.clone()).unwrap_or_default();
                    messages.push(self.message(
                        t,
                        ci,
                        Some(format!("Conversation assigned to {name}")),
                        "activity",
                        "system",
                        None,
                    ));
                    t = g.time_after(t, Duration::minutes(5));
                    let text = g.agent_text();
                    let mut reply = self.message(t, ci, Some(text), "outgoing", "user", Some(user));
                    reply.is_internal = g.chance(0.1);
                    messages.push(reply);
                }
            } else {
                let text = g.bot_text();
                messages.push(self.message(t, ci, Some(text), "outgoing", "bot", None));
            }
        }
        for m in messages
            .iter_mut()
            .filter(|m| m.message_type == "outgoing" && !m.is_internal)
        {
            let roll = g.below(20);
            if roll == 0 {
                m.failed_at = Some(m.created_at + Duration::seconds(2));
            } else if roll < 12 {
                m.delivered_at = Some(m.created_at + Duration::seconds(1));
                if roll < 7 {
                    m.read_at = Some(m.created_at + Duration::seconds(30));
                }
            }
        }
        let contact_replied_at = messages
            .iter()
            .rev()
            .find(|m| m.sender_type == "contact")
            .map(|m| m.created_at);
        let admin_replied_at = messages
            .iter()
            .rev()
            .find(|m| m.sender_type == "user" && !m.is_internal)
            .map(|m| m.created_at);
        let archived_at = g.chance(0.2).then(|| g.time_after(t, Duration::hours(6)));
        Conv {
            id: FIRST_CONVERSATION + i as u64 * 7,
            created_at,
            updated_at: archived_at.unwrap_or(t),
            bot_enabled,
            archived_at,
            last_activity_at: t,
            followed: g.chance(0.1),
            agent_last_read_at: g.chance(0.6).then_some(t),
            contact_last_read_at: g.chance(0.5).then_some(t),
            admin_replied_at,
            contact_replied_at,
            contact,
            contact_inboxes,
            assigned_user,
            assigned_team,
            messages,
        }
    }

    pub(super) fn message(
        &mut self,
        created_at: DateTime<Utc>,
        contact_inbox: u64,
        text: Option<String>,
        message_type: &'static str,
        sender_type: &'static str,
        sender_id: Option<u64>,
    ) -> Msg {
        Msg {
            id: self.object_id(),
            created_at: millis(created_at),
            contact_inbox,
            text,
            message_type,
            sender_type,
            sender_id,
            is_internal: false,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            attachments: Vec::new(),
        }
    }

    /// Overrides the quota (tests that need more headroom, or a 429 soon).
    pub fn set_quota(&mut self, quota: u32) {
        self.quota = quota;
    }

    /// Every conversation id.
    pub fn conversation_ids(&self) -> Vec<String> {
        self.conversations.keys().map(u64::to_string).collect()
    }

    /// The conversations the default lists show (open and archived together): every one whose
    /// contact is not blocked.
    pub fn listed_conversation_ids(&self) -> Vec<String> {
        self.conversations
            .values()
            .filter(|c| c.contact.blocked_at.is_none())
            .map(|c| c.id.to_string())
            .collect()
    }

    /// How many messages (internal notes included) a conversation holds.
    pub fn message_count(&self, conversation: &str) -> usize {
        conversation
            .parse()
            .ok()
            .and_then(|id| self.conversations.get(&id))
            .map_or(0, |c| c.messages.len())
    }

    /// How many of a conversation's messages are internal notes.
    pub fn internal_note_count(&self, conversation: &str) -> usize {
        conversation
            .parse()
            .ok()
            .and_then(|id| self.conversations.get(&id))
            .map_or(0, |c| c.messages.iter().filter(|m| m.is_internal).count())
    }

    /// The user ids of the workspace's members (what `assign` takes).
    pub fn member_user_ids(&self) -> Vec<String> {
        self.members.iter().map(|m| m.user.id.to_string()).collect()
    }

    pub(super) fn user(&self, id: u64) -> Option<&User> {
        self.members.iter().map(|m| &m.user).find(|u| u.id == id)
    }
}

impl World {
    pub(super) fn channels_of(&self, c: &Conv) -> Vec<&'static str> {
        c.contact_inboxes
            .iter()
            .filter_map(|ci| self.inboxes.get(ci.inbox).map(|i| i.channel))
            .collect()
    }
}

/// The live workspace's rules: a customer writes in an open conversation; the bot answers a
/// customer's last message where the bot is on; an agent archives an open conversation, which
/// leaves an activity message, so the conversation's activity moves.
impl World {
    pub(super) fn live_tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        let open: Vec<u64> = self
            .conversations
            .values()
            .filter(|c| c.contact.blocked_at.is_none() && c.archived_at.is_none())
            .map(|c| c.id)
            .collect();
        let awaiting_bot: Vec<u64> = open
            .iter()
            .copied()
            .filter(|id| {
                self.conversations.get(id).is_some_and(|c| {
                    c.bot_enabled
                        && c.messages
                            .iter()
                            .rev()
                            .find(|m| !m.is_internal)
                            .is_some_and(|m| m.sender_type == "contact")
                })
            })
            .collect();
        let roll = g.below(10);
        let (id, by) = if !awaiting_bot.is_empty() && roll < 4 {
            (*g.pick(&awaiting_bot), "bot")
        } else if !open.is_empty() && roll < 9 {
            (*g.pick(&open), "customer")
        } else if !open.is_empty() {
            (*g.pick(&open), "agent")
        } else {
            return None;
        };
        let conv = self.conversations.get(&id)?;
        let at = millis(now).max(conv.last_activity_at + Duration::milliseconds(1));
        let ci = conv.contact_inboxes[0].id;
        let contact = conv.contact.id;
        let agent = conv
            .assigned_user
            .or_else(|| self.members.first().map(|m| m.user.id));
        let (message, kind) = match by {
            "customer" => (
                self.message(
                    at,
                    ci,
                    Some(g.customer_text()),
                    "incoming",
                    "contact",
                    Some(contact),
                ),
                ChangeKind::Message,
            ),
            "bot" => (
                self.message(at, ci, Some(g.bot_text()), "outgoing", "bot", None),
                ChangeKind::Message,
            ),
            _ => {
                let name = agent
                    .and_then(|u| self.user(u))
                    .map(|u| u.name.clone())
                    .unwrap_or_default();
                (
                    self.message(
                        at,
                        ci,
                        Some(format!("Conversation archived by {name}")),
                        "activity",
                        "system",
                        None,
                    ),
                    ChangeKind::Status,
                )
            }
        };
        let message_id = message.id.to_string();
        let conv = self.conversations.get_mut(&id)?;
        match by {
            "customer" => conv.contact_replied_at = Some(at),
            "agent" => conv.archived_at = Some(at),
            _ => {}
        }
        conv.messages.push(message);
        conv.last_activity_at = at;
        conv.updated_at = at;
        Some(Tick {
            conversation: id.to_string(),
            kind,
            message: (kind == ChangeKind::Message).then_some(message_id),
            by,
        })
    }
}
