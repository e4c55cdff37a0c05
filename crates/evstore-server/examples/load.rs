//! Load generator (placeholder until the measurement lands).
fn main() {}
