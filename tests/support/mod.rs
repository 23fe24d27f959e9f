//! Real servers for integration tests, each started on an ephemeral
//! loopback port in its own temporary directory and stopped on drop.
//! A missing server binary fails the test with the command that installs it.
#![allow(dead_code)]

pub mod process;
