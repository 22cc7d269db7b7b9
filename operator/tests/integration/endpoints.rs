//! An operator whose endpoints' port is taken stops at once with the reason, before it
//! connects to anything or leads.

use std::net::TcpListener;
use std::process::Command;

/// EADDRINUSE as the OS error Rust prints: its text is the C library's (glibc "Address
/// already in use", musl "Address in use"), the number is Linux's.
const ADDRESS_IN_USE: &str = "(os error 98)";

#[test]
fn a_taken_port_stops_the_operator_at_once_with_the_reason() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_homestream-operator"))
        .args(["--listen", &addr.to_string()])
        // No cluster to reach: the port must be refused before the apiserver is tried.
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot serve /metrics, /healthz and /readyz on {addr}"
        )) && stderr.contains(ADDRESS_IN_USE),
        "{stderr}"
    );
}
