//! The CustomResourceDefinition for `PodGroup`, generated from the Rust types.
