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
    let algorithm = if ed25519 {
        Algorithm::Ed25519
    } else {
        Algorithm::P256
    };
    key_pair_of(dir, name, algorithm)
}

/// The key types cosign signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    P256,
    P384,
    Ed25519,
    Rsa,
}

/// A key pair of `algorithm` in `dir`: the private key file and the
/// public PEM. [`sign`] signs with any of them (`ed25519` only for
/// Ed25519; ECDSA and RSA keys sign the payload's SHA-256, as cosign does).
fn key_pair_of(dir: &Path, name: &str, algorithm: Algorithm) -> (String, String) {
    let private = format!("{name}.key");
    let generate: &[&str] = match algorithm {
        Algorithm::P256 => &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        Algorithm::P384 => &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
        Algorithm::Ed25519 => &["genpkey", "-algorithm", "ed25519"],
        Algorithm::Rsa => &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    };
    openssl(dir, &[generate, &["-out", &private]].concat());
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

/// Signs cosign's payload for `reference` and `digest` with the private
/// key file `private` (in `keys`) and pushes it as `digest`'s `.sig` in
/// `repository`, as `cosign sign --key` does.
fn push_signed(
    registry: &RegistryServer,
    repository: &str,
    reference: &str,
    digest: &str,
    (keys, private): (&Path, &str),
    ed25519: bool,
) {
    let signed = payload(reference, digest);
    let signature = sign(keys, private, ed25519, &signed);
    registry.push_signatures(repository, &sig_tag(digest), &[(signed, signature)]);
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

/// Writes `dir/crowsnest.yaml` for `remote` and the registry at `host`
/// (plain http), commits signed with `signer` when given, with `tail`
/// appended (top-level keys); returns its path.
fn write_config(
    dir: &Path,
    remote: &Remote,
    host: &str,
    signer: Option<&GpgKey>,
    tail: &str,
) -> String {
    let signing = signer.map_or(String::new(), |gpg| {
        format!(
            "  signing:\n    format: openpgp\n    keyFile: {}\n",
            gpg.key_file.display()
        )
    });
    let config = dir.join("crowsnest.yaml");
    std::fs::write(
        &config,
        format!(
            "git:\n  url: {url}\n  author: {{ name: {AUTHOR}, email: bot@example.com }}\n{signing}registries:\n  hosts:\n    - host: {host}\n      insecure: true\nstateDir: state\n{tail}",
            url = remote.url(),
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_owned()
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
    push_signed(
        &registry,
        "demo/other",
        &format!("{host}/demo/other"),
        &other[1].digest,
        (keys.path(), &team),
        false,
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
    let config = write_config(dir.path(), &remote, &host, Some(&gpg), "");

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
    assert!(
        message.contains(&format!(
            "Verified: default:app {} key sha256:",
            app[1].digest
        )),
        "with digest reflection the trailer says who signed too:\n{message}"
    );
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
        text(&again.stderr).contains(&format!("now points to {moved} (unsigned)")),
        "a tag moved to an unsigned image is reported as moved: {}",
        text(&again.stderr)
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        written
    );
    // Even signed by the team, a moved tag is reported, not followed.
    push_signed(
        &registry,
        "demo/app",
        &reference,
        &moved,
        (keys.path(), &team),
        false,
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

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0";

/// tests/support/sigstore.sh: openssl standing in for cosign, Fulcio and
/// Rekor (there is no cosign package here).
fn sigstore(args: &[&str]) -> Vec<u8> {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sigstore.sh"))
        .args(args)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "sigstore.sh {args:?}: {}",
        text(&out.stderr)
    );
    out.stdout
}

fn statement(reference: &str, digest: &str) -> String {
    format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"{reference}","digest":{{"sha256":"{}"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#,
        digest.trim_start_matches("sha256:")
    )
}

fn keyless_policy(host: &str, app: &str, reflection: &str) -> String {
    format!(
        "---\napiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: {app}\nspec:\n  image: {host}/demo/{app}\n  policy:\n    semver:\n      range: \">=1.0.0\"\n  digestReflectionPolicy: {reflection}\n  verify:\n    provider: cosign\n    keyless:\n      - issuer: {ISSUER}\n        subject: '^https://github\\.com/acme/.+@refs/tags/v.+$'\n"
    )
}

#[test]
fn keyless_signatures_and_referrer_bundles_are_checked_offline_against_the_trusted_root() {
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let trust = tempfile::tempdir().unwrap();
    let t = trust.path().to_str().unwrap();
    sigstore(&["root", t]);
    sigstore(&["leaf", t, "ci", ISSUER, SUBJECT]);
    sigstore(&[
        "leaf",
        t,
        "stranger",
        ISSUER,
        "https://github.com/evil/fork/.github/workflows/release.yml@refs/tags/v9",
    ]);
    let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]);
    let svc = registry.push_tags("demo/svc", &["2.0.0", "2.1.0"]);
    let reference = format!("{host}/demo/app");
    let keyless_sig = |repository: &str, leaf: &str, reference: &str, digest: &str| {
        let file = trust.path().join("payload");
        std::fs::write(&file, payload(reference, digest)).unwrap();
        let annotations: serde_json::Value =
            serde_json::from_slice(&sigstore(&["keyless", t, leaf, file.to_str().unwrap()]))
                .unwrap();
        registry.push_signature_layers(
            repository,
            &sig_tag(digest),
            &[(payload(reference, digest), annotations)],
        );
    };
    let bundle = |leaf: &str, statement: String| {
        let file = trust.path().join("statement");
        std::fs::write(&file, statement).unwrap();
        sigstore(&["bundle", t, leaf, file.to_str().unwrap()])
    };
    // 1.4.0 (the newest): keyless, by an identity the policy does not
    // trust. 1.3.0: a referrer bundle by the right identity whose
    // statement names 1.0.0's digest. 1.2.0: a referrer bundle for itself
    // (the pick). 1.1.0: keyless in cosign's tag scheme.
    keyless_sig("demo/app", "stranger", &reference, &app[4].digest);
    registry.push_referrer_bundle(
        "demo/app",
        &app[3].digest,
        &bundle("ci", statement(&reference, &app[0].digest)),
    );
    registry.push_referrer_bundle(
        "demo/app",
        &app[2].digest,
        &bundle("ci", statement(&reference, &app[2].digest)),
    );
    keyless_sig("demo/app", "ci", &reference, &app[1].digest);
    keyless_sig(
        "demo/svc",
        "ci",
        &format!("{host}/demo/svc"),
        &svc[1].digest,
    );

    let policies = format!(
        "{}{}",
        keyless_policy(&host, "app", "Always"),
        keyless_policy(&host, "svc", "Never")
    );
    let remote = Remote::new(&[
        ("policies/apps.yaml", policies.as_str()),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
        ("apps/svc.yaml", &deployment(&host, "svc", "2.0.0")),
    ]);
    let gpg = GpgKey::ed25519();
    let dir = tempfile::tempdir().unwrap();
    // Without a trusted root nothing keyless is taken.
    let config = write_config(dir.path(), &remote, &host, Some(&gpg), "");
    let refused = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("sigstore.trustedRoot"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", "1.0.0")
    );

    write_config(
        dir.path(),
        &remote,
        &host,
        Some(&gpg),
        &format!(
            "sigstore:\n  trustedRoot: {}\n",
            trust.path().join("trusted_root.json").display()
        ),
    );
    let before = registry.request_count();
    let once = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}\n{}",
        text(&once.stdout),
        text(&once.stderr)
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", &format!("1.2.0@{}", app[2].digest)),
        "the newest tag signed by a trusted identity, found as a referrer bundle"
    );
    assert_eq!(
        text(&remote.file("main", "apps/svc.yaml").unwrap()),
        deployment(&host, "svc", "2.1.0")
    );
    let message = remote.message("main");
    assert!(
        message.contains(&format!(
            "Verified: default:svc {} key {SUBJECT} ({ISSUER})",
            svc[1].digest
        )),
        "{message}"
    );
    gpg.verify_commit(&remote.path, "main")
        .expect("signed commit");
    // The registry has no referrers API: asked once, then the fallback tag.
    let referrers = registry
        .requests_since(before)
        .iter()
        .filter(|r| r.path().contains("/referrers/"))
        .count();
    assert_eq!(referrers, 1, "the referrers API is asked once per registry");

    // explain and tags --all show each verdict.
    let explain = crowsnest(dir.path(), &["explain", "default:app", "--config", &config]);
    let shown = text(&explain.stdout);
    assert_eq!(
        explain.status.code(),
        Some(0),
        "{shown}\n{}",
        text(&explain.stderr)
    );
    let line = |tag: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{tag} ")))
            .unwrap_or_else(|| panic!("no line for {tag}:\n{shown}"))
            .to_owned()
    };
    assert!(
        line("1.4.0").contains("bad signature")
            && line("1.4.0").contains("not an identity the policy trusts"),
        "{shown}"
    );
    assert!(
        line("1.3.0").contains("bad signature") && line("1.3.0").contains("does not name"),
        "{shown}"
    );
    assert!(
        line("1.2.0").contains("selected") && line("1.2.0").contains(SUBJECT),
        "{shown}"
    );
    // The signed pick, with its digest, is what the files already hold.
    let pinned = format!("{host}/demo/app:1.2.0@{}", app[2].digest);
    assert!(
        shown.contains(&format!("apps/app.yaml:10:18  image  {pinned} unchanged\n")),
        "{shown}"
    );
    let checkout = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(checkout.path().join("policies")).unwrap();
    std::fs::write(checkout.path().join("policies/apps.yaml"), &policies).unwrap();
    let tags = crowsnest(
        checkout.path(),
        &[
            "tags",
            &reference,
            "--policy",
            "policies/apps.yaml:app",
            "--config",
            &config,
            "--all",
        ],
    );
    assert_eq!(tags.status.code(), Some(0), "{}", text(&tags.stderr));
    let listed = text(&tags.stdout);
    assert!(
        listed.contains("selected 1.2.0") && listed.contains("bad signature"),
        "{listed}"
    );
}

#[test]
fn a_tag_moved_between_verification_and_write_is_not_written() {
    use support::fault_proxy::{Fault, FaultProxy, Paging, Signal};
    let registry = RegistryServer::start(Auth::Anonymous);
    let proxy = FaultProxy::start(&registry.url(), Paging::default());
    let host = proxy.host();
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0"]);
    push_signed(
        &registry,
        "demo/app",
        &format!("{host}/demo/app"),
        &app[1].digest,
        (keys.path(), &team),
        false,
    );
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", &policy(&host, "app", "Never")),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &remote, &host, None, "");
    // The signature is read while the tag still points to the signed
    // image; the proxy holds that request while the tag is moved in the
    // real registry, so the check just before the commit sees the move.
    let arrived = Signal::default();
    proxy.inject(
        ".sig",
        &[Fault::Hold {
            arrived: arrived.clone(),
        }],
    );
    let child = Command::new(env!("CARGO_BIN_EXE_crowsnest"))
        .args(["once", "--config", &config])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run crowsnest");
    assert!(
        arrived.wait_raised(std::time::Duration::from_secs(60)),
        "crowsnest reads the signature"
    );
    let moved = registry.push_image("demo/app", "1.1.0", "linux/arm64");
    assert_ne!(moved, app[1].digest);
    arrived.release();
    let out = child.wait_with_output().unwrap();
    let errors = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{errors}");
    assert!(
        errors.contains(&format!(
            "moved from the verified {} to {moved} before it was written",
            app[1].digest
        )),
        "{errors}"
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", "1.0.0"),
        "nothing is written for a tag that moved after verification"
    );
}

// --- tag moved after it was written ---

/// Helm values with the image in three fields, each with its marker.
fn values(host: &str, tag: &str, digest: &str) -> String {
    format!(
        "image:\n  repository: {host}/demo/app # {{\"$imagepolicy\": \"default:app:name\"}}\n  tag: {tag} # {{\"$imagepolicy\": \"default:app:tag\"}}\n  digest: \"{digest}\" # {{\"$imagepolicy\": \"default:app:digest\"}}\n"
    )
}

/// A registry holding `demo/app` 1.0.0 and 1.1.0, 1.1.0 signed by a team
/// key (P-256) made for the test.
struct TeamSigned {
    registry: RegistryServer,
    keys: tempfile::TempDir,
    team: String,
    team_pem: String,
    app: Vec<support::registry::Pushed>,
}

impl TeamSigned {
    fn new() -> TeamSigned {
        let registry = RegistryServer::start(Auth::Anonymous);
        let keys = tempfile::tempdir().unwrap();
        let (team, team_pem) = key_pair(keys.path(), "team", false);
        let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0"]);
        let signed = TeamSigned {
            registry,
            keys,
            team,
            team_pem,
            app,
        };
        signed.sign(&signed.app[1].digest);
        signed
    }

    /// Pushes the team's cosign signature of `demo/app@digest`.
    fn sign(&self, digest: &str) {
        let reference = format!("{}/demo/app", self.registry.host());
        push_signed(
            &self.registry,
            "demo/app",
            &reference,
            digest,
            (self.keys.path(), &self.team),
            false,
        );
    }
}

/// Regression: the digest written in its own field (Helm `image.digest`,
/// kustomize `digest`) was not read back, so a tag moved and re-signed
/// had its new digest written with no report.
#[test]
fn a_moved_tag_is_told_by_a_digest_in_its_own_field_and_not_followed() {
    let signed = TeamSigned::new();
    let (registry, team_pem, app) = (&signed.registry, &signed.team_pem, &signed.app);
    let host = registry.host();
    let sign_as_team = |digest: &str| signed.sign(digest);
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", &policy(&host, "app", "Always")),
        ("chart/values.yaml", &values(&host, "1.0.0", "")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &remote, &host, None, "");
    let once = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(once.status.code(), Some(0), "{}", text(&once.stderr));
    let written = values(&host, "1.1.0", &app[1].digest);
    assert_eq!(
        text(&remote.file("main", "chart/values.yaml").unwrap()),
        written
    );

    let moved = registry.push_image("demo/app", "1.1.0", "linux/arm64");
    sign_as_team(&moved);
    let again = crowsnest(dir.path(), &["once", "--config", &config]);
    let errors = text(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{errors}");
    assert!(
        errors.contains(&format!("1.1.0 now points to {moved} (signed by sha256:"))
            && errors.contains(&format!("not the {} written for it", app[1].digest)),
        "{errors}"
    );
    assert_eq!(
        text(&remote.file("main", "chart/values.yaml").unwrap()),
        written,
        "the moved tag's new digest is not written, signed or not"
    );
}

/// With `digestReflectionPolicy: Never` the files hold only the tag; the
/// `Verified:` trailer of the commit that wrote it holds the digest, and
/// a move away from it is reported.
#[test]
fn without_digest_reflection_a_move_is_told_by_the_verified_trailer() {
    let signed = TeamSigned::new();
    let (registry, team_pem, app) = (&signed.registry, &signed.team_pem, &signed.app);
    let host = registry.host();
    let sign_as_team = |digest: &str| signed.sign(digest);
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", &policy(&host, "app", "Never")),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &remote, &host, None, "");
    let once = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(once.status.code(), Some(0), "{}", text(&once.stderr));
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", "1.1.0")
    );
    // A later pass with the tag where it was: nothing to report.
    let steady = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(steady.status.code(), Some(0), "{}", text(&steady.stderr));

    let moved = registry.push_image("demo/app", "1.1.0", "linux/arm64");
    sign_as_team(&moved);
    let again = crowsnest(dir.path(), &["once", "--config", &config]);
    let errors = text(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{errors}");
    assert!(
        errors.contains(&format!("1.1.0 now points to {moved} (signed by sha256:"))
            && errors.contains(&format!("not the {} written for it", app[1].digest)),
        "{errors}"
    );
    let commits = remote.commit_count("main");
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", "1.1.0")
    );
    assert_eq!(remote.commit_count("main"), commits);
}

/// A policy of `/api/status` (`null` while it is not listed yet).
fn policy_status<'a>(status: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    status["policies"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == id))
        .unwrap_or(&serde_json::Value::Null)
}

