//! The daemon config, `crowsnest.yaml` (PRODUCT.md §3).
//!
//! [`wire`] holds what the user typed; [`Config::load`] validates it into the
//! types below, so every other module sees only checked values. Every error
//! names the file, line and column. Paths in the file are taken relative to
//! the directory that holds the config file. Files named by the config
//! (keys, passwords, known hosts) are read when they are used, not here, so a
//! config rendered for another machine (the Helm chart) can be checked anywhere.

mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::model::{Located, PolicyId};
use crate::yaml::{self, YamlError};

/// Default `scan.interval` and default interval of a policy without one.
pub const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default `stateDir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/crowsnest";
/// Default `http.listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The name of the one repository `git:` declares.
pub const DEFAULT_REPOSITORY: &str = "default";
/// Folder under `stateDir` holding one clone folder per URL when the
/// config names several URLs.
pub const CLONES_DIR: &str = "clones";

/// A config problem: the file, the place in it, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] YamlError),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, as given.
    pub source: PathBuf,
    /// Every repository and branch the daemon writes to, in file order
    /// (`git:` is one entry named [`DEFAULT_REPOSITORY`]); never empty.
    pub repositories: Vec<RepositoryConfig>,
    pub registries: RegistriesConfig,
    pub scan: ScanConfig,
    pub state_dir: PathBuf,
    pub http: HttpConfig,
    pub flux: FluxConfig,
    /// `verifyKeys`: OpenPGP public keys and SSH allowed-signers files that
    /// make a commit Good-signed for `requireSigned` promotions.
    pub verify_keys: Vec<PathBuf>,
    /// `sigstore.trustedRoot`: the Sigstore trusted root (Fulcio CAs,
    /// Rekor keys) keyless `verify` identities are checked against.
    pub trusted_root: Option<PathBuf>,
}

/// How Flux image automation objects in the repository are read.
#[derive(Debug, Clone, Default)]
pub struct FluxConfig {
    /// `flux.scanPath`: read Flux objects from every YAML file under
    /// `git.path` too, not only from `git.policies`.
    pub scan_path: bool,
    /// `flux.automation` (`namespace/name`): the `ImageUpdateAutomation`
    /// to follow when a repository declares several.
    pub automation: Option<PolicyId>,
}

/// One entry of `repositories:` (or the `git:` shorthand).
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// Unique; names the status section, the metric label and
    /// `--repository`.
    pub name: String,
    pub git: GitConfig,
    /// The `git` keys the entry leaves unset (their value is the
    /// default), which a Flux `ImageUpdateAutomation` may supply.
    pub unset: UnsetGitKeys,
    /// The folder holding the clone (`repo.git`) of this entry's URL,
    /// shared by every entry on that URL: `stateDir` itself when the
    /// config names one URL, else `stateDir/clones/<host-path>-<hash>`.
    pub clone_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct GitConfig {
    /// `ssh://`, `https://`, `http://`, `file://` URL, or a local path made absolute.
    pub url: String,
    pub branch: String,
    /// Equal to `branch` unless the config names another.
    pub push_branch: String,
    /// Subtree scanned for markers and targets, relative, `/`-separated; `""` is the root.
    pub path: String,
    /// Folder of policy files, relative, `/`-separated.
    pub policies: String,
    pub auth: GitAuth,
    pub author: Author,
    pub signing: Option<Signing>,
    pub message_template: Option<String>,
}

