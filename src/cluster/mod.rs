//! The cluster front end (`peapod agent`): `controller` reconciles the PodGroups bound to this node into the
//! pod workers, `scheduler` (one leader per cluster) binds PodGroups to nodes. Both talk to the API server
//! through the helpers here (`lease`, the node heartbeat; `status`, status and finalizer writes) and never
//! import each other; `cli::agent` starts them side by side.

pub mod controller;
pub mod lease;
pub mod scheduler;
pub mod status;
