//! The standalone front end: manifests on disk feed the pod workers; status goes to files.