/// `git` keys the config file does not set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnsetGitKeys {
    pub branch: bool,
    pub push_branch: bool,
    pub path: bool,
    pub author: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitAuth {
    pub ssh_key_file: Option<PathBuf>,
    pub ssh_passphrase_file: Option<PathBuf>,
    pub known_hosts_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

impl Default for Author {
    fn default() -> Self {
        Self {
            name: "crowsnest".into(),
            email: "crowsnest@localhost".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningFormat {
    OpenPgp,
    Ssh,
}

#[derive(Debug, Clone)]
pub struct Signing {
    pub format: SigningFormat,
    pub key_file: PathBuf,
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct RegistriesConfig {
    pub docker_config: Option<PathBuf>,
    pub hosts: Vec<HostConfig>,
}

impl RegistriesConfig {
    /// The settings for a registry host (`host[:port]`), if the config has any.
    pub fn host(&self, host: &str) -> Option<&HostConfig> {
        self.hosts.iter().find(|h| h.host == host)
    }
}

#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// `host` or `host:port`, as image names spell it.
    pub host: String,
    /// Plain http instead of https.
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub webhook_token_file: Option<PathBuf>,
}

impl Config {
    /// The entry named `name`, or the only one when `name` is `None`. The
    /// error lists the names to choose from.
    pub fn repository(&self, name: Option<&str>) -> Result<&RepositoryConfig, String> {
        let names = || {
            self.repositories
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(name) => self
                .repositories
                .iter()
                .find(|r| r.name == name)
                .ok_or_else(|| {
                    format!(
                        "{}: no repository named {name:?}; the config has: {}",
                        self.source.display(),
                        names()
                    )
                }),
            None => match self.repositories.as_slice() {
                [only] => Ok(only),
                _ => Err(format!(
                    "{}: the config has several repositories; choose one with --repository: {}",
                    self.source.display(),
                    names()
                )),
            },
        }
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_str(path, &text)
    }

    /// Validates config text that came from `path` (used for messages and
    /// to resolve relative paths).
    pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let wire: wire::ConfigWire = yaml::from_str(&file, text)?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let validator = Validator { file, base };
        Ok(validator.config(wire)?)
    }
}

/// Turns wire values into checked ones, naming the place of each problem.
struct Validator<'a> {
    file: String,
    base: &'a Path,
}

impl Validator<'_> {
    fn err<T>(&self, at: &Spanned<T>, message: impl Into<String>) -> YamlError {
        YamlError::new(
            Located::new(&self.file, yaml::position(&at.referenced)),
            message,
        )
    }

    fn path(&self, value: &Spanned<String>) -> Result<PathBuf, YamlError> {
        if value.value.is_empty() {
            return Err(self.err(value, "path must not be empty"));
        }
        Ok(self.base.join(&value.value))
    }

    fn opt_path(&self, value: &Option<Spanned<String>>) -> Result<Option<PathBuf>, YamlError> {
        value.as_ref().map(|v| self.path(v)).transpose()
    }

    /// A folder inside the managed repository: relative, no `..`, `/`-separated.
    fn repo_dir(&self, value: &Spanned<String>, key: &str) -> Result<String, YamlError> {
        let mut parts = Vec::new();
        if value.value.starts_with('/') {
            return Err(self.err(
                value,
                format!("{key} must be relative to the repository root, not absolute"),
            ));
        }
        for part in value.value.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(self.err(value, format!("{key} must stay inside the repository")));
                }
                p => parts.push(p),
            }
        }
        Ok(parts.join("/"))
    }

    fn branch(&self, value: &Spanned<String>) -> Result<String, YamlError> {
        if !is_valid_branch_name(&value.value) {
            return Err(self.err(
                value,
                format!("{:?} is not a valid branch name", value.value),
            ));
        }
        Ok(value.value.clone())
    }

    fn config(&self, wire: wire::ConfigWire) -> Result<Config, YamlError> {
        let registries = match &wire.registries {
            Some(r) => self.registries(r)?,
            None => RegistriesConfig::default(),
        };
        let interval = match wire.scan.as_ref().and_then(|s| s.interval.as_ref()) {
            Some(i) => self.interval(i)?,
            None => DEFAULT_SCAN_INTERVAL,
        };
        let state_dir = match &wire.state_dir {
            Some(s) => self.path(s)?,
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        let repositories = self.repositories(&wire, &state_dir)?;
        let http = self.http(wire.http.as_ref())?;
        let flux = FluxConfig {
            scan_path: wire
                .flux
                .as_ref()
                .and_then(|f| f.scan_path)
                .unwrap_or(false),
            automation: wire
                .flux
                .as_ref()
                .and_then(|f| f.automation.as_ref())
                .map(|a| self.automation(a))
                .transpose()?,
        };
        let verify_keys = wire
            .verify_keys
            .iter()
            .map(|k| self.path(k))
            .collect::<Result<Vec<_>, _>>()?;
        let trusted_root = wire
            .sigstore
            .as_ref()
            .map(|s| self.path(&s.trusted_root))
            .transpose()?;
        Ok(Config {
            source: PathBuf::from(&self.file),
            verify_keys,
            trusted_root,
            repositories,
            registries,
            scan: ScanConfig { interval },
            state_dir,
            http,
            flux,
        })
    }

    /// `repositories:` or the `git:` shorthand: exactly one of them, names
    /// unique, entries on one URL with one set of credentials (they share
    /// a clone and its transport), no two entries writing the same thing.
    fn repositories(
        &self,
        wire: &wire::ConfigWire,
        state_dir: &Path,
    ) -> Result<Vec<RepositoryConfig>, YamlError> {
        let entries: Vec<&Spanned<wire::GitWire>> = match (&wire.git, &wire.repositories) {
            (Some(git), None) => vec![git],
            (None, Some(list)) if !list.value.is_empty() => list.value.iter().collect(),
            (None, Some(list)) => {
                return Err(self.err(list, "repositories must list at least one repository"));
            }
            (Some(_), Some(list)) => {
                return Err(self.err(
                    list,
                    "give either git (one repository) or repositories (several), not both",
                ));
            }
            (None, None) => {
                return Err(YamlError::new(
                    Located::new(&self.file, crate::model::Position::new(1, 1)),
                    "the config needs git (one repository) or repositories (several)",
                ));
            }
        };
        let shorthand = wire.git.is_some();
        let mut out: Vec<RepositoryConfig> = Vec::with_capacity(entries.len());
        for spanned in entries {
            let entry = &spanned.value;
            let name = match (&entry.name, shorthand) {
                (Some(name), _) => self.repository_name(name)?,
                (None, true) => DEFAULT_REPOSITORY.to_owned(),
                (None, false) => {
                    return Err(self.err(&entry.url, "every entry of repositories needs a name"));
                }
            };
            if let (Some(first), Some(at)) =
                (out.iter().find(|r| r.name == name), entry.name.as_ref())
            {
                return Err(self.err(
                    at,
                    format!(
                        "repository name {name:?} is used twice (first by the entry for {})",
                        first.git.url
                    ),
                ));
            }
            let git = self.git(spanned)?;
            for other in out.iter().filter(|r| r.git.url == git.url) {
                if other.git.auth != git.auth {
                    return Err(self.err(
                        &entry.url,
                        format!(
                            "repositories {:?} and {name:?} use one URL with different auth; entries on one URL share a clone and must have the same auth",
                            other.name
                        ),
                    ));
                }
                let same = |a: &GitConfig, b: &GitConfig| {
                    a.push_branch == b.push_branch && a.path == b.path && a.policies == b.policies
                };
                if same(&other.git, &git) {
                    return Err(self.err(
                        &entry.url,
                        format!(
                            "repository {name:?} writes the same branch, path and policies as {:?}; list it once",
                            other.name
                        ),
                    ));
                }
            }
            let unset = UnsetGitKeys {
                branch: entry.branch.is_none(),
                push_branch: entry.push_branch.is_none(),
                path: entry.path.is_none(),
                author: entry.author.is_none(),
            };
            out.push(RepositoryConfig {
                name,
                git,
                unset,
                clone_dir: PathBuf::new(),
            });
        }
        let urls: std::collections::BTreeSet<&str> =
            out.iter().map(|r| r.git.url.as_str()).collect();
        let several = urls.len() > 1;
        for entry in &mut out {
            entry.clone_dir = if several {
                state_dir
                    .join(CLONES_DIR)
                    .join(clone_folder(&entry.git.url))
            } else {
                state_dir.to_owned()
            };
        }
        Ok(out)
    }

    /// A repository name: a DNS label (it becomes a metric label value and
    /// a `--repository` argument).
    fn repository_name(&self, value: &Spanned<String>) -> Result<String, YamlError> {
        let name = &value.value;
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err(self.err(
                value,
                format!("repository name {name:?} must be 1-63 lowercase letters, digits and '-', not starting or ending with '-'"),
            ));
        }
        Ok(name.clone())
    }

    /// `namespace/name` of an `ImageUpdateAutomation`.
    fn automation(&self, value: &Spanned<String>) -> Result<PolicyId, YamlError> {
        match value.value.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(PolicyId::new(namespace, name))
            }
            _ => Err(self.err(
                value,
                format!(
                    "flux.automation {:?} must be namespace/name of an ImageUpdateAutomation",
                    value.value
                ),
            )),
        }
    }

    fn git(&self, spanned: &Spanned<wire::GitWire>) -> Result<GitConfig, YamlError> {
        let wire = &spanned.value;
        let url = self.git_url(&wire.url)?;
        let branch = match &wire.branch {
            Some(b) => self.branch(b)?,
            None => "main".to_owned(),
        };
        let push_branch = match &wire.push_branch {
            Some(b) => self.branch(b)?,
            None => branch.clone(),
        };
        let path = match &wire.path {
            Some(p) => self.repo_dir(p, "git.path")?,
            None => String::new(),
        };
        let policies = match &wire.policies {
            Some(p) => self.repo_dir(p, "git.policies")?,
            None => "policies".to_owned(),
        };
        let auth = match &wire.auth {
            Some(a) => self.git_auth(a, &url)?,
            None => GitAuth::default(),
        };
        if url.starts_with("ssh://") && auth.known_hosts_file.is_none() {
            return Err(self.err(
                &wire.url,
                "an ssh:// remote needs git.auth.knownHostsFile: crowsnest checks the server's host key and has no accept-anything mode",
            ));
        }
        let author = match &wire.author {
            Some(a) => {
                for field in [&a.name, &a.email] {
                    if field.value.trim().is_empty() || field.value.contains(['<', '>', '\n']) {
                        return Err(self.err(
                            field,
                            "author name and email must be non-empty and must not contain '<', '>' or newlines",
                        ));
                    }
                }
                Author {
                    name: a.name.value.clone(),
                    email: a.email.value.clone(),
                }
            }
            None => Author::default(),
        };
        let signing = wire.signing.as_ref().map(|s| self.signing(s)).transpose()?;
        // Checked here too, so a mistake points at its line (only where the
        // template engine is built: the pure core the fuzz targets use leaves
        // it to the git module).
        #[cfg(feature = "runtime")]
        if let Some(t) = &wire.message_template {
            crate::message::MessageTemplate::compile(&t.value)
                .map_err(|e| self.err(t, e.to_string()))?;
        }
        let message_template = wire.message_template.as_ref().map(|t| t.value.clone());
        Ok(GitConfig {
            url,
            branch,
            push_branch,
            path,
            policies,
            auth,
            author,
            signing,
            message_template,
        })
    }

    fn git_url(&self, url: &Spanned<String>) -> Result<String, YamlError> {
        let text = url.value.trim();
        if text.is_empty() {
            return Err(self.err(url, "git.url must not be empty"));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return match scheme {
                "ssh" | "https" | "http" | "file" => {
                    let parsed = url::Url::parse(text)
                        .map_err(|e| self.err(url, format!("git.url is not a valid URL: {e}")))?;
                    if parsed.password().is_some() {
                        return Err(self.err(
                            url,
                            "git.url must not contain a password; use git.auth.passwordFile",
                        ));
                    }
                    Ok(text.to_owned())
                }
                other => Err(self.err(
                    url,
                    format!("git.url scheme {other:?} is not supported; use ssh://, https://, http://, file:// or a local path"),
                )),
            };
        }
        if text.contains('@') && text.contains(':') {
            return Err(self.err(
                url,
                "scp-style git URLs (user@host:path) are not supported; write ssh://user@host/path",
            ));
        }
        let local = self.base.join(text);
        Ok(std::path::absolute(&local)
            .unwrap_or(local)
            .display()
            .to_string())
    }

    fn git_auth(&self, wire: &wire::GitAuthWire, url: &str) -> Result<GitAuth, YamlError> {
        let is_ssh = url.starts_with("ssh://");
        let is_http = url.starts_with("http://") || url.starts_with("https://");
        for key in [
            &wire.ssh_key_file,
            &wire.ssh_passphrase_file,
            &wire.known_hosts_file,
        ]
        .into_iter()
        .flatten()
        {
            if !is_ssh {
                return Err(self.err(key, "SSH settings need an ssh:// git.url"));
            }
        }
        for key in [&wire.username, &wire.password_file].into_iter().flatten() {
            if !is_http {
                return Err(self.err(
                    key,
                    "git.auth.username and passwordFile need an http:// or https:// git.url",
                ));
            }
        }
        if let (Some(pass), None) = (&wire.ssh_passphrase_file, &wire.ssh_key_file) {
            return Err(self.err(pass, "sshPassphraseFile needs sshKeyFile"));
        }
        Ok(GitAuth {
            ssh_key_file: self.opt_path(&wire.ssh_key_file)?,
            ssh_passphrase_file: self.opt_path(&wire.ssh_passphrase_file)?,
            known_hosts_file: self.opt_path(&wire.known_hosts_file)?,
            username: wire.username.as_ref().map(|u| u.value.clone()),
            password_file: self.opt_path(&wire.password_file)?,
        })
    }

    fn signing(&self, spanned: &Spanned<wire::SigningWire>) -> Result<Signing, YamlError> {
        let wire = &spanned.value;
        let format = match wire.format.value.as_str() {
            "openpgp" => SigningFormat::OpenPgp,
            "ssh" => SigningFormat::Ssh,
            other => {
                return Err(self.err(
                    &wire.format,
                    format!("signing format {other:?} is not one of: openpgp, ssh"),
                ));
            }
        };
        Ok(Signing {
            format,
            key_file: self.path(&wire.key_file)?,
            passphrase_file: self.opt_path(&wire.passphrase_file)?,
        })
    }

    fn registries(&self, wire: &wire::RegistriesWire) -> Result<RegistriesConfig, YamlError> {
        let mut hosts: Vec<HostConfig> = Vec::new();
        for spanned in &wire.hosts {
            let h = &spanned.value;
            let host = h.host.value.trim().to_owned();
            if host.is_empty() || host.contains("://") || host.contains('/') {
                return Err(self.err(
                    &h.host,
                    format!(
                        "registry host {host:?} must be host or host:port, without scheme or path"
                    ),
                ));
            }
            if hosts.iter().any(|other| other.host == host) {
                return Err(self.err(&h.host, format!("registry host {host:?} is listed twice")));
            }
            match (&h.username, &h.password_file) {
                (Some(u), None) => {
                    return Err(self.err(u, "username needs passwordFile"));
                }
                (None, Some(p)) => {
                    return Err(self.err(p, "passwordFile needs username"));
                }
                _ => {}
            }
            hosts.push(HostConfig {
                host,
                insecure: h.insecure,
                ca_file: self.opt_path(&h.ca_file)?,
                username: h.username.as_ref().map(|u| u.value.clone()),
                password_file: self.opt_path(&h.password_file)?,
            });
        }
        Ok(RegistriesConfig {
            docker_config: self.opt_path(&wire.docker_config)?,
            hosts,
        })
    }

    fn interval(&self, value: &Spanned<String>) -> Result<Duration, YamlError> {
        parse_interval(&value.value).map_err(|message| self.err(value, message))
    }

    fn http(&self, wire: Option<&wire::HttpWire>) -> Result<HttpConfig, YamlError> {
        let listen = match wire.and_then(|h| h.listen.as_ref()) {
            Some(l) => l.value.parse::<SocketAddr>().map_err(|_| {
                self.err(
                    l,
                    format!("http.listen {:?} is not an address:port", l.value),
                )
            })?,
            None => DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses"),
        };
        let webhook_token_file = match wire {
            Some(h) => self.opt_path(&h.webhook_token_file)?,
            None => None,
        };
        if !listen.ip().is_loopback() && webhook_token_file.is_none() {
            let at = wire
                .and_then(|h| h.listen.as_ref())
                .expect("a non-default listen was given");
            return Err(self.err(
                at,
                "http.webhookTokenFile is required when http.listen is not a loopback address",
            ));
        }
        Ok(HttpConfig {
            listen,
            webhook_token_file,
        })
    }
}

