use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(Path::new("/etc/crowsnest/crowsnest.yaml"), text)
}

fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let config = load("git:\n  url: file:///srv/fleet.git\n").unwrap();
    assert_eq!(config.repositories[0].git.url, "file:///srv/fleet.git");
    assert_eq!(config.repositories[0].git.branch, "main");
    assert_eq!(config.repositories[0].git.push_branch, "main");
    assert_eq!(config.repositories[0].git.path, "");
    assert_eq!(config.repositories[0].git.policies, "policies");
    assert_eq!(config.repositories[0].git.author, Author::default());
    assert!(config.repositories[0].git.signing.is_none());
    assert_eq!(config.scan.interval, DEFAULT_SCAN_INTERVAL);
    assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    assert_eq!(config.http.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn full_config_is_read_and_paths_resolve_next_to_the_file() {
    let config = load(
        r#"
git:
  url: http://git.example.com/fleet.git
  branch: main
  pushBranch: main
  path: ./clusters/prod/
  policies: policies
  author: { name: Bot, email: bot@example.com }
  signing:
    format: openpgp
    keyFile: signing/key.asc
    passphraseFile: /run/secrets/pass
registries:
  hosts:
    - host: 127.0.0.1:5000
      insecure: true
      username: ci
      passwordFile: registry-password
scan:
  interval: 1h30m
stateDir: state
http:
  listen: 127.0.0.1:9090
"#,
    )
    .unwrap();
    assert_eq!(config.repositories[0].git.path, "clusters/prod");
    let signing = config.repositories[0].git.signing.clone().unwrap();
    assert_eq!(signing.format, SigningFormat::OpenPgp);
    assert_eq!(
        signing.key_file,
        PathBuf::from("/etc/crowsnest/signing/key.asc")
    );
    assert_eq!(
        signing.passphrase_file,
        Some(PathBuf::from("/run/secrets/pass"))
    );
    let host = config.registries.host("127.0.0.1:5000").unwrap();
    assert!(host.insecure);
    assert_eq!(host.username.as_deref(), Some("ci"));
    assert_eq!(
        host.password_file,
        Some(PathBuf::from("/etc/crowsnest/registry-password"))
    );
    assert_eq!(config.scan.interval, Duration::from_secs(5400));
    assert_eq!(config.state_dir, PathBuf::from("/etc/crowsnest/state"));
    assert_eq!(config.http.listen.port(), 9090);
}

#[test]
fn local_paths_become_absolute() {
    let config =
        Config::from_str(Path::new("conf/c.yaml"), "git:\n  url: ../remote.git\n").unwrap();
    assert!(
        Path::new(&config.repositories[0].git.url).is_absolute(),
        "{}",
        config.repositories[0].git.url
    );
    assert!(
        config.repositories[0]
            .git
            .url
            .ends_with("conf/../remote.git"),
        "{}",
        config.repositories[0].git.url
    );
}

#[test]
fn every_error_names_file_line_and_column() {
    let cases = [
        (
            "git:\n  url: file:///x\n  bogus: 1\n",
            "/etc/crowsnest/crowsnest.yaml:3:3: unknown field `bogus`",
        ),
        (
            "gti:\n  url: x\n",
            "/etc/crowsnest/crowsnest.yaml:1:1: unknown field `gti`",
        ),
        (
            "stateDir: /x\n",
            "/etc/crowsnest/crowsnest.yaml:1:1: the config needs git (one repository) or repositories (several)",
        ),
        (
            "git:\n  url: ftp://x/y\n",
            "/etc/crowsnest/crowsnest.yaml:2:8: git.url scheme \"ftp\"",
        ),
        (
            "git:\n  url: git@github.com:org/fleet.git\n",
            "/etc/crowsnest/crowsnest.yaml:2:8: scp-style",
        ),
        (
            "git:\n  url: https://u:p@h/x.git\n",
            "2:8: git.url must not contain a password",
        ),
        (
            "git:\n  url: file:///x\n  branch: 'a..b'\n",
            "3:11: \"a..b\" is not a valid branch name",
        ),
        (
            "git:\n  url: file:///x\n  path: ../up\n",
            "3:9: git.path must stay inside the repository",
        ),
        (
            "git:\n  url: file:///x\n  policies: /abs\n",
            "3:13: git.policies must be relative",
        ),
        (
            "git:\n  url: file:///x\n  signing: {format: x509, keyFile: k}\n",
            "3:21: signing format \"x509\" is not one of",
        ),
        (
            "git:\n  url: file:///x\nscan:\n  interval: soon\n",
            "4:13: \"soon\" is not a duration",
        ),
        (
            "git:\n  url: file:///x\nscan:\n  interval: 10ms\n",
            "4:13: interval \"10ms\" is shorter than one second",
        ),
        (
            "git:\n  url: file:///x\nregistries:\n  hosts:\n    - host: https://r.io\n",
            "5:13: registry host",
        ),
        (
            "git:\n  url: file:///x\nregistries:\n  hosts:\n    - {host: r.io}\n    - {host: r.io}\n",
            "6:14: registry host \"r.io\" is listed twice",
        ),
        (
            "git:\n  url: file:///x\nregistries:\n  hosts:\n    - {host: r.io, username: u}\n",
            "5:30: username needs passwordFile",
        ),
        (
            "git:\n  url: file:///x\nregistries:\n  hosts:\n    - {host: r.io, insecure: maybe}\n",
            "5:30: invalid boolean",
        ),
        (
            "git:\n  url: file:///x\nhttp:\n  listen: nowhere\n",
            "4:11: http.listen \"nowhere\" is not an address:port",
        ),
        (
            "git:\n  url: file:///x\nhttp:\n  listen: 0.0.0.0:8080\n",
            "4:11: http.webhookTokenFile is required",
        ),
        (
            "git:\n  url: file:///x\n  author: {name: 'a<b', email: e}\n",
            "3:18: author name and email",
        ),
        ("git: [\n", "/etc/crowsnest/crowsnest.yaml:"),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.contains(expected),
            "for {text:?}\n  got:  {message}\n  want: {expected}"
        );
        assert!(
            message.starts_with("/etc/crowsnest/crowsnest.yaml:"),
            "{message}"
        );
    }
}

