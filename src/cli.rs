//! The command line: clap derive, every flag with a `CROWSNEST_*` fallback.
//!
//! Environment variables are declared here and nowhere else; `env` module
//! constants name the ones read outside clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Environment variables crowsnest reads outside clap.
pub mod env {
    /// Log filter in `tracing_subscriber::EnvFilter` syntax (default `info`).
    pub const LOG: &str = "CROWSNEST_LOG";
    /// `json` for JSON lines, anything else for text.
    pub const LOG_FORMAT: &str = "CROWSNEST_LOG_FORMAT";
}

#[derive(Debug, Parser)]
#[command(
    name = "crowsnest",
    version,
    about = "Keeps the image references in a Git repository of Kubernetes YAML up to date"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: scan, patch, commit, push and serve HTTP until SIGTERM.
    Run(RunArgs),
    /// One full pass, then exit (0 done, 1 a policy, registry or push failed, 2 bad config).
    Once(OnceArgs),
    /// Offline lint of a checkout and/or a daemon config (0 clean, 1 findings).
    Check(CheckArgs),
    /// A repository's tags (or a tag list) and which one a policy picks, and why.
    Tags(TagsArgs),
    /// The audit trail from the commit log.
    History(HistoryArgs),
    /// Every candidate of one policy with its verdict (registry tags, or a
    /// promotion's values from its source's history).
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The daemon config file.
    #[arg(long, env = "CROWSNEST_CONFIG")]
    pub config: PathBuf,
    /// Take only the policies of shard I of N (0-based), by a stable hash.
    #[arg(long, env = "CROWSNEST_SHARD", value_name = "I/N")]
    pub shard: Option<String>,
    /// How long a running pass may take to finish after SIGTERM before it
    /// is abandoned (keep it below the pod's terminationGracePeriodSeconds).
    #[arg(long, env = "CROWSNEST_SHUTDOWN_TIMEOUT", value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct OnceArgs {
    /// The daemon config file.
    #[arg(long, env = "CROWSNEST_CONFIG")]
    pub config: PathBuf,
    /// Print the unified diff and the trailers; commit and push nothing.
    #[arg(long, env = "CROWSNEST_DRY_RUN")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A checkout to lint (policy files, markers, targets).
    #[arg(env = "CROWSNEST_CHECK_DIR")]
    pub dir: Option<PathBuf>,
    /// A daemon config to validate.
    #[arg(long, env = "CROWSNEST_CONFIG")]
    pub config: Option<PathBuf>,
    /// With a DIR and a config of several repositories: whose `path` and
    /// `policies` apply to DIR.
    #[arg(
        long,
        env = "CROWSNEST_REPOSITORY",
        value_name = "NAME",
        requires = "config"
    )]
    pub repository: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    Asc,
    Desc,
}