/// The clone folder of a URL under `stateDir/clones`: readable (host and
/// path, other characters as `-`, at most 48 of them) and unique (the
/// first 8 bytes of the URL's SHA-256).
pub fn clone_folder(url: &str) -> String {
    use sha2::Digest;
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let without_user = without_scheme
        .split_once('@')
        .filter(|(user, _)| !user.contains('/'))
        .map_or(without_scheme, |(_, rest)| rest);
    let mut slug: String = without_user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug = slug.trim_matches('-').chars().take(48).collect();
    let hash = sha2::Sha256::digest(url.as_bytes());
    format!("{slug}-{}", hex::encode(&hash[..8]))
}

/// Parses an interval the way Flux and Go write them (`30s`, `5m`, `1h30m`).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 30s, 5m or 1h30m: {e}"))?;
    if duration < Duration::from_secs(1) {
        return Err(format!("interval {text:?} is shorter than one second"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests;

/// Git's rules for a branch name (`git check-ref-format --branch`), checked
/// here so that configuration stays free of libgit2: no empty, `.`-leading
/// or `.lock`-ending component, no `..`, `@{`, `//`, control characters,
/// space or any of `~^:?*[\`, not `@`, and no leading or trailing `/` or
/// trailing `.`.
fn is_valid_branch_name(name: &str) -> bool {
    let forbidden = |c: char| c.is_ascii_control() || " ~^:?*[\\".contains(c);
    !name.is_empty()
        && name != "@"
        && !name.starts_with('-')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.contains("@{")
        && !name.chars().any(forbidden)
        && name
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}
