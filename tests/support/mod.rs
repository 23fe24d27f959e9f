//! Real servers for integration tests, each started on an ephemeral
//! loopback port in its own temporary directory and stopped on drop.
//! A missing server binary fails the test with the command that installs it.
#![allow(dead_code)]

pub mod daemon;
pub mod fault_proxy;
pub mod fleet;
pub mod git;
pub mod git_http;
pub mod http1;
pub mod process;
pub mod registry;
pub mod signing;
pub mod sshd;
pub mod token;
