//! The simulated Octopush account: generated from a seed, and what the tests read of it.

use super::*;

impl World {
    /// A world of `conversations` two-way SMS / RCS conversations from `seed`, times before `now`.
    pub fn generate(seed: u64, conversations: usize, now: DateTime<Utc>) -> World {
        let mut g = Gen::for_vendor(seed, "octopush", second(now));
        let rcs_agent = format!("myshop_{:06x}_agent@rcs.goog", g.u64() & 0xff_ffff);
        let mut world = World {
            conversations: Vec::with_capacity(conversations),
            rcs_agent,
            credit: INITIAL_CREDIT,
            requests: BTreeMap::new(),
            tickets: 0,
            message_ids: fastrand::Rng::with_seed(seed ^ 0x0c70_9055),
            order: std::sync::Mutex::default(),
            list_order: ListOrder::default(),
        };
        let mut phones = std::collections::BTreeSet::new();
        for _ in 0..conversations {
            let mut phone = g.phone();
            while !phones.insert(phone.clone()) {
                phone = g.phone();
            }
            let conv = world.generate_conversation(&mut g, phone);
            world.conversations.push(conv);
        }
        world
    }

    pub(super) fn generate_conversation(&mut self, g: &mut Gen, phone: String) -> Conv {
        let channel = *g.pick(&["sms", "sms", "sms", "rcs"]);
        let name = (!g.chance(0.2)).then(|| {
            let (first, last) = g.person();
            format!("{first} {last}")
        });
        let email = g
            .chance(0.15)
            .then(|| g.email_for(name.as_deref().unwrap_or("customer")));
        let from = if channel == "rcs" {
            self.rcs_agent.clone()
        } else {
            (*g.pick(SHORT_CODES)).to_owned()
        };
        let purpose = if g.chance(0.85) { "alert" } else { "wholesale" };
        let agent = g.chance(0.3).then(|| *g.pick(AGENT_LOGINS));
        let mut t = second(g.time_within(Duration::days(45)));
        let mut messages = Vec::new();
        let customer_first = g.chance(0.3);
        if !customer_first {
            let text = if purpose == "alert" {
                g.pick(ALERT_LINES)
            } else {
                g.pick(PROMO_LINES)
            };
            messages.push(self.outbound(g, (*text).to_owned(), channel, t));
        }
        let turns = 1 + g.below(4);
        for turn in 0..turns {
            t = g.time_after(t, Duration::hours(3));
            let text = g.customer_text();
            messages.push(self.inbound(text, channel, t));
            let answered = turn + 1 < turns || g.chance(0.5);
            if answered {
                t = g.time_after(t, Duration::minutes(40));
                let text = g.agent_text();
                messages.push(self.outbound(g, text, "sms", t));
            }
        }
        Conv {
            uuid: g.uuid(),
            last_user_channel: channel,
            phone,
            name,
            email,
            from,
            purpose,
            color: g.below(6) as u8,
            agent,
            messages,
        }
    }

    pub(super) fn inbound(
        &mut self,
        text: String,
        channel: &'static str,
        at: DateTime<Utc>,
    ) -> Msg {
        Msg {
            id: format!("mo_{:016x}", self.message_ids.u64(..)),
            text,
            inbound: true,
            delivery_status: None,
            channel,
            at: second(at),
        }
    }

    pub(super) fn outbound(
        &mut self,
        g: &mut Gen,
        text: String,
        channel: &'static str,
        at: DateTime<Utc>,
    ) -> Msg {
        let status = *g.pick(&[
            "delivered",
            "delivered",
            "delivered",
            "delivered",
            "delivered",
            "delivered",
            "sent",
            "not_delivered",
        ]);
        Msg {
            id: self.ticket(at),
            text,
            inbound: false,
            delivery_status: Some(status),
            channel,
            at: second(at),
        }
    }

    /// A campaign ticket like `sms_5fec89fe97109` (seconds in hex, then a counter).
    pub(super) fn ticket(&mut self, at: DateTime<Utc>) -> String {
        self.tickets += 1;
        format!(
            "sms_{:08x}{:05x}",
            at.timestamp().max(0),
            self.tickets & 0xf_ffff
        )
    }
}

impl World {
    /// The conversations in the list's order ([`ListOrder`]; newest activity first by default).
    /// The order found by the last call is kept and checked in one pass before it is used again
    /// (a permutation of every conversation that is in order is the order), so a list request
    /// sorts only after activity has moved.
    pub(super) fn sorted(&self) -> Vec<&Conv> {
        let conversations = &self.conversations;
        let list_order = self.list_order;
        // Newest first; ties in the same order as the listed `cid_{uuid}` ids, without building
        // them.
        let key = |i: usize| {
            let c = &conversations[i];
            let at = match list_order {
                ListOrder::Activity => c.last_at(),
                ListOrder::Started => c.first_at(),
            };
            (std::cmp::Reverse(at), std::cmp::Reverse(c.uuid.as_str()))
        };
        let mut order = self
            .order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Each conversation's key read once: the check runs on every list request.
        let still = order.len() == conversations.len() && order.iter().map(|&i| key(i)).is_sorted();
        if !still {
            *order = (0..conversations.len()).collect();
            order.sort_by_cached_key(|&i| key(i));
        }
        order.iter().map(|&i| &conversations[i]).collect()
    }

    pub(super) fn find(&self, conversation_id: &str) -> Option<&Conv> {
        let wanted = conversation_id.trim();
        let wanted = wanted.strip_prefix("cid_").unwrap_or(wanted);
        self.conversations
            .iter()
            .find(|c| c.uuid.eq_ignore_ascii_case(wanted))
    }

    /// Every conversation id as the list shows it (`cid_{uuid}`), in the list's order.
    pub fn conversation_ids(&self) -> Vec<String> {
        self.sorted().iter().map(|c| c.conversation_id()).collect()
    }

    /// Lists the conversations in `order` from now on.
    pub fn set_list_order(&mut self, order: ListOrder) {
        self.list_order = order;
    }

    /// How many messages a conversation holds (`cid_` prefix optional); 0 when unknown.
    pub fn message_count(&self, conversation_id: &str) -> usize {
        self.find(conversation_id).map_or(0, |c| c.messages.len())
    }

    /// The account's credit left, in euros.
    pub fn credit(&self) -> f64 {
        self.credit
    }

    /// Sets the account's credit (tests of the "not enough credit" answer).
    pub fn set_credit(&mut self, credit: f64) {
        self.credit = credit;
    }
}

/// The live account's rules (Octopush has no bot and no status): a customer writes back on the
/// channel they last used.
impl World {
    pub(super) fn live_tick(&mut self, g: &mut Gen, now: DateTime<Utc>) -> Option<Tick> {
        if self.conversations.is_empty() {
            return None;
        }
        let i = g.below(self.conversations.len());
        let text = g.customer_text();
        let (channel, at) = {
            let c = &self.conversations[i];
            (c.last_user_channel, now.max(c.last_at()))
        };
        let message = self.inbound(text, channel, at);
        let message_id = message.id.clone();
        let c = &mut self.conversations[i];
        c.messages.push(message);
        Some(Tick {
            conversation: c.conversation_id(),
            kind: ChangeKind::Message,
            message: Some(message_id),
            by: "customer",
        })
    }
}