fn metric_line(metrics: &str, name: &str, policy: &str) -> String {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!("{name}{{")) && l.contains(&format!("policy=\"{policy}\""))
        })
        .unwrap_or_else(|| panic!("no {name} for {policy}:\n{metrics}"))
        .to_owned()
}

/// `crowsnest run`: the verified pick, the newer unsigned tag passed over,
/// and a tag pushed over in the registry while the daemon runs (no tag
/// added, so the tag list does not change) are reported in the metrics,
/// `/api/status` and the status page.
#[test]
fn the_daemon_reports_unsigned_tags_and_a_tag_pushed_over_after_it_was_written() {
    use std::time::Duration;
    use support::daemon::Daemon;
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0", "1.2.0"]);
    push_signed(
        &registry,
        "demo/app",
        &format!("{host}/demo/app"),
        &app[1].digest,
        (keys.path(), &team),
        false,
    );
    let pinned = format!("1.1.0@{}", app[1].digest);
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", &policy(&host, "app", "Always")),
        ("apps/app.yaml", &deployment(&host, "app", &pinned)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = Daemon::free_port();
    let config = write_config(
        dir.path(),
        &remote,
        &host,
        None,
        &format!("scan:\n  interval: 1s\nhttp:\n  listen: 127.0.0.1:{port}\n"),
    );
    let mut daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_crowsnest")),
        Path::new(&config),
        &[],
        &[],
        &dir.path().join("run.log"),
        port,
    );
    daemon.wait_ready();
    daemon.wait_until("the verified pick", Duration::from_secs(60), |d| {
        policy_status(&d.status(), "default:app")["verified"].is_string()
    });
    let status = daemon.status();
    let app_status = policy_status(&status, "default:app");
    assert!(
        app_status["verified"]
            .as_str()
            .unwrap()
            .starts_with(&format!("1.1.0@{} key sha256:", app[1].digest)),
        "{status}"
    );
    assert_eq!(
        app_status["unsigned"],
        serde_json::json!(["1.2.0: unsigned"])
    );
    assert!(app_status["tagMoved"].is_null(), "{status}");
    let metrics = daemon.metrics();
    assert!(
        metric_line(&metrics, "crowsnest_unsigned_tags", "default:app").ends_with(" 1"),
        "{metrics}"
    );
    assert!(
        metric_line(&metrics, "crowsnest_tag_moved", "default:app").ends_with(" 0"),
        "{metrics}"
    );
    let (_, page) = daemon.get("/");
    assert!(page.contains("1.2.0: unsigned"), "{page}");
    assert!(
        page.contains(&format!("verified 1.1.0@{} key sha256:", app[1].digest)),
        "{page}"
    );

    // Pushed over: the same tag, another (unsigned) image; no tag is added.
    let moved = registry.push_image("demo/app", "1.1.0", "linux/arm64");
    let finding = format!("1.1.0 written at {} now points to {moved}", app[1].digest);
    daemon.wait_until("the move reported", Duration::from_secs(60), |d| {
        policy_status(&d.status(), "default:app")["tagMoved"] == finding.as_str()
    });
    let status = daemon.status();
    let app_status = policy_status(&status, "default:app");
    assert!(
        app_status["lastError"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("now points to {moved} (unsigned)"))),
        "{status}"
    );
    let metrics = daemon.metrics();
    assert!(
        metric_line(&metrics, "crowsnest_tag_moved", "default:app").ends_with(" 1"),
        "{metrics}"
    );
    let (_, page) = daemon.get("/");
    assert!(page.contains(&finding), "{page}");
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", &pinned),
        "the moved tag is not followed"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));
}

