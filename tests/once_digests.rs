//! `once` with `digestReflectionPolicy` and `platform`, against the real
//! registry: the index digest is written as `image:tag@sha256:...`, and a
//! tag that lacks the policy's platform is passed over for the next best.

mod support;

use std::process::Command;

use support::git::Remote;
use support::registry::{Auth, RegistryServer};

fn policy(host: &str, extra: &str) -> String {
    format!(
        "apiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n  image: {host}/team/app\n  policy:\n    semver:\n      range: '^1'\n{extra}"
    )
}

fn once(remote: &Remote, registry: &RegistryServer, dir: &std::path::Path) -> std::process::Output {
    let config = dir.join("crowsnest.yaml");
    std::fs::write(
        &config,
        format!(
            "git:\n  url: {}\nregistries:\n  hosts:\n    - host: {}\n      insecure: true\nstateDir: state\n",
            remote.url(),
            registry.host()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(["once", "--config", config.to_str().unwrap()])
        .output()
        .expect("run crowsnest")
}

#[test]
fn digests_are_reflected_and_platforms_filter_tags() {
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let multi = registry.push_index("team/app", "1.1.0", &["linux/amd64", "linux/arm64"]);
    // The newest tag has no arm64 image: a linux/arm64 policy must pass it over.
    registry.push_image("team/app", "1.2.0", "linux/amd64");

    let remote = Remote::new(&[
        (
            "policies/app.yaml",
            &policy(
                &host,
                "  digestReflectionPolicy: Always\n  platform: linux/arm64\n",
            ),
        ),
        (
            "deploy.yaml",
            &format!("image: {host}/team/app:1.0.0 # {{\"$imagepolicy\": \"default:app\"}}\n"),
        ),
        (
            "kustomization.yaml",
            "images:\n  - name: app\n    newTag: 1.0.0 # {\"$imagepolicy\": \"default:app:tag\"}\n    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000 # {\"$imagepolicy\": \"default:app:digest\"}\n",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let output = once(&remote, &registry, dir.path());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let deploy = String::from_utf8(remote.file("main", "deploy.yaml").unwrap()).unwrap();
    assert_eq!(
        deploy,
        format!(
            "image: {host}/team/app:1.1.0@{} # {{\"$imagepolicy\": \"default:app\"}}\n",
            multi.digest
        ),
        "the index digest of the best tag that has linux/arm64"
    );
    let kustomization =
        String::from_utf8(remote.file("main", "kustomization.yaml").unwrap()).unwrap();
    assert!(kustomization.contains("newTag: 1.1.0 #"), "{kustomization}");
    assert!(
        kustomization.contains(&format!("digest: {} #", multi.digest)),
        "{kustomization}"
    );
    let message = remote.message("main");
    assert!(
        message.contains(&format!(
            "Image-Update: default:app {host}/team/app:1.0.0 -> {host}/team/app:1.1.0@{}",
            multi.digest
        )),
        "{message}"
    );

    // The tag moves to a new index: Always follows it, and says so; a
    // second pass without a move changes nothing.
    let before = remote.commit_count("main");
    assert_eq!(once(&remote, &registry, dir.path()).status.code(), Some(0));
    assert_eq!(remote.commit_count("main"), before);
    let moved = registry.push_index("team/app", "1.1.0", &["linux/arm64", "linux/s390x"]);
    assert_ne!(moved.digest, multi.digest);
    let followed = once(&remote, &registry, dir.path());
    assert_eq!(followed.status.code(), Some(0));
    let log = String::from_utf8_lossy(&followed.stderr);
    assert!(
        log.contains("the tag now points to another digest than the files pin; following it"),
        "a followed move is reported: {log}"
    );
    let deploy = String::from_utf8(remote.file("main", "deploy.yaml").unwrap()).unwrap();
    assert!(
        deploy.contains(&format!("app:1.1.0@{} #", moved.digest)),
        "{deploy}"
    );
}

#[test]
fn if_not_present_keeps_a_pinned_digest_without_asking() {
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let pushed = registry.push_tags("team/app", &["1.1.0"]);
    let pinned = format!("{host}/team/app:1.1.0@sha256:{}", "1".repeat(64));
    let remote = Remote::new(&[
        (
            "policies/app.yaml",
            &policy(&host, "  digestReflectionPolicy: IfNotPresent\n"),
        ),
        (
            "a.yaml",
            &format!("image: {pinned} # {{\"$imagepolicy\": \"default:app\"}}\n"),
        ),
        (
            "b.yaml",
            &format!("image: {host}/team/app:1.0.0 # {{\"$imagepolicy\": \"default:app\"}}\n"),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let manifest_requests = |registry: &RegistryServer| {
        registry
            .requests()
            .iter()
            .filter(|r| r.path().contains("/manifests/"))
            .count()
    };
    let before = manifest_requests(&registry);
    let output = once(&remote, &registry, dir.path());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        manifest_requests(&registry),
        before,
        "the pinned digest is reused, not asked for"
    );
    let b = String::from_utf8(remote.file("main", "b.yaml").unwrap()).unwrap();
    assert!(
        b.contains(&pinned),
        "b.yaml gets the digest a.yaml pins: {b}"
    );
    assert_ne!(pushed[0].digest, format!("sha256:{}", "1".repeat(64)));
}
