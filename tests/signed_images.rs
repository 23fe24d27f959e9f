//! Only signed images (PRODUCT.md §9) against Debian's docker-registry:
//! signatures made with the `openssl` command line in cosign's formats
//! (simple-signing payload, `sha256-<hex>.sig` manifest, signature
//! annotation), pushed like cosign pushes them; `crowsnest once` and
//! `check`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use support::fleet::{AUTHOR, text};
use support::git::Remote;
use support::registry::{Auth, RegistryServer};
use support::signing::GpgKey;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// A P-256 (`ec`) or Ed25519 key pair in `dir`: the private key file and
/// the public PEM.
fn key_pair(dir: &Path, name: &str, ed25519: bool) -> (String, String) {
    let private = format!("{name}.key");
    if ed25519 {
        openssl(dir, &["genpkey", "-algorithm", "ed25519", "-out", &private]);
    } else {
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &private,
            ],
        );
    }
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            &private,
            "-pubout",
            "-out",
            &format!("{name}.pub"),
        ],
    );
    (
        private,
        std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap(),
    )
}

fn payload(reference: &str, digest: &str) -> Vec<u8> {
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"{reference}\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
    )
    .into_bytes()
}

fn sign(dir: &Path, private: &str, ed25519: bool, payload: &[u8]) -> String {
    std::fs::write(dir.join("payload.json"), payload).unwrap();
    if ed25519 {
        openssl(
            dir,
            &[
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                private,
                "-in",
                "payload.json",
                "-out",
                "sig",
            ],
        );
    } else {
        openssl(
            dir,
            &[
                "dgst",
                "-sha256",
                "-sign",
                private,
                "-out",
                "sig",
                "payload.json",
            ],
        );
    }
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("sig")).unwrap())
}

fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

fn deployment(host: &str, app: &str, value: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n    spec:\n      containers:\n        - name: {app}\n          image: {host}/demo/{app}:{value} # {{\"$imagepolicy\": \"default:{app}\"}}\n"
    )
}

fn policy(host: &str, app: &str, reflection: &str) -> String {
    format!(
        "---\napiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {app}\nspec:\n  image: {host}/demo/{app}\n  policy:\n    semver:\n      range: \">=1.0.0\"\n  digestReflectionPolicy: {reflection}\n  verify:\n    provider: cosign\n    publicKeys: [keys/team.pub]\n"
    )
}

fn crowsnest(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run crowsnest")
}

#[test]
fn only_tags_signed_by_the_teams_key_are_written_with_their_digest() {
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let (stranger, _) = key_pair(keys.path(), "stranger", true);
    let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0", "1.2.0", "1.3.0"]);
    let other = registry.push_tags("demo/other", &["2.0.0", "2.1.0"]);
    let reference = format!("{host}/demo/app");
    // 1.1.0: signed by the team. 1.2.0: by a stranger's key, and a team
    // signature made for 1.1.0's digest copied next to it. 1.3.0 (the
    // newest): unsigned.
    let good = payload(&reference, &app[1].digest);
    registry.push_signatures(
        "demo/app",
        &sig_tag(&app[1].digest),
        &[(good.clone(), sign(keys.path(), &team, false, &good))],
    );
    let strangers = payload(&reference, &app[2].digest);
    registry.push_signatures(
        "demo/app",
        &sig_tag(&app[2].digest),
        &[
            (
                strangers.clone(),
                sign(keys.path(), &stranger, true, &strangers),
            ),
            (good.clone(), sign(keys.path(), &team, false, &good)),
        ],
    );
    let other_payload = payload(&format!("{host}/demo/other"), &other[1].digest);
    registry.push_signatures(
        "demo/other",
        &sig_tag(&other[1].digest),
        &[(
            other_payload.clone(),
            sign(keys.path(), &team, false, &other_payload),
        )],
    );
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        (
            "policies/apps.yaml",
            &format!(
                "{}{}",
                policy(&host, "app", "Always"),
                policy(&host, "other", "Never")
            ),
        ),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
        ("apps/other.yaml", &deployment(&host, "other", "2.0.0")),
    ]);
    let gpg = GpgKey::ed25519();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crowsnest.yaml");
    std::fs::write(
        &config,
        format!(
            "git:\n  url: {url}\n  author: {{ name: {AUTHOR}, email: bot@example.com }}\n  signing:\n    format: openpgp\n    keyFile: {key}\nregistries:\n  hosts:\n    - host: {host}\n      insecure: true\nstateDir: state\n",
            url = remote.url(),
            key = gpg.key_file.display(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();

    let once = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}\n{}",
        text(&once.stdout),
        text(&once.stderr)
    );
    let written = text(&remote.file("main", "apps/app.yaml").unwrap());
    assert_eq!(
        written,
        deployment(&host, "app", &format!("1.1.0@{}", app[1].digest)),
        "the newest signed tag, pinned to the verified digest"
    );
    assert_eq!(
        text(&remote.file("main", "apps/other.yaml").unwrap()),
        deployment(&host, "other", "2.1.0")
    );
    let message = remote.message("main");
    assert!(
        message.contains(&format!(
            "Verified: default:other {} key sha256:",
            other[1].digest
        )),
        "without digest reflection the verified digest is in a trailer:\n{message}"
    );
    assert!(!message.contains("Verified: default:app"), "{message}");
    gpg.verify_commit(&remote.path, "main")
        .expect("signed commit");
    assert!(
        text(&once.stderr).is_empty() || !text(&once.stderr).contains("error"),
        "{}",
        text(&once.stderr)
    );

    // The tag crowsnest wrote is moved to another image: reported, never followed.
    let moved = registry.push_image("demo/app", "1.1.0", "linux/arm64");
    assert_ne!(moved, app[1].digest);
    let again = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stdout));
    assert!(
        text(&again.stderr).contains("signed by the policy's keys"),
        "an unsigned image under the tag is passed over: {}",
        text(&again.stderr)
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        written
    );
    // Even signed by the team, a moved tag is reported, not followed.
    let resigned = payload(&reference, &moved);
    registry.push_signatures(
        "demo/app",
        &sig_tag(&moved),
        &[(resigned.clone(), sign(keys.path(), &team, false, &resigned))],
    );
    let third = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(third.status.code(), Some(1), "{}", text(&third.stdout));
    let errors = text(&third.stderr);
    assert!(
        errors.contains(&format!("now points to {moved}"))
            && errors.contains("does not follow a moved tag"),
        "{errors}"
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        written,
        "the file keeps the verified digest"
    );

    // check: key files must exist and parse.
    let checkout = tempfile::tempdir().unwrap();
    let policies = checkout.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("apps.yaml"), policy(&host, "app", "Always")).unwrap();
    let check = crowsnest(checkout.path(), &["check", "."]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stdout).contains("verify.publicKeys keys/team.pub"),
        "{}",
        text(&check.stdout)
    );
    std::fs::create_dir_all(checkout.path().join("keys")).unwrap();
    std::fs::write(checkout.path().join("keys/team.pub"), &team_pem).unwrap();
    let check = crowsnest(checkout.path(), &["check", "."]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
}