/// Regression: a registry error while checking, just before the commit,
/// that a verified tag still points to its digest was reported as a moved
/// tag (`tagMoved`, `crowsnest_tag_moved` 1). It is a registry failure of
/// the policy: nothing is written, nothing is reported as moved.
#[test]
fn a_registry_error_in_the_check_before_writing_is_not_a_moved_tag() {
    use std::time::Duration;
    use support::daemon::Daemon;
    use support::fault_proxy::{Fault, FaultProxy, Paging, Signal};
    let registry = RegistryServer::start(Auth::Anonymous);
    let proxy = FaultProxy::start(&registry.url(), Paging::default());
    let host = proxy.host();
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0"]);
    push_signed(
        &registry,
        "demo/app",
        &format!("{host}/demo/app"),
        &app[1].digest,
        (keys.path(), &team),
        false,
    );
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", &policy(&host, "app", "Always")),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = Daemon::free_port();
    let config = write_config(
        dir.path(),
        &remote,
        &host,
        None,
        &format!("scan:\n  interval: 1h\nhttp:\n  listen: 127.0.0.1:{port}\n"),
    );
    // The signature is read after the tag's digest; while that request is
    // held, the tag's manifest starts failing, so the check before the
    // commit gets only server errors.
    let arrived = Signal::default();
    proxy.inject(
        ".sig",
        &[Fault::Hold {
            arrived: arrived.clone(),
        }],
    );
    let mut daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_crowsnest")),
        Path::new(&config),
        &[],
        &[],
        &dir.path().join("run.log"),
        port,
    );
    assert!(
        arrived.wait_raised(Duration::from_secs(60)),
        "crowsnest reads the signature"
    );
    let unavailable = Fault::Status {
        status: 503,
        retry_after: Some("0".into()),
    };
    proxy.inject("/manifests/1.1.0", &vec![unavailable; 40]);
    arrived.release();
    let mut seen = serde_json::Value::Null;
    daemon.wait_until("the failed check", Duration::from_secs(60), |d| {
        let status = d.status();
        let failed = policy_status(&status, "default:app")["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("cannot check that"));
        if failed {
            seen = status;
        }
        failed
    });
    let metrics = daemon.metrics();
    let app_status = policy_status(&seen, "default:app");
    assert!(app_status["tagMoved"].is_null(), "{seen}");
    assert!(
        app_status["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("503") || e.contains("server")),
        "{seen}"
    );
    assert!(
        metric_line(&metrics, "crowsnest_tag_moved", "default:app").ends_with(" 0"),
        "{metrics}"
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", "1.0.0"),
        "nothing is written without the check"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(25)).code(), Some(0));
}

