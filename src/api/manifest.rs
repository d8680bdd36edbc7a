//! Parsing manifests from disk: multi-document YAML holding `PodGroup` or plain `kind: Pod` objects.
