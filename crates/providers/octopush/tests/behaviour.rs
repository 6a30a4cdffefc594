//! The provider behaviour cases (`switchboard-behaviour`), each its own test, against the
//! Octopush simulator.

switchboard_behaviour::behaviour_main!(
    switchboard_octopush::Octopush,
    switchboard_sim::octopush::VENDOR
);