/// The referrers API path. Debian's docker-registry (2.8) has no OCI 1.1
/// referrers API, so the fault proxy answers that one route with the image
/// index such a registry would answer (the artifact it lists is real, in
/// the registry behind); everything else is the real registry.
#[test]
fn a_bundle_listed_by_the_referrers_api_is_read_without_the_fallback_tag() {
    use support::fault_proxy::{Fault, FaultProxy, Paging};
    let registry = RegistryServer::start(Auth::Anonymous);
    let proxy = FaultProxy::start(&registry.url(), Paging::default());
    let host = proxy.host();
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0"]);
    let statement_file = keys.path().join("statement");
    std::fs::write(
        &statement_file,
        statement(&format!("{host}/demo/app"), &app[1].digest),
    )
    .unwrap();
    let bundle = sigstore(&[
        "bundle-key",
        keys.path().to_str().unwrap(),
        keys.path().join(&team).to_str().unwrap(),
        statement_file.to_str().unwrap(),
    ]);
    // A fallback index is pushed too, listing a bundle by a stranger's key:
    // read, it would be a bad signature; the API's answer is what counts.
    let (stranger, _) = key_pair(keys.path(), "stranger", false);
    let strangers = sigstore(&[
        "bundle-key",
        keys.path().to_str().unwrap(),
        keys.path().join(&stranger).to_str().unwrap(),
        statement_file.to_str().unwrap(),
    ]);
    registry.push_referrer_bundle("demo/app", &app[1].digest, &strangers);
    let index = registry.push_referrer_artifact("demo/app", &app[1].digest, &bundle);
    // The API answers for 1.1.0, the policy's first candidate.
    proxy.inject(
        &format!("/referrers/{}", app[1].digest),
        &[Fault::body(
            support::registry::OCI_INDEX,
            serde_json::to_vec(&index).unwrap(),
        )],
    );
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", &policy(&host, "app", "Always")),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &remote, &host, None, "");
    let once = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(once.status.code(), Some(0), "{}", text(&once.stderr));
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", &format!("1.1.0@{}", app[1].digest)),
        "signed by the team's key in a bundle the referrers API lists"
    );
    let fallback = format!("/manifests/{}", app[1].digest.replace(':', "-"));
    assert!(
        !proxy.seen_matching("/tags/list").is_empty()
            && proxy
                .seen()
                .iter()
                .all(|seen| !seen.path().ends_with(&fallback)),
        "the fallback tag is listed but not read when the API answers"
    );
    assert_eq!(proxy.seen_matching("/referrers/").len(), 1);
}

