//! peapod: run Kubernetes Pod specs as `PodGroup` resources in host-level pause sandboxes.
//!
//! The library owns everything; `main.rs` only parses the command line and dispatches. Modules depend
//! downwards only, in this order: `cli` > `controller`/`standalone` > `pod` > `runtime` > `image`,
//! `volume`, `network` > `api` > `sys`. Raw syscalls and `unsafe` live in `sys` alone.
#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod controller;
pub mod image;
pub mod network;
pub mod pod;
pub mod runtime;
pub mod scheduler;
pub mod standalone;
pub mod sys;
pub mod volume;
