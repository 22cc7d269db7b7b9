//! A runtime whose endpoints' port is taken stops at once with the reason, before any
//! work (it used to run on without `/healthz` and say so only when it exited).

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

/// EADDRINUSE as the OS error Rust prints: its text is the C library's (glibc "Address
/// already in use", musl "Address in use"), the number is Linux's.
const ADDRESS_IN_USE: &str = "(os error 98)";

#[test]
fn a_taken_port_stops_the_runtime_at_once_with_the_reason() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    for subcommand in ["scrape", "transform", "sink"] {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_homestream-runtime"))
            .args([
                "--listen",
                &addr.to_string(),
                "--config",
                "/nonexistent.yaml",
            ])
            .arg(subcommand)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{subcommand}: {stderr}");
        // The port is checked before the configuration is read.
        assert!(
            stderr.contains(&format!(
                "cannot serve /metrics, /healthz and /readyz on {addr}"
            )) && stderr.contains(ADDRESS_IN_USE),
            "{subcommand}: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{subcommand}");
    }
}
