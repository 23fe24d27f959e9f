//! `crowsnest tags IMAGE` reading a real registry (Debian's docker-registry)
//! with the registry settings of a daemon config.

mod support;

use std::process::{Command, Output};

use support::registry::{Auth, RegistryServer};

fn tags(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .arg("tags")
        .args(args)
        .output()
        .expect("run crowsnest")
}

fn config(dir: &std::path::Path, registry: &RegistryServer, password: Option<&str>) -> String {
    let mut host = format!("    - host: {}\n      insecure: true\n", registry.host());
    if let Some(password) = password {
        std::fs::write(dir.join("password"), password).unwrap();
        host.push_str("      username: ci\n      passwordFile: password\n");
    }
    let path = dir.join("crowsnest.yaml");
    std::fs::write(
        &path,
        format!("git:\n  url: file:///unused\nregistries:\n  hosts:\n{host}"),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn tags_of_a_registry_repository_with_the_pick() {
    let registry = RegistryServer::start(Auth::htpasswd("ci", "pw"));
    registry.push_tags(
        "demo/app",
        &["1.0.0", "1.4.2", "2.0.0", "1.5.0-rc.1", "latest"],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &registry, Some("pw"));
    let image = format!("{}/demo/app", registry.host());

    let output = tags(&[&image, "--semver", "^1", "--config", &config, "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["selected"], "1.4.2");
    assert_eq!(json["candidates"].as_array().unwrap().len(), 5);

    let output = tags(&[&image, "--semver", "^3", "--config", &config]);
    assert_eq!(output.status.code(), Some(1), "none matched");
}

#[test]
fn registry_failures_exit_1_and_bad_configs_exit_2() {
    let registry = RegistryServer::start(Auth::htpasswd("ci", "pw"));
    registry.push_tags("demo/app", &["1.0.0"]);
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/demo/app", registry.host());

    let wrong = config(dir.path(), &registry, Some("wrong-password"));
    let output = tags(&[&image, "--semver", "^1", "--config", &wrong]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&registry.host()) && stderr.contains("demo/app"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password"), "{stderr}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "git: {url: file:///x, nope: 1}\n").unwrap();
    let output = tags(&[&image, "--semver", "^1", "--config", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.yaml:1:"));
}