// --- key types, refusals, fetched payloads, check, the verdict cache ---

/// `payload`, with the `optional` annotations `cosign sign -a k=v` writes
/// (`optional` is a JSON object).
fn annotated_payload(reference: &str, digest: &str, optional: &str) -> Vec<u8> {
    text(&payload(reference, digest))
        .replace("\"optional\":null", &format!("\"optional\":{optional}"))
        .into_bytes()
}

/// The access-log requests for `path` (exact) among `requests`.
fn fetched(requests: &[support::registry::Logged], path: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.path() == path)
        .count()
}

#[test]
fn each_key_type_cosign_signs_with_verifies_end_to_end_and_is_pinned() {
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let keys = tempfile::tempdir().unwrap();
    let types = [
        ("p256", Algorithm::P256),
        ("p384", Algorithm::P384),
        ("ed25519", Algorithm::Ed25519),
        ("rsa", Algorithm::Rsa),
    ];
    let pairs: Vec<(String, String)> = types
        .iter()
        .map(|(name, algorithm)| key_pair_of(keys.path(), name, *algorithm))
        .collect();
    let mut files = Vec::new();
    let mut pushed = Vec::new();
    for (i, (name, algorithm)) in types.iter().enumerate() {
        let repository = format!("demo/{name}");
        let reference = format!("{host}/{repository}");
        let tags = registry.push_tags(&repository, &["1.0.0", "1.1.0", "1.2.0"]);
        // 1.1.0: signed by this policy's key. 1.2.0 (the newest): by the
        // next key type's, which this policy does not trust.
        let (private, _) = &pairs[i];
        push_signed(
            &registry,
            &repository,
            &reference,
            &tags[1].digest,
            (keys.path(), private),
            *algorithm == Algorithm::Ed25519,
        );
        let (next, (other_private, _)) = (types[(i + 1) % 4], &pairs[(i + 1) % 4]);
        push_signed(
            &registry,
            &repository,
            &reference,
            &tags[2].digest,
            (keys.path(), other_private),
            next.1 == Algorithm::Ed25519,
        );
        files.push((format!("keys/{name}.pub"), pairs[i].1.clone()));
        files.push((
            format!("policies/{name}.yaml"),
            policy(&host, name, "Always").replace("keys/team.pub", &format!("keys/{name}.pub")),
        ));
        files.push((
            format!("apps/{name}.yaml"),
            deployment(&host, name, "1.0.0"),
        ));
        pushed.push(tags);
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, body)| (path.as_str(), body.as_str()))
        .collect();
    let remote = Remote::new(&files);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &remote, &host, None, "");
    let once = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}\n{}",
        text(&once.stdout),
        text(&once.stderr)
    );
    let message = remote.message("main");
    for ((name, _), tags) in types.iter().zip(&pushed) {
        assert_eq!(
            text(&remote.file("main", &format!("apps/{name}.yaml")).unwrap()),
            deployment(&host, name, &format!("1.1.0@{}", tags[1].digest)),
            "{name}: the tag its key signed, pinned; the newest, signed by another key type, passed over"
        );
        assert!(
            message.contains(&format!(
                "Verified: default:{name} {} key sha256:",
                tags[1].digest
            )),
            "{message}"
        );
    }
}

