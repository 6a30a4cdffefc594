//! The provider behaviour cases (`switchboard-behaviour`), each its own test, against the
//! ChatbotX simulator.

switchboard_behaviour::behaviour_main!(
    switchboard_chatbotx::Chatbotx,
    switchboard_sim::chatbotx::VENDOR
);
