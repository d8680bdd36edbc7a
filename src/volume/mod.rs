//! Pod volumes: emptyDir and hostPath, prepared on the host and bind-mounted into containers.
