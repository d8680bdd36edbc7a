//! Per-PodGroup workers: observe what runs, plan with a pure function, act; status as a pure function.
