//! chatbotx simulator (being written).
