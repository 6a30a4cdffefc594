//! octopush simulator (being written).
