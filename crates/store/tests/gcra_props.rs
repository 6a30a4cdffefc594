//! The GCRA that the embedded and Redis stores run, against two models with an injected clock:
//! governor (what the memory store and `Budget` use) and the quota itself (no window of
//! `per_seconds` ever sees more than `requests`). The Redis Lua script runs the same sequences
//! with `now` injected and must decide exactly as the pure function does.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use proptest::prelude::*;
use switchboard_store::{Gcra, GcraDecision, RateLimit, RedisStore};
use switchboard_testkit::RedisServer;

/// Arrivals as gaps in microseconds, runs of simultaneous requests included.
fn arrivals() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(
        prop_oneof![
            Just(0u64),
            1u64..2_000,
            1_000u64..400_000,
            500_000u64..3_000_000
        ],
        1..300,
    )
}

/// Runs `gcra` over the arrivals: which were allowed, at which instant.
fn run(gcra: Gcra, gaps: &[u64]) -> Vec<(u64, bool)> {
    let mut tat = None;
    let mut now = 0;
    gaps.iter()
        .map(|gap| {
            now += gap;
            match gcra.check(tat, now) {
                GcraDecision::Allow { tat_us, .. } => {
                    tat = Some(tat_us);
                    (now, true)
                }
                GcraDecision::Wait(_) => (now, false),
            }
        })
        .collect()
}

fn limits() -> impl Strategy<Value = RateLimit> {
    (1u32..400, 1u32..120).prop_map(|(requests, per_seconds)| RateLimit {
        requests,
        per_seconds,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_window_sees_more_than_the_quota(limit in limits(), gaps in arrivals()) {
        let gcra = Gcra::new(limit).expect("a non-zero quota");
        let allowed: Vec<u64> = run(gcra, &gaps).into_iter().filter(|(_, ok)| *ok).map(|(t, _)| t).collect();
        let window = u64::from(limit.per_seconds) * 1_000_000;
        for (i, start) in allowed.iter().enumerate() {
            let in_window = allowed[i..].iter().take_while(|t| **t < start + window).count();
            prop_assert!(in_window <= limit.requests as usize,
                "{in_window} allowed in a window of {limit:?}");
        }
        // And the burst is really granted: a quarter of the quota at once.
        let burst = (limit.requests / 4).max(1) as usize;
        let at_once = gaps.iter().skip(1).take_while(|g| **g == 0).count() + 1;
        let granted_at_once = run(gcra, &gaps).iter().take(at_once).filter(|(_, ok)| *ok).count();
        prop_assert_eq!(granted_at_once, at_once.min(burst));
    }

    #[test]
    fn decides_as_governor_does(
        (requests, multiple) in (1u32..400, 1u32..4),
        gaps in arrivals(),
    ) {
        // A window that the spread divides exactly, so both sides have the same period.
        let burst = (requests / 4).max(1);
        let spread = (requests - burst).max(1);
        let limit = RateLimit { requests, per_seconds: spread * multiple };
        let gcra = Gcra::new(limit).expect("a non-zero quota");
        let period = Duration::from_secs(u64::from(limit.per_seconds)) / spread;
        prop_assert_eq!(period.as_micros(), u128::from(gcra.period_us));
        let quota = Quota::with_period(period).expect("period")
            .allow_burst(NonZeroU32::new(burst).expect("burst"));
        let clock = FakeRelativeClock::default();
        let governor = RateLimiter::direct_with_clock(quota, clock.clone());
        for (gap, (_, allowed)) in gaps.iter().zip(run(gcra, &gaps)) {
            clock.advance(Duration::from_micros(*gap));
            prop_assert_eq!(governor.check().is_ok(), allowed);
        }
    }
}

#[test]
fn the_redis_script_decides_as_the_pure_gcra() {
    let redis = RedisServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store =
        runtime.block_on(async { RedisStore::connect(&redis.url(), "props:").expect("connects") });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(40));
    let case = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&(limits(), arrivals()), |(limit, gaps)| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let gcra = Gcra::new(limit).expect("a non-zero quota");
        let bucket = format!("case-{n}");
        let mut tat = None;
        // Injected clock from a recent epoch, as the script's own `TIME` would give.
        let mut now = 80_000_000_000_000u64;
        for gap in &gaps {
            now += gap;
            let expected = match gcra.check(tat, now) {
                GcraDecision::Allow { tat_us, remaining } => {
                    tat = Some(tat_us);
                    Ok(remaining)
                }
                GcraDecision::Wait(us) => Err(Duration::from_micros(us)),
            };
            let got = runtime
                .block_on(store.take_at(&bucket, limit, now))
                .expect("redis answers")
                .map(|left| left.remaining)
                .map_err(|not_yet| not_yet.wait);
            prop_assert_eq!(got, expected, "at {} for {:?}", now, limit);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