#[test]
fn copied_and_tampered_signatures_are_refused_and_an_annotated_payload_is_fetched() {
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let app = registry.push_tags(
        "demo/app",
        &["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"],
    );
    let reference = format!("{host}/demo/app");
    let signed = |payload: &[u8]| (payload.to_vec(), sign(keys.path(), &team, false, payload));
    // 1.5.0 (the newest): unsigned.
    // 1.4.0: the same image is in demo/other, signed there by the team;
    // that signature copied to demo/app is for another repository.
    let other = registry.push_tags("demo/other", &["1.4.0"]);
    assert_eq!(other[0].digest, app[4].digest, "the same image");
    let for_other = signed(&payload(&format!("{host}/demo/other"), &app[4].digest));
    registry.push_signatures(
        "demo/other",
        &sig_tag(&app[4].digest),
        std::slice::from_ref(&for_other),
    );
    registry.push_signatures("demo/app", &sig_tag(&app[4].digest), &[for_other]);
    // 1.3.0: payloads changed after signing. The team's signature of
    // 1.1.0's payload over a payload edited to name 1.3.0 (exactly the
    // payload cosign would write for it, so not fetched); and a signed
    // annotated payload whose annotation was edited (fetched).
    let (_, of_old) = signed(&payload(&reference, &app[1].digest));
    let (original, of_annotated) = signed(&annotated_payload(
        &reference,
        &app[3].digest,
        r#"{"build":"ci"}"#,
    ));
    let edited = annotated_payload(&reference, &app[3].digest, r#"{"build":"cd"}"#);
    assert_eq!(original.len(), edited.len());
    registry.push_signatures(
        "demo/app",
        &sig_tag(&app[3].digest),
        &[
            (payload(&reference, &app[3].digest), of_old),
            (edited.clone(), of_annotated),
        ],
    );
    // 1.2.0: signed with annotations (`cosign sign -a`): the payload is
    // not the one crowsnest can rebuild, so its blob is fetched.
    let annotated = annotated_payload(
        &reference,
        &app[2].digest,
        r#"{"commit":"4f1c2e9","repo":"acme/app"}"#,
    );
    registry.push_signatures("demo/app", &sig_tag(&app[2].digest), &[signed(&annotated)]);
    // 1.1.0: signed plainly.
    registry.push_signatures(
        "demo/app",
        &sig_tag(&app[1].digest),
        &[signed(&payload(&reference, &app[1].digest))],
    );
    let policies = policy(&host, "app", "Always");
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", policies.as_str()),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &remote, &host, None, "");
    let before = registry.request_count();
    let once = crowsnest(dir.path(), &["once", "--config", &config]);
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}\n{}",
        text(&once.stdout),
        text(&once.stderr)
    );
    assert_eq!(
        text(&remote.file("main", "apps/app.yaml").unwrap()),
        deployment(&host, "app", &format!("1.2.0@{}", app[2].digest)),
        "the newest tag with a valid signature, pinned"
    );
    let requests = registry.requests_since(before);
    let blob =
        |payload: &[u8]| format!("/v2/demo/app/blobs/{}", support::registry::sha256(payload));
    assert_eq!(
        fetched(&requests, &blob(&annotated)),
        1,
        "the annotated payload is read from its blob: {requests:?}"
    );
    assert_eq!(fetched(&requests, &blob(&edited)), 1, "{requests:?}");
    assert_eq!(
        fetched(&requests, &blob(&payload(&reference, &app[3].digest))),
        0,
        "cosign's own payload is rebuilt, not fetched: {requests:?}"
    );

    // explain and tags --all give each tag's verdict.
    let explain = crowsnest(dir.path(), &["explain", "default:app", "--config", &config]);
    let shown = text(&explain.stdout);
    assert_eq!(
        explain.status.code(),
        Some(0),
        "{shown}\n{}",
        text(&explain.stderr)
    );
    let line = |tag: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{tag} ")))
            .unwrap_or_else(|| panic!("no line for {tag}:\n{shown}"))
            .to_owned()
    };
    assert!(
        line("1.5.0").contains("unsigned")
            && line("1.5.0").contains(&format!("{} has no signature", app[5].digest)),
        "{shown}"
    );
    assert!(
        line("1.4.0").contains("bad signature")
            && line("1.4.0").contains(&format!("is for {host}/demo/other, not")),
        "{shown}"
    );
    assert!(
        line("1.3.0").contains("bad signature") && line("1.3.0").contains("payload was changed"),
        "{shown}"
    );
    assert!(
        line("1.2.0").contains("selected") && line("1.2.0").contains("signed by sha256:"),
        "{shown}"
    );
    let checkout = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(checkout.path().join("policies")).unwrap();
    std::fs::create_dir_all(checkout.path().join("keys")).unwrap();
    std::fs::write(checkout.path().join("policies/apps.yaml"), &policies).unwrap();
    std::fs::write(checkout.path().join("keys/team.pub"), &team_pem).unwrap();
    let tags = crowsnest(
        checkout.path(),
        &[
            "tags",
            &reference,
            "--policy",
            "policies/apps.yaml:app",
            "--config",
            &config,
            "--all",
        ],
    );
    assert_eq!(tags.status.code(), Some(0), "{}", text(&tags.stderr));
    let listed = text(&tags.stdout);
    let row = |tag: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tag))
            .unwrap_or_else(|| panic!("no row for {tag}:\n{listed}"))
            .to_owned()
    };
    assert!(
        listed.contains("selected 1.2.0") && row("1.5.0").contains("unsigned"),
        "{listed}"
    );
    assert!(row("1.4.0").contains("bad signature"), "{listed}");
}