// Templates are checked by the runtime's renderer (src/message.rs).
#[cfg(feature = "runtime")]
#[test]
fn ssh_signing_and_message_templates_are_accepted_and_templates_checked() {
    let config = load(
        "git:\n  url: file:///x\n  signing: {format: ssh, keyFile: k}\n  messageTemplate: 'Update {{ images | join(\", \") }}'\n",
    )
    .unwrap();
    assert_eq!(
        config.repositories[0].git.signing.clone().unwrap().format,
        SigningFormat::Ssh
    );
    assert!(config.repositories[0].git.message_template.is_some());
    let message = error("git:\n  url: file:///x\n  messageTemplate: '{{ nope }}'\n");
    assert!(
        message.contains("3:20: git.messageTemplate: ") && message.contains("undefined"),
        "{message}"
    );
}

#[test]
fn git_auth_is_read_per_transport() {
    let config = load(
        "git:\n  url: ssh://git@git.example.com:2222/fleet.git\n  auth:\n    sshKeyFile: id\n    sshPassphraseFile: pass\n    knownHostsFile: /etc/kh\n",
    )
    .unwrap();
    let auth = config.repositories[0].git.auth.clone();
    assert_eq!(auth.ssh_key_file, Some(PathBuf::from("/etc/crowsnest/id")));
    assert_eq!(
        auth.ssh_passphrase_file,
        Some(PathBuf::from("/etc/crowsnest/pass"))
    );
    assert_eq!(auth.known_hosts_file, Some(PathBuf::from("/etc/kh")));
    let config = load(
        "git:\n  url: https://git.example.com/fleet.git\n  auth: {username: bot, passwordFile: token}\n",
    )
    .unwrap();
    assert_eq!(
        config.repositories[0].git.auth.username.as_deref(),
        Some("bot")
    );
    assert_eq!(
        config.repositories[0].git.auth.password_file,
        Some(PathBuf::from("/etc/crowsnest/token"))
    );
    for (text, want) in [
        (
            "git:\n  url: ssh://git@h/f.git\n",
            "2:8: an ssh:// remote needs git.auth.knownHostsFile",
        ),
        (
            "git:\n  url: https://h/f.git\n  auth: {sshKeyFile: id}\n",
            "3:22: SSH settings need an ssh:// git.url",
        ),
        (
            "git:\n  url: ssh://git@h/f.git\n  auth: {knownHostsFile: kh, passwordFile: p}\n",
            "git.auth.username and passwordFile need an http:// or https:// git.url",
        ),
    ] {
        let message = error(text);
        assert!(message.contains(want), "{text:?}: {message}");
    }
}

