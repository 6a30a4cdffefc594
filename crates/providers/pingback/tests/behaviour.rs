//! The provider behaviour cases (`switchboard-behaviour`), each its own test, against the
//! PingBack simulator.

switchboard_behaviour::behaviour_main!(
    switchboard_pingback::Pingback,
    switchboard_sim::pingback::VENDOR
);