#[test]
fn check_names_where_each_broken_verify_block_is_and_what_to_fix() {
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let host = "registry.example.com";
    let checkout = tempfile::tempdir().unwrap();
    let root = checkout.path();
    std::fs::create_dir_all(root.join("policies")).unwrap();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    let write = |path: &str, body: &str| std::fs::write(root.join(path), body).unwrap();
    write("keys/team.pub", &team_pem);
    write("policies/app.yaml", &policy(host, "app", "Always"));
    write("policies/svc.yaml", &keyless_policy(host, "svc", "Never"));
    let trust = tempfile::tempdir().unwrap();
    sigstore(&["root", trust.path().to_str().unwrap()]);
    let remote = Remote::new(&[("README", "config only\n")]);
    let config_dir = tempfile::tempdir().unwrap();
    let with_root = |root_file: &Path| {
        write_config(
            config_dir.path(),
            &remote,
            host,
            None,
            &format!("sigstore:\n  trustedRoot: {}\n", root_file.display()),
        )
    };
    let config = with_root(&trust.path().join("trusted_root.json"));
    let check = |args: &[&str]| {
        let out = crowsnest(root, &[&["check", "."], args].concat());
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, stdout, stderr) = check(&["--config", &config]);
    assert_eq!(code, Some(0), "the clean checkout: {stdout}{stderr}");
    // Each problem below alone: exit 1, and where and what.
    let fails = |args: &[&str], expected: &str| {
        let (code, stdout, stderr) = check(args);
        assert_eq!(code, Some(1), "{expected}: {stdout}{stderr}");
        assert!(
            stdout.contains(expected),
            "{expected} in:\n{stdout}{stderr}"
        );
        stdout
    };

    // A key file that is not a public key: the private key by mistake,
    // and a PEM PUBLIC KEY block that holds no key crowsnest knows.
    write(
        "keys/team.pub",
        &std::fs::read_to_string(keys.path().join(&team)).unwrap(),
    );
    fails(
        &[],
        "policies/app.yaml:14:18: verify.publicKeys keys/team.pub: no -----BEGIN PUBLIC KEY----- block",
    );
    write(
        "keys/team.pub",
        "-----BEGIN PUBLIC KEY-----\naGVsbG8gd29ybGQ=\n-----END PUBLIC KEY-----\n",
    );
    fails(
        &[],
        "policies/app.yaml:14:18: verify.publicKeys keys/team.pub: not an ECDSA P-256/P-384, Ed25519 or RSA public key",
    );
    write("keys/team.pub", &team_pem);

    // A key path that leaves the repository.
    write(
        "policies/app.yaml",
        &policy(host, "app", "Always").replace("keys/team.pub", "../keys/team.pub"),
    );
    fails(
        &[],
        "policies/app.yaml:14:18: verify.publicKeys entry \"../keys/team.pub\" must be a path inside the repository",
    );
    write("policies/app.yaml", &policy(host, "app", "Always"));

    // A subject regex that does not compile.
    write(
        "policies/svc.yaml",
        &keyless_policy(host, "svc", "Never").replace("'^https", "'(^https"),
    );
    fails(
        &[],
        "policies/svc.yaml:16:18: verify.keyless subject is not a valid regular expression",
    );
    write("policies/svc.yaml", &keyless_policy(host, "svc", "Never"));

    // Keyless identities, and a daemon config without a trusted root.
    let without_root = write_config(config_dir.path(), &remote, host, None, "");
    fails(
        &["--config", &without_root],
        "policies/svc.yaml:2:1: verify.keyless needs sigstore.trustedRoot in the daemon config",
    );

    // A trusted root that is not one: the config file is named, and the
    // root's file.
    let broken = trust.path().join("broken.json");
    std::fs::write(&broken, "{\"mediaType\": 42").unwrap();
    let config = with_root(&broken);
    let stdout = fails(&["--config", &config], &format!("{config}: "));
    assert!(
        stdout.contains(&broken.display().to_string()),
        "the message says which file is not a trusted root: {stdout}"
    );
}

