//! peapod: run Kubernetes Pod specs as `PodGroup` resources in host-level pause sandboxes.
//!
//! The library owns everything; `main.rs` only parses the command line and dispatches. Modules depend
//! downwards only, in this order, bottom to top (siblings on one level never import each other):
//! `sys` → `api` → `network`, `volume`, `image` → `runtime` → `pod` → `standalone`, `cluster` → `cli`.
//! Inside `cluster`, `lease` and `status` sit below `controller` and `scheduler`, which are siblings.
//! Raw syscalls and `unsafe` live in `sys` alone. `tests/layers.rs` checks the order; docs/architecture.md
//! shows what lives where.
#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod cluster;
pub mod image;
pub mod network;
pub mod pod;
pub mod runtime;
pub mod standalone;
pub mod sys;
pub mod volume;
