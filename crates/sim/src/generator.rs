//! The seeded generator every vendor simulator draws its data from: people, texts and times.
//!
//! Given a seed, the content is identical on every run; times are offsets from the simulator's
//! start, so "24 hours ago" stays meaningful.

use std::cmp::Ordering;

use chrono::{DateTime, Duration, Utc};

const FIRST_NAMES: &[&str] = &[
    "John", "Amélie", "Søren", "Zoë", "Mateo", "Aiko", "Chloé", "Łukasz", "Priya", "Olu", "Björn",
    "Mei", "Ana", "Yusuf", "Élodie", "Nguyễn", "Fatima", "Kwame", "Ingrid", "Dmitri",
];
const LAST_NAMES: &[&str] = &[
    "Doe",
    "Dubois",
    "Jørgensen",
    "Müller",
    "García",
    "Tanaka",
    "Nowak",
    "Sharma",
    "Adeyemi",
    "Lindqvist",
    "Wang",
    "Silva",
    "Öztürk",
    "Lefèvre",
    "Văn An",
    "Haddad",
    "Mensah",
    "Berg",
];
const AGENT_NAMES: &[&str] = &[
    "Jane Agent",
    "Marco Rossi",
    "Léa Martin",
    "Sam Okafor",
    "Hana Kim",
    "Tomás Díaz",
];
const CUSTOMER_LINES: &[&str] = &[
    "Hi, where is my order?",
    "Bonjour, ma commande n'est pas arrivée 😕",
    "Can I change the delivery address?",
    "Ich möchte meine Bestellung stornieren.",
    "Do you ship to Norway?",
    "注文した商品がまだ届きません。",
    "The size M is too small, can I exchange it for an L?",
    "¿Tienen este modelo en azul?",
    "My discount code SAVE10 does not work",
    "Merci beaucoup !",
    "Is this available in store?",
    "I was charged twice for order #48213",
];
const BOT_LINES: &[&str] = &[
    "<p>Hello! I can help with that. Could you share your <strong>order number</strong>?</p>",
    "Your order is on its way and should arrive within 2–3 business days.",
    "<p>Here is our <a href=\"https://example.com/returns\">returns policy</a>.</p>",
    "I'm passing you to a colleague who can look into this.",
    "Yes, we ship to all EU countries and Norway.",
    "<ul><li>Free returns within 30 days</li><li>Exchanges are free</li></ul>",
];
const AGENT_LINES: &[&str] = &[
    "Hi, this is a person from the team, I'm looking into it now.",
    "I've refunded the duplicate charge; you'll see it in 3–5 days.",
    "Done — the address is updated.",
    "Thanks for your patience! Anything else I can help with?",
];

/// A deterministic source of realistic data.
#[derive(Debug)]
pub struct Gen {
    rng: fastrand::Rng,
    /// The simulator's "now": every generated time is before it.
    pub now: DateTime<Utc>,
}

impl Gen {
    /// A generator for `seed`, with times relative to `now`.
    pub fn new(seed: u64, now: DateTime<Utc>) -> Gen {
        Gen {
            rng: fastrand::Rng::with_seed(seed),
            now,
        }
    }

    /// A generator for one vendor: same seed, different stream per vendor.
    pub fn for_vendor(seed: u64, vendor: &str, now: DateTime<Utc>) -> Gen {
        let salt = vendor.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Gen::new(seed ^ salt, now)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.usize(..n.max(1))
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.f64() < p
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random u64.
    pub fn u64(&mut self) -> u64 {
        self.rng.u64(..)
    }

    /// A UUID-shaped string (v4 layout) drawn from the seed.
    pub fn uuid(&mut self) -> String {
        let a = self.rng.u64(..);
        let b = self.rng.u64(..);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0xfff) as u16,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// A person's full name (often non-ASCII).
    pub fn person(&mut self) -> (String, String) {
        (
            (*self.pick(FIRST_NAMES)).to_owned(),
            (*self.pick(LAST_NAMES)).to_owned(),
        )
    }

    /// An e-mail for a name.
    pub fn email_for(&mut self, first: &str) -> String {
        let local: String = first
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let local = if local.is_empty() {
            "customer".to_owned()
        } else {
            local
        };
        format!("{local}.{}@example.com", self.below(10_000))
    }

    /// An E.164 phone number.
    pub fn phone(&mut self) -> String {
        format!("+3361{:07}", self.below(10_000_000))
    }

    /// An agent's name.
    pub fn agent_name(&mut self, i: usize) -> String {
        AGENT_NAMES[i % AGENT_NAMES.len()].to_owned()
    }

    /// What a customer writes; sometimes very long.
    pub fn customer_text(&mut self) -> String {
        let line = (*self.pick(CUSTOMER_LINES)).to_owned();
        if self.chance(0.05) {
            let mut long = String::new();
            for _ in 0..40 {
                let line: &&str = self.pick(CUSTOMER_LINES);
                long.push_str(line);
                long.push(' ');
            }
            long.trim_end().to_owned()
        } else {
            line
        }
    }

    /// What the bot answers (often HTML).
    pub fn bot_text(&mut self) -> String {
        (*self.pick(BOT_LINES)).to_owned()
    }

    /// What a person answers.
    pub fn agent_text(&mut self) -> String {
        (*self.pick(AGENT_LINES)).to_owned()
    }

    /// A time up to `max_age` before now.
    pub fn time_within(&mut self, max_age: Duration) -> DateTime<Utc> {
        let secs = max_age.num_seconds().max(1) as u64;
        self.now - Duration::seconds(self.rng.u64(..secs) as i64)
    }

    /// A time between `after` and now (or `after` itself when it is in the future).
    pub fn time_after(&mut self, after: DateTime<Utc>, max_gap: Duration) -> DateTime<Utc> {
        let gap = Duration::seconds(self.rng.i64(1..max_gap.num_seconds().max(2)));
        (after + gap).min(self.now).max(after)
    }
}

/// A paging helper: the `page`th (1-based) slice of `items` of `per_page`.
pub fn paginate<T: Clone>(items: &[T], page: usize, per_page: usize) -> Vec<T> {
    let per_page = per_page.max(1);
    let start = page.saturating_sub(1).saturating_mul(per_page);
    items.iter().skip(start).take(per_page).cloned().collect()
}

/// Sorts the first `end` of `items` by `order` and drops the rest: what a list page needs of a
/// sorted list, found without sorting all of it (full sorts of 3000 conversations were an eighth
/// of the simulator's CPU on a 64-connection first page). `order` must be total.
pub fn sort_first<T>(items: &mut Vec<T>, end: usize, mut order: impl FnMut(&T, &T) -> Ordering) {
    if end == 0 {
        items.clear();
        return;
    }
    if items.len() > end {
        items.select_nth_unstable_by(end - 1, &mut order);
        items.truncate(end);
    }
    items.sort_by(order);
}

/// How many pages `total` items make at `per_page`.
pub fn total_pages(total: usize, per_page: usize) -> usize {
    total.div_ceil(per_page.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_first_keeps_the_first_items_of_the_full_order() {
        let items: Vec<u32> = (0..500).map(|i| (i * 7919) % 1009).collect();
        let mut sorted = items.clone();
        sorted.sort_unstable();
        for end in [0, 1, 2, 50, 499, 500, 501] {
            let mut first = items.clone();
            sort_first(&mut first, end, u32::cmp);
            assert_eq!(first, sorted[..end.min(sorted.len())], "end {end}");
        }
    }
}