#[test]
fn a_webhook_token_file_lets_the_daemon_listen_beyond_loopback() {
    let config = load(
        "git:\n  url: file:///x\nhttp:\n  listen: 0.0.0.0:8080\n  webhookTokenFile: hook/token\n",
    )
    .unwrap();
    assert_eq!(config.http.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(
        config.http.webhook_token_file,
        Some(PathBuf::from("/etc/crowsnest/hook/token"))
    );
    // Optional on loopback: webhooks are then accepted without a token.
    let local = load("git:\n  url: file:///x\n").unwrap();
    assert_eq!(local.http.webhook_token_file, None);
    assert!(
        error("git:\n  url: file:///x\nhttp:\n  webhookTokenFile: ''\n")
            .contains("4:21: path must not be empty")
    );
}

#[test]
fn unreadable_config_names_the_path() {
    let err = Config::load(Path::new("/nonexistent/crowsnest.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/crowsnest.yaml: cannot read"),
        "{err}"
    );
}

#[test]
fn registry_docker_config_and_ca_file_resolve_next_to_the_file() {
    let config = load(
        "git:\n  url: file:///x\nregistries:\n  dockerConfig: docker/config.json\n  hosts:\n    - host: registry.internal:5000\n      caFile: certs/ca.pem\n",
    )
    .unwrap();
    assert_eq!(
        config.registries.docker_config,
        Some(PathBuf::from("/etc/crowsnest/docker/config.json"))
    );
    let host = config.registries.host("registry.internal:5000").unwrap();
    assert_eq!(
        host.ca_file,
        Some(PathBuf::from("/etc/crowsnest/certs/ca.pem"))
    );
    assert!(!host.insecure);
}

#[test]
fn branch_names_follow_git_check_ref_format() {
    let cases = [
        ("main", true),
        ("release/1.2", true),
        ("crowsnest/updates-é", true),
        ("a..b", false),
        ("a/.hidden", false),
        ("a.lock", false),
        ("a/b.lock/c", false),
        ("a//b", false),
        ("/a", false),
        ("a/", false),
        ("a.", false),
        ("a b", false),
        ("a~1", false),
        ("a^", false),
        ("a:b", false),
        ("a?", false),
        ("a*", false),
        ("a[b", false),
        ("a\\b", false),
        ("a@{1}", false),
        ("-x", false),
        ("a\u{7f}", false),
    ];
    for (name, valid) in cases {
        let text = format!("git:\n  url: file:///x\n  branch: {name:?}\n");
        assert_eq!(load(&text).is_ok(), valid, "{name:?}");
        let git = std::process::Command::new("git")
            .args(["check-ref-format", "--branch", name])
            .output()
            .expect("git is installed by scripts/test");
        assert_eq!(git.status.success(), valid, "git disagrees on {name:?}");
    }
}

#[test]
fn flux_keys_and_which_git_keys_are_left_to_an_automation() {
    let config = load("git:\n  url: file:///srv/fleet.git\n").unwrap();
    assert_eq!(
        config.repositories[0].unset,
        UnsetGitKeys {
            branch: true,
            push_branch: true,
            path: true,
            author: true
        }
    );
    assert!(!config.flux.scan_path && config.flux.automation.is_none());
    let config = load(
        "git:\n  url: file:///srv/fleet.git\n  branch: main\n  path: clusters\nflux:\n  scanPath: true\n  automation: flux-system/apps\n",
    )
    .unwrap();
    assert_eq!(
        config.repositories[0].unset,
        UnsetGitKeys {
            branch: false,
            push_branch: true,
            path: false,
            author: true
        }
    );
    assert!(config.flux.scan_path);
    assert_eq!(
        config.flux.automation,
        Some(PolicyId::new("flux-system", "apps"))
    );
    assert_eq!(
        error("git:\n  url: file:///srv/fleet.git\nflux:\n  automation: apps\n"),
        "/etc/crowsnest/crowsnest.yaml:4:15: flux.automation \"apps\" must be namespace/name of an ImageUpdateAutomation"
    );
    assert!(
        error("git:\n  url: file:///srv/fleet.git\nflux:\n  scanpath: true\n")
            .starts_with("/etc/crowsnest/crowsnest.yaml:4:3: unknown field `scanpath`")
    );
}

#[test]
fn git_is_one_repository_named_default_in_state_dir() {
    let config = load("git:\n  url: file:///srv/fleet.git\nstateDir: /state\n").unwrap();
    assert_eq!(config.repositories.len(), 1);
    let entry = config.repository(None).unwrap();
    assert_eq!(entry.name, DEFAULT_REPOSITORY);
    assert_eq!(entry.clone_dir, PathBuf::from("/state"));
    let named = load("git:\n  name: fleet\n  url: file:///srv/fleet.git\n").unwrap();
    assert_eq!(named.repository(Some("fleet")).unwrap().name, "fleet");
}

const FLEET: &str = r#"
stateDir: /state
repositories:
  - name: fleet
    url: https://git.example.com/fleet.git
    auth: { username: bot, passwordFile: token }
  - name: fleet-production
    url: https://git.example.com/fleet.git
    branch: production
    auth: { username: bot, passwordFile: token }
  - name: team-a
    url: file:///srv/team-a.git
    path: apps
"#;

#[test]
fn repositories_share_a_clone_per_url_and_keep_their_own_git_keys() {
    let config = load(FLEET).unwrap();
    let names: Vec<&str> = config
        .repositories
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["fleet", "fleet-production", "team-a"]);
    let [fleet, production, team] = &config.repositories[..] else {
        panic!("three entries")
    };
    assert_eq!(fleet.clone_dir, production.clone_dir);
    assert_ne!(fleet.clone_dir, team.clone_dir);
    assert!(
        fleet.clone_dir.starts_with("/state/clones"),
        "{:?}",
        fleet.clone_dir
    );
    let folder = fleet.clone_dir.file_name().unwrap().to_str().unwrap();
    assert!(folder.starts_with("git-example-com-fleet-git-"), "{folder}");
    assert_eq!(production.git.branch, "production");
    assert_eq!(production.git.push_branch, "production");
    assert!(!production.unset.branch && fleet.unset.branch);
    assert_eq!(team.git.path, "apps");
    assert!(
        config
            .repository(None)
            .unwrap_err()
            .contains("fleet, fleet-production, team-a")
    );
    assert!(
        config
            .repository(Some("nope"))
            .unwrap_err()
            .contains("no repository named \"nope\"")
    );
}

