//! Raw system calls behind a small, safe seam.
//!
//! This is the only module allowed to use `unsafe`; every block carries a `// SAFETY:` line. Everything
//! else in the crate calls these wrappers or `nix`. Host paths are always parameters, never constants, so
//! tests can point them at a temporary directory.
#![allow(unsafe_code)]

pub mod crash;
pub mod error;
pub mod fs;
pub mod lock;
pub mod mount;
pub mod net;
pub mod netns;
pub mod process;

pub use error::{chain, PathError};
