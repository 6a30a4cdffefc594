//! Switchboard adapter for octopush (being written).
