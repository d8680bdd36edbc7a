//! Validation of a `PodGroup` spec with field-path messages, and rejection of fields peapod does not implement.
