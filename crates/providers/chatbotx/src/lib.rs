//! Switchboard adapter for chatbotx (being written).
