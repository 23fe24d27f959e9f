//! crowsnest: keeps the image references in a Git repository of Kubernetes
//! YAML up to date with the tags in container registries.
//!
//! Data flows one way: `config` and `policy` describe what to do, `registry`
//! reads tags, `manifests` computes byte-exact patches, `git` commits and
//! pushes, and `reconcile` is the one module that joins them.
#![forbid(unsafe_code)]

pub mod audit;
#[cfg(feature = "runtime")]
pub mod cli;
#[cfg(feature = "runtime")]
pub mod commands;
pub mod config;
#[cfg(feature = "runtime")]
pub mod git;
pub mod gotemplate;
#[cfg(feature = "runtime")]
pub mod http;
pub mod inventory;
pub mod manifests;
#[cfg(feature = "runtime")]
pub mod message;
#[cfg(feature = "runtime")]
pub mod metrics;
pub mod model;
pub mod policy;
#[cfg(feature = "runtime")]
pub mod promote;
#[cfg(feature = "runtime")]
pub mod reconcile;
#[cfg(feature = "runtime")]
pub mod registry;
#[cfg(feature = "runtime")]
pub mod scheduler;
#[cfg(feature = "runtime")]
pub mod status;
#[cfg(feature = "runtime")]
pub mod tagcache;
pub mod verify;
pub mod webhooks;
pub mod yaml;
