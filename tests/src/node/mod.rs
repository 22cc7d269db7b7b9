//! The local node: a stand-in for a kubelet on a machine with no container runtime. It
//! registers a Node, takes the pods the scheduler binds to it whose image is one of
//! homestream's runtime images, and runs each container as a local process from the
//! pod spec exactly as the operator wrote it. See `README.md` and TEST-STACK.md.

pub mod pods;
pub mod process;
pub mod registration;
pub mod supervisor;
