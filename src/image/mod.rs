//! The image store: content-addressed blobs, unpacked layers, import of archives and pulls from registries.
