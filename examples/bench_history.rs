//! The repository of `scripts/bench-history` (issue 8's measurement), as a
//! `git fast-import` stream on stdout.
//!
//! ```text
//! bench_history fast-import COMMITS APPS
//! ```
//!
//! A fleet repository of APPS applications: `policies/images.yaml` with one
//! policy per application (every fifth also with a `targets:` entry for
//! its `values.yaml`), and per application a Deployment with a marker, a
//! ConfigMap, and for every fifth a Helm values file; plus 50 docs pages.
//! Then COMMITS commits in all, with a fixed, seeded mix:
//!
//! | share | commit | crowsnest history lists |
//! |---|---|---|
//! | 50 % | crowsnest bumps one image (marker or target), with an `Image-Update` trailer | 1 update |
//! | 38 % | a person edits a ConfigMap or a docs page | nothing |
//! | 7 % | a person edits a Deployment outside the managed field (replicas) | nothing |
//! | 2 % | a person bumps an image by hand, no trailer | 1 manual change |
//! | 3 % | a side-branch commit (ConfigMap edit) merged with `--no-ff` | nothing |
//!
//! The expected counts are printed to stderr as `updates=N manual=M
//! commits=C merges=K`, for the script to check crowsnest's output against.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [cmd, commits, apps] if cmd == "fast-import" => commits
            .parse::<usize>()
            .ok()
            .zip(apps.parse::<usize>().ok()),
        _ => None,
    };
    let Some((commits, apps)) = parsed else {
        eprintln!("usage: bench_history fast-import COMMITS APPS");
        std::process::exit(2);
    };
    let stdout = std::io::stdout().lock();
    let mut generator = Generator::new(BufWriter::with_capacity(1 << 20, stdout), apps);
    if let Err(e) = generator.run(commits) {
        eprintln!("bench_history: {e}");
        std::process::exit(1);
    }
    eprintln!(
        "updates={} manual={} commits={} merges={}",
        generator.updates, generator.manual, generator.commits, generator.merges
    );
}

const REGISTRY: &str = "registry.example.com/team";
const BOT: &str = "crowsnest <crowsnest@localhost>";
const PEOPLE: [&str; 3] = [
    "Ada Admin <ada@example.com>",
    "Bo Builder <bo@example.com>",
    "Cy Oncall <cy@example.com>",
];

/// `1.MINOR.PATCH` for the n-th version.
fn version(n: usize) -> String {
    format!("1.{}.{}", n / 100, n % 100)
}

struct Generator<W: Write> {
    out: W,
    apps: usize,
    /// Version counter per application's Deployment image.
    versions: Vec<usize>,
    /// Version counter per values file (the policy target).
    worker_versions: Vec<usize>,
    replicas: Vec<usize>,
    config: Vec<usize>,
    docs: Vec<usize>,
    /// The last mark on main.
    head: usize,
    next_mark: usize,
    time: u64,
    rng: u64,
    updates: usize,
    manual: usize,
    commits: usize,
    merges: usize,
}

impl<W: Write> Generator<W> {
    fn new(out: W, apps: usize) -> Self {
        Generator {
            out,
            apps,
            versions: vec![0; apps],
            worker_versions: vec![0; apps],
            replicas: vec![2; apps],
            config: vec![0; apps],
            docs: vec![0; 50],
            head: 0,
            next_mark: 1,
            time: 1_600_000_000,
            rng: 0x9E37_79B9_7F4A_7C15,
            updates: 0,
            manual: 0,
            commits: 0,
            merges: 0,
        }
    }

    fn random(&mut self, below: usize) -> usize {
        // xorshift64*: reproducible without a dependency.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % below
    }

    fn has_values(app: usize) -> bool {
        app % 5 == 0
    }

    fn tag(&self, app: usize) -> String {
        version(self.versions[app])
    }

