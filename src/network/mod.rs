//! Sandbox networking: CNI plugins when the node has a CNI config, loopback only otherwise.