/// `crowsnest_passes_total{…result="ok"}` in `metrics`.
fn passes_ok(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("crowsnest_passes_total{") && l.contains("result=\"ok\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The daemon keeps verdicts between passes: a steady-state pass asks for
/// no signature; a signature pushed later (a new tag in the listing) is
/// read; a commit replacing the key file has every verdict read again.
#[test]
fn the_daemon_reads_each_signature_once_until_the_listing_or_the_key_changes() {
    use std::time::Duration;
    use support::daemon::Daemon;
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    let keys = tempfile::tempdir().unwrap();
    let (team, team_pem) = key_pair(keys.path(), "team", false);
    let (rotated, rotated_pem) = key_pair(keys.path(), "rotated", true);
    let app = registry.push_tags("demo/app", &["1.0.0", "1.1.0", "1.2.0"]);
    let reference = format!("{host}/demo/app");
    let sign_as = |digest: &str, private: &str, ed25519: bool| {
        push_signed(
            &registry,
            "demo/app",
            &reference,
            digest,
            (keys.path(), private),
            ed25519,
        );
    };
    // 1.1.0 signed; 1.2.0 (the newest) not yet.
    sign_as(&app[1].digest, &team, false);
    let remote = Remote::new(&[
        ("keys/team.pub", team_pem.as_str()),
        ("policies/apps.yaml", &policy(&host, "app", "Always")),
        ("apps/app.yaml", &deployment(&host, "app", "1.0.0")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = Daemon::free_port();
    let config = write_config(
        dir.path(),
        &remote,
        &host,
        None,
        &format!("scan:\n  interval: 1h\nhttp:\n  listen: 127.0.0.1:{port}\n"),
    );
    let mut daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_crowsnest")),
        Path::new(&config),
        &[],
        &[],
        &dir.path().join("daemon.log"),
        port,
    );
    daemon.wait_ready();
    let pins = |tag: &str, digest: &str| {
        remote.file("main", "apps/app.yaml").map(|b| text(&b))
            == Some(deployment(&host, "app", &format!("{tag}@{digest}")))
    };
    let timeout = Duration::from_secs(30);
    daemon.wait_until("1.1.0 written", timeout, |_| pins("1.1.0", &app[1].digest));
    daemon.wait_until("the first pass counted", timeout, |d| {
        passes_ok(&d.metrics()) >= 1
    });
    // A pass: a webhook naming the image scans it, and a changed tag list
    // asks for a pass; one naming a repository no policy watches asks for
    // a pass too (taking tags from the cache). Counted when done.
    let pass = |daemon: &mut Daemon, image: &str, what: &str| {
        let done = passes_ok(&daemon.metrics());
        let (code, body) = daemon.post(
            "/hooks/generic",
            &[],
            &format!("{{\"image\": \"{image}\"}}"),
        );
        assert_eq!(code, 202, "{body}");
        daemon.wait_until(what, timeout, |d| passes_ok(&d.metrics()) > done);
    };
    let unwatched = format!("{host}/demo/unwatched");
    let signature_requests = |requests: &[support::registry::Logged]| {
        requests
            .iter()
            .filter(|r| {
                r.path().contains("/manifests/sha256-")
                    || r.path().contains("/referrers/")
                    || r.path().contains("/blobs/")
            })
            .cloned()
            .collect::<Vec<_>>()
    };

    // Steady state: a pass from the tag cache asks for no signature.
    let before = registry.request_count();
    pass(&mut daemon, &unwatched, "a steady-state pass");
    assert_eq!(
        signature_requests(&registry.requests_since(before)),
        Vec::new(),
        "a steady-state pass asks for no signature"
    );

    // 1.2.0 signed later: its `.sig` tag changes the listing, so its
    // `unsigned` verdict is read again and it is written.
    sign_as(&app[2].digest, &team, false);
    let before = registry.request_count();
    pass(&mut daemon, &reference, "the pass after 1.2.0's signature");
    daemon.wait_until("1.2.0 written", timeout, |_| pins("1.2.0", &app[2].digest));
    let requests = registry.requests_since(before);
    let sig_of = |digest: &str| format!("/v2/demo/app/manifests/{}", sig_tag(digest));
    assert_eq!(
        fetched(&requests, &sig_of(&app[2].digest)),
        1,
        "{requests:?}"
    );

    // 1.3.0 signed by another key: a bad signature, not written.
    let newer = registry.push_tags("demo/app", &["1.3.0"]);
    sign_as(&newer[0].digest, &rotated, true);
    pass(&mut daemon, &reference, "the pass after 1.3.0");
    assert!(
        pins("1.2.0", &app[2].digest),
        "1.3.0 is not signed by the team's key"
    );
    let before = registry.request_count();
    pass(
        &mut daemon,
        &unwatched,
        "a steady-state pass with a bad verdict",
    );
    assert_eq!(
        signature_requests(&registry.requests_since(before)),
        Vec::new(),
        "a bad verdict is kept while the listing stays"
    );

    // The team rotates its key in Git: the verdict on 1.3.0 is read
    // again under the new key (the listing is the same), and 1.3.0 is
    // written.
    remote.commit_files(
        "main",
        "Rotate the image signing key",
        &[("keys/team.pub", rotated_pem.as_str())],
    );
    let before = registry.request_count();
    pass(&mut daemon, &unwatched, "the pass after the key change");
    daemon.wait_until("1.3.0 written", timeout, |_| {
        pins("1.3.0", &newer[0].digest)
    });
    let requests = registry.requests_since(before);
    assert_eq!(
        fetched(&requests, &sig_of(&newer[0].digest)),
        1,
        "{requests:?}"
    );
    assert_eq!(
        daemon.terminate(Duration::from_secs(25)).code(),
        Some(0),
        "{}",
        daemon.log_text()
    );
}
