//! The provider behaviour cases (`switchboard-behaviour`), each its own test, against the
//! ChatbotX simulator.

switchboard_behaviour::behaviour_cases!(
    switchboard_chatbotx::Chatbotx,
    switchboard_sim::chatbotx::VENDOR
);