#[derive(Debug, Args)]
pub struct TagsArgs {
    /// The image repository to list, e.g. ghcr.io/stefanprodan/podinfo.
    #[arg(env = "CROWSNEST_IMAGE", required_unless_present = "tags_from")]
    pub image: Option<String>,
    /// Read tags from FILE (one per line, `-` for stdin) instead of a registry.
    #[arg(
        long,
        env = "CROWSNEST_TAGS_FROM",
        value_name = "FILE",
        conflicts_with = "image"
    )]
    pub tags_from: Option<String>,
    /// A policy file, optionally `FILE:NAME` to pick one policy in it.
    #[arg(
        long,
        env = "CROWSNEST_POLICY",
        value_name = "FILE[:NAME]",
        group = "rule"
    )]
    pub policy: Option<String>,
    /// A semver range (Masterminds/Flux syntax).
    #[arg(long, env = "CROWSNEST_SEMVER", value_name = "RANGE", group = "rule")]
    pub semver: Option<String>,
    /// Alphabetical order: asc picks the greatest, desc the least.
    #[arg(
        long,
        env = "CROWSNEST_ALPHABETICAL",
        value_name = "ORDER",
        group = "rule"
    )]
    pub alphabetical: Option<OrderArg>,
    /// Numerical order: asc picks the greatest, desc the least.
    #[arg(
        long,
        env = "CROWSNEST_NUMERICAL",
        value_name = "ORDER",
        group = "rule"
    )]
    pub numerical: Option<OrderArg>,
    /// A regex tags must match (unanchored).
    #[arg(long, env = "CROWSNEST_FILTER", value_name = "RE")]
    pub filter: Option<String>,
    /// The value to order by, from the filter's groups (`$1`, `$name`, `${name}`).
    #[arg(
        long,
        env = "CROWSNEST_EXTRACT",
        value_name = "TPL",
        requires = "filter"
    )]
    pub extract: Option<String>,
    /// List every tag with its verdict.
    #[arg(long, env = "CROWSNEST_ALL")]
    pub all: bool,
    /// Print JSON: {"selected": TAG or null, "candidates": [...]}.
    #[arg(long, env = "CROWSNEST_JSON")]
    pub json: bool,
    /// Daemon config to take registry settings (credentials, insecure hosts) from.
    #[arg(long, env = "CROWSNEST_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The daemon config: read the daemon's clone (in stateDir) and its
    /// copy of the repository's branch, with its policies and path.
    #[arg(long, env = "CROWSNEST_CONFIG", conflicts_with = "repo")]
    pub config: Option<PathBuf>,
    /// With --config: the entry of `repositories` to read (required when
    /// the config has several).
    #[arg(
        long,
        env = "CROWSNEST_REPOSITORY",
        value_name = "NAME",
        requires = "config"
    )]
    pub repository: Option<String>,
    /// A local clone to read (default: the current folder), with policies
    /// in `policies/` and markers anywhere.
    #[arg(long, env = "CROWSNEST_REPO", value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// The commit to read back from (default: HEAD, or with --config the
    /// clone's copy of git.branch).
    #[arg(long, env = "CROWSNEST_HISTORY_REV", value_name = "REV")]
    pub rev: Option<String>,
    /// Only entries of this policy (`ns:name`; `name` alone is in `default`).
    #[arg(long, env = "CROWSNEST_HISTORY_POLICY", value_name = "NS:NAME")]
    pub policy: Option<String>,
    /// Only entries of this image repository (e.g. ghcr.io/stefanprodan/podinfo).
    #[arg(long, env = "CROWSNEST_HISTORY_IMAGE")]
    pub image: Option<String>,
    /// Only commits at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, env = "CROWSNEST_SINCE")]
    pub since: Option<String>,
    /// Only commits before this time (RFC 3339, or YYYY-MM-DD: up to the end of that day).
    #[arg(long, env = "CROWSNEST_UNTIL")]
    pub until: Option<String>,
    /// Print JSON lines (one object per entry) instead of a table.
    #[arg(long, env = "CROWSNEST_JSON")]
    pub json: bool,
    /// Verify signatures with an OpenPGP keyring (`gpg --export`) or an SSH
    /// allowed-signers file; repeat for both. Exit 1 when a listed commit
    /// is not Good.
    #[arg(long, env = "CROWSNEST_VERIFY", value_name = "KEYS")]
    pub verify: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The policy, `namespace:name` (`name` alone is in `default`).
    #[arg(env = "CROWSNEST_EXPLAIN_POLICY", value_name = "NS:NAME")]
    pub policy: String,
    /// The daemon config: read the daemon's clone and its copy of the
    /// repository's branch (nothing is fetched); registry settings too.
    #[arg(long, env = "CROWSNEST_CONFIG", conflicts_with = "repo")]
    pub config: Option<PathBuf>,
    /// With --config: the entry of `repositories` whose policy it is
    /// (required when the config has several).
    #[arg(
        long,
        env = "CROWSNEST_REPOSITORY",
        value_name = "NAME",
        requires = "config"
    )]
    pub repository: Option<String>,
    /// A local clone (default: the current folder) at HEAD, with policies
    /// in `policies/` and markers anywhere.
    #[arg(long, env = "CROWSNEST_REPO", value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, env = "CROWSNEST_JSON")]
    pub json: bool,
    /// Keys for `requireSigned` promotions (as `history --verify`; with
    /// --config, the config's `verifyKeys` are used when none are given).
    #[arg(long, env = "CROWSNEST_VERIFY", value_name = "KEYS")]
    pub verify: Vec<PathBuf>,
}

/// Process exit codes shared by the commands (PRODUCT.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done / clean / picked.
    Ok = 0,
    /// A policy, registry or push failed; findings; nothing matched.
    Failed = 1,
    /// Bad config or usage.
    Usage = 2,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}
