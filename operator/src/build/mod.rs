//! Pure builders of the Kubernetes objects a resource needs: plain k8s-openapi values
//! from a validated resource and the operator's configuration, tested without a server.

pub mod config_map;
pub mod labels;
pub mod pod;
pub mod runtime;
pub mod workload;
