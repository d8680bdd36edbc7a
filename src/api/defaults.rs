//! The Pod defaults the API server would apply to a core/v1 Pod, applied by peapod to a `PodGroup`.