#[test]
fn repository_entries_are_validated_at_their_place() {
    let cases = [
        (
            "git:\n  url: file:///x\nrepositories:\n  - name: a\n    url: file:///y\n",
            "4:3: give either git (one repository) or repositories (several), not both",
        ),
        (
            "repositories: []\n",
            "1:15: repositories must list at least one",
        ),
        (
            "repositories:\n  - url: file:///y\n",
            "2:10: every entry of repositories needs a name",
        ),
        (
            "repositories:\n  - name: Fleet_A\n    url: file:///y\n",
            "2:11: repository name \"Fleet_A\" must be 1-63 lowercase",
        ),
        (
            "repositories:\n  - name: a\n    url: file:///y\n  - name: a\n    url: file:///z\n",
            "4:11: repository name \"a\" is used twice (first by the entry for file:///y)",
        ),
        (
            "repositories:\n  - name: a\n    url: http://h/x.git\n  - name: b\n    url: http://h/x.git\n    branch: b\n    auth: {username: u, passwordFile: p}\n",
            "5:10: repositories \"a\" and \"b\" use one URL with different auth",
        ),
        (
            "repositories:\n  - name: a\n    url: file:///y\n  - name: b\n    url: file:///y\n",
            "5:10: repository \"b\" writes the same branch, path and policies as \"a\"",
        ),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.contains(expected),
            "for {text:?}\n  got:  {message}\n  want: {expected}"
        );
    }
}
