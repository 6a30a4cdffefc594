//! Switchboard adapter for pingback (being written).
