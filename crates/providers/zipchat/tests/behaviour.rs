//! The provider behaviour cases (`switchboard-behaviour`), each its own test, against the
//! Zipchat simulator.

switchboard_behaviour::behaviour_main!(
    switchboard_zipchat::Zipchat,
    switchboard_sim::zipchat::VENDOR
);
