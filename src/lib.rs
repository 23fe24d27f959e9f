//! crowsnest: keeps the image references in a Git repository of Kubernetes
//! YAML up to date with the tags in container registries.
//!
//! Data flows one way: `config` and `policy` describe what to do, `registry`
//! reads tags, `manifests` computes byte-exact patches, `git` commits and
//! pushes, and `reconcile` is the one module that joins them.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod git;
pub mod http;
pub mod manifests;
pub mod model;
pub mod policy;
pub mod reconcile;
pub mod registry;
pub mod scheduler;
pub mod yaml;
