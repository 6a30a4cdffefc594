//! What a config file may say, and how a wrong one is refused.
use super::*;

fn err(text: &str) -> String {
    Config::parse(text)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default()
}

#[test]
fn names_the_key_at_fault() {
    assert!(err("[server]\nbnd = \"127.0.0.1:1\"").contains("bnd"));
    assert!(err("[[connections]]\nprovider = \"zipchat\"").contains("missing `id`"));
    assert!(
        err("[[connections]]\nid = \"x\"\nprovider = \"nope\"").contains("unknown provider `nope`")
    );
    assert!(err("[[connections]]\nid = \"Bad Id\"\nprovider = \"zipchat\"").contains("Bad Id"));
    let dup = "[[connections]]\nid = \"a\"\nprovider = \"zipchat\"\n[[connections]]\nid = \"a\"\nprovider = \"zipchat\"";
    assert!(err(dup).contains("used twice"));
    assert!(err("[[clients]]\nname = \"ui\"\nscopes = [\"read\"]").contains("token_sha256"));
    assert!(err("[[clients]]\nname = \"ui\"\ntoken_sha256 = \"abc\"").contains("64 hex"));
    assert!(
        err("[[clients]]\nname = \"ui\"\ntoken = { env = \"SWITCHBOARD_UNSET_FOR_TEST\" }")
            .contains("SWITCHBOARD_UNSET_FOR_TEST")
    );
    let unknown = format!(
        "[[clients]]\nname = \"ui\"\ntoken_sha256 = \"{}\"\nconnections = [\"ghost\"]",
        "a".repeat(64)
    );
    assert!(err(&unknown).contains("ghost"));
}

#[test]
fn poll_keys_are_taken_before_the_adapter_reads_its_settings() {
    let conn = |extra: &str| {
        format!(
            "[[connections]]\nid = \"z\"\nprovider = \"zipchat\"\nchat_id = \"1\"\napi_key = \"k\"\n{extra}"
        )
    };
    let off = Config::parse(&conn("")).expect("parses");
    assert_eq!(off.connections[0].poll, PollConfig::default());
    assert_eq!(off.connections[0].poll.settings(), None, "off by default");
    let on =
        Config::parse(&conn("poll_interval_secs = 10\npoll_quota_share = 0.25")).expect("parses");
    let c = &on.connections[0];
    assert_eq!(c.poll.interval_secs, Some(10));
    assert_eq!(c.poll.quota_share, 0.25);
    assert!(!c.settings.contains_key("poll_interval_secs"));
    assert!(!c.settings.contains_key("poll_quota_share"));
    assert_eq!(
        Config::parse(&conn("poll_quota_share = 1"))
            .expect("parses")
            .connections[0]
            .poll
            .quota_share,
        1.0
    );
    for bad in [
        "poll_interval_secs = 0",
        "poll_interval_secs = -3",
        "poll_interval_secs = 1.5",
        "poll_interval_secs = \"10\"",
    ] {
        let e = err(&conn(bad));
        assert!(
            e.contains("poll_interval_secs") && e.contains("`z`"),
            "{bad}: {e}"
        );
    }
    for bad in [
        "poll_quota_share = 0",
        "poll_quota_share = 1.5",
        "poll_quota_share = -0.1",
        "poll_quota_share = \"half\"",
        "poll_quota_share = nan",
    ] {
        let e = err(&conn(bad));
        assert!(e.contains("poll_quota_share"), "{bad}: {e}");
    }
}

#[test]
fn feed_section() {
    let default = Config::parse("").expect("an empty config parses");
    assert_eq!(default.feed.retention_days, 7);
    assert_eq!(
        default.feed.event_log().retention,
        std::time::Duration::from_secs(7 * 86_400)
    );
    let two = Config::parse("[feed]\nretention_days = 2").expect("parses");
    assert_eq!(two.feed.retention_days, 2);
    assert!(err("[feed]\nretention_days = 0").contains("retention_days"));
    assert!(err("[feed]\nretention = 3").contains("retention"));
}

#[test]
fn store_section() {
    assert!(err("[store]\nkind = \"redis\"").contains("redis_url"));
    assert!(err("[store]\nkind = \"disk\"").contains("disk"));
    assert!(err("[store]\npth = \"x.db\"").contains("pth"));
    assert!(err("[store]\nkind = \"memory\"\npath = \"x.db\"").contains("path"));
    let no_secret = err("[store]\nredis_url = \"redis://127.0.0.1:6379\"");
    assert!(
        no_secret.contains("cursor_secret") && no_secret.contains("every replica"),
        "{no_secret}"
    );
    let redis = Config::parse(
        "[server]\ncursor_secret = \"s\"\n[store]\nredis_url = \"redis://:hunter2@127.0.0.1:6379\"",
    )
    .expect("a redis store config parses");
    let store = redis.store.expect("a [store]");
    assert_eq!(store.kind(), StoreKind::Redis);
    assert_eq!(store.key_prefix(), "switchboard:");
    assert!(!format!("{store:?}").contains("hunter2"));
    let embedded = Config::parse("[store]\npath = \"/tmp/x.db\"").expect("parses");
    assert_eq!(embedded.store.map(|s| s.kind()), Some(StoreKind::Embedded));
}

#[test]
fn webhooks_section() {
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let conn = "[[connections]]\nid = \"shop\"\nprovider = \"zipchat\"\n";
    let hook = |extra: &str| {
        format!(
            "{conn}[[webhooks]]\nid = \"crm\"\nurl = \"https://hooks.example.com/in\"\nsecret = \"{SECRET}\"\n{extra}"
        )
    };
    let config = Config::parse(&hook(
        "events = [\"message.created\"]\nconnections = [\"shop\"]\nretry_schedule_secs = [0, 0.5, 2]",
    ))
    .expect("a webhook parses");
    let webhook = &config.webhooks[0];
    assert_eq!(webhook.schedule().attempts(), 3);
    assert!(
        !format!("{webhook:?}").contains("C2FV"),
        "the secret never shows"
    );
    assert!(err(&hook("events = [\"message.deleted\"]")).contains("message.deleted"));
    assert!(err(&hook("events = []")).contains("omit it"));
    assert!(err(&hook("connections = [\"ghost\"]")).contains("ghost"));
    assert!(err(&hook("timeout_secs = 0")).contains("timeout_secs"));
    assert!(err(&hook("retry_schedule_secs = [-1]")).contains("retry_schedule_secs"));
    assert!(err(&hook("colour = \"red\"")).contains("colour"));
    let short = hook("").replace(SECRET, "whsec_dG9vLXNob3J0LWtleQ==");
    let short = err(&short);
    assert!(
        short.contains("`secret`") && !short.contains("dG9v"),
        "{short}"
    );
    let local = hook("").replace("https://hooks.example.com/in", "http://127.0.0.1:9/in");
    assert!(err(&local).contains("allow_private_targets"));
    assert!(Config::parse(&format!("{local}allow_private_targets = true\n")).is_ok());
    assert!(Config::parse(&format!("[server]\nallow_private_targets = true\n{local}")).is_ok());
    let twice = format!("{}{}", hook(""), hook("").replace(conn, ""));
    assert!(err(&twice).contains("used twice"));
}