    fn deployment(&self, app: usize) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{app:03}\n  labels: {{app: app-{app:03}}}\n\
             spec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: app-{app:03}}}\n  template:\n    metadata:\n      labels: {{app: app-{app:03}}}\n\
             \x20   spec:\n      containers:\n        - name: app\n          image: {REGISTRY}/app-{app:03}:{tag} # {{\"$imagepolicy\": \"default:app-{app:03}\"}}\n\
             \x20         ports:\n            - containerPort: 8080\n          resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n",
            replicas = self.replicas[app],
            tag = self.tag(app),
        )
    }

    fn values(&self, app: usize) -> String {
        format!(
            "image:\n  repository: {REGISTRY}/app-{app:03}\n  tag: \"{}\"\n  pullPolicy: IfNotPresent\nworker:\n  concurrency: 4\n",
            version(self.worker_versions[app])
        )
    }

    fn configmap(&self, app: usize) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{app:03}\ndata:\n  LOG_LEVEL: info\n  REVISION: \"{}\"\n",
            self.config[app]
        )
    }

    fn doc(&self, n: usize) -> String {
        format!(
            "# Runbook {n}\n\nRevision {}.\n\nWhat to do when the pager goes off.\n",
            self.docs[n]
        )
    }

    fn policies(&self) -> String {
        let mut text = String::new();
        for app in 0..self.apps {
            text.push_str(&format!(
                "---\napiVersion: crowsnest/v1\nkind: ImagePolicy\nmetadata:\n  name: app-{app:03}\nspec:\n  image: {REGISTRY}/app-{app:03}\n  policy:\n    semver:\n      range: \">=1.0.0\"\n"
            ));
            if Self::has_values(app) {
                text.push_str(&format!(
                    "  targets:\n    - file: apps/app-{app:03}/values.yaml\n      path: image.tag\n      field: tag\n"
                ));
            }
        }
        text
    }

    fn commit(
        &mut self,
        branch: &str,
        from: usize,
        merge: Option<usize>,
        who: &str,
        message: &str,
        files: &BTreeMap<String, String>,
    ) -> std::io::Result<usize> {
        let mark = self.next_mark;
        self.next_mark += 1;
        self.time += 60;
        self.commits += 1;
        let out = &mut self.out;
        writeln!(out, "commit refs/heads/{branch}\nmark :{mark}")?;
        writeln!(out, "author {who} {} +0000", self.time)?;
        writeln!(out, "committer {who} {} +0000", self.time)?;
        writeln!(out, "data {}\n{message}", message.len())?;
        if from != 0 {
            writeln!(out, "from :{from}")?;
        }
        if let Some(other) = merge {
            writeln!(out, "merge :{other}")?;
        }
        for (path, content) in files {
            writeln!(
                out,
                "M 100644 inline {path}\ndata {}\n{content}",
                content.len()
            )?;
        }
        writeln!(out)?;
        Ok(mark)
    }

    fn run(&mut self, commits: usize) -> std::io::Result<()> {
        let mut files = BTreeMap::new();
        files.insert("README.md".to_owned(), "# fleet\n".to_owned());
        files.insert("policies/images.yaml".to_owned(), self.policies());
        for app in 0..self.apps {
            files.insert(
                format!("apps/app-{app:03}/deployment.yaml"),
                self.deployment(app),
            );
            files.insert(
                format!("apps/app-{app:03}/configmap.yaml"),
                self.configmap(app),
            );
            if Self::has_values(app) {
                files.insert(format!("apps/app-{app:03}/values.yaml"), self.values(app));
            }
        }
        for n in 0..self.docs.len() {
            files.insert(format!("docs/runbook-{n:02}.md"), self.doc(n));
        }
        self.head = self.commit("main", 0, None, PEOPLE[0], "Initial fleet\n", &files)?;
        while self.commits < commits {
            let roll = self.random(100);
            let app = self.random(self.apps);
            let person = PEOPLE[self.random(PEOPLE.len())];
            let mut files = BTreeMap::new();
            let head = self.head;
            if roll < 50 || (roll >= 98 && self.commits + 3 > commits) {
                let image = format!("{REGISTRY}/app-{app:03}");
                let (path, old, new) = if Self::has_values(app) && self.random(2) == 0 {
                    let old = version(self.worker_versions[app]);
                    self.worker_versions[app] += 1;
                    let path = format!("apps/app-{app:03}/values.yaml");
                    files.insert(path.clone(), self.values(app));
                    (path, old, version(self.worker_versions[app]))
                } else {
                    let old = self.tag(app);
                    self.versions[app] += 1;
                    let path = format!("apps/app-{app:03}/deployment.yaml");
                    files.insert(path.clone(), self.deployment(app));
                    (path, old, self.tag(app))
                };
                let message = format!(
                    "Update app-{app:03} to {new}\n\n{path}: {old} -> {new}\n\nImage-Update: default:app-{app:03} {image}:{old} -> {image}:{new}\n"
                );
                self.head = self.commit("main", head, None, BOT, &message, &files)?;
                self.updates += 1;
            } else if roll < 88 {
                if self.random(2) == 0 {
                    self.config[app] += 1;
                    files.insert(
                        format!("apps/app-{app:03}/configmap.yaml"),
                        self.configmap(app),
                    );
                } else {
                    let n = self.random(self.docs.len());
                    self.docs[n] += 1;
                    files.insert(format!("docs/runbook-{n:02}.md"), self.doc(n));
                }
                self.head =
                    self.commit("main", head, None, person, "Tweak configuration\n", &files)?;
            } else if roll < 95 {
                self.replicas[app] = 1 + (self.replicas[app] + 1) % 5;
                files.insert(
                    format!("apps/app-{app:03}/deployment.yaml"),
                    self.deployment(app),
                );
                self.head = self.commit("main", head, None, person, "Scale\n", &files)?;
            } else if roll < 97 {
                self.versions[app] += 1;
                files.insert(
                    format!("apps/app-{app:03}/deployment.yaml"),
                    self.deployment(app),
                );
                self.head =
                    self.commit("main", head, None, person, "Hotfix image by hand\n", &files)?;
                self.manual += 1;
            } else {
                // A side branch with one ConfigMap edit, merged with --no-ff:
                // the merge brings in a change made on the branch, which is
                // not a change of the merge itself.
                let other = (app + 1) % self.apps;
                self.config[other] += 1;
                let mut side = BTreeMap::new();
                let path = format!("apps/app-{other:03}/configmap.yaml");
                side.insert(path.clone(), self.configmap(other));
                let side_mark =
                    self.commit("side", head, None, person, "Change on a branch\n", &side)?;
                let message = "Merge branch 'side'\n";
                self.head = self.commit("main", head, Some(side_mark), person, message, &side)?;
                self.merges += 1;
            }
        }
        self.out.flush()
    }
}
