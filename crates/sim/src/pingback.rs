//! pingback simulator (being written).
