//! The node runtime: pause sandboxes, shims, OCI bundle generation, on-disk state and recovery.

pub mod log;
