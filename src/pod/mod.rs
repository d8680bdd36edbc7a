//! Per-PodGroup workers: observe what runs, plan with a pure function, act; status as a pure function.
//!
//! The worker is the only writer of a pod's runtime state. Front ends (`standalone`, `controller`) hand it
//! specs and deletions and receive status and events back; they never wait on a workload.

pub mod backoff;
pub mod plan;
pub mod printer;
pub mod refused;
pub mod status;
pub mod view;

pub mod admitted;
pub mod checkpoint;
pub mod events;
pub mod images;
mod instances;
mod lifecycle;
pub mod probes;
pub mod state;
pub mod store_images;
#[cfg(test)]
mod tests;
pub mod worker;
pub mod workers;
