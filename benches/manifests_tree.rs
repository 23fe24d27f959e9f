//! Issue 5's measurements, as a small program (`harness = false`) that
//! `scripts/bench-manifests` builds in release mode and runs:
//!
//! - `generate DIR [FILES] [MARKED]`: writes a repository of FILES YAML
//!   files (default 20,000), MARKED of them (default 1,000) with markers.
//! - `scan DIR [THREADS|--no-patch]`: what a reconcile pass does to the
//!   tree, minus git: walk it, read every manifest, take the fast path,
//!   parse the files with markers, and compute each marked file's patch
//!   (bumping every tag). Compared with `grep -rl '"$imagepolicy"' DIR`,
//!   the I/O floor. THREADS splits the files over that many threads;
//!   `--no-patch` stops after finding the markers (a pass with nothing
//!   to update).
//! - `phases DIR`: the scan's time split into reading, the fast path,
//!   finding markers and patching (each summed over the tree).
//! - `noise FIXTURES OUT`: for each fixture, the edits the fixture
//!   selections make, as JSON paths (`NAME.edits.json`) for the
//!   ruamel.yaml comparison, and crowsnest's output (`NAME.crowsnest`).
//!
//! Run by `cargo bench` with no arguments, it generates a tree under
//! `target/bench-manifests/tree` when missing and times one scan; run by
//! `cargo test --all-targets`, it scans a 40-file tree in a temporary
//! directory and checks the counts.

#[path = "../tests/manifests_common/mod.rs"]
mod manifests_common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crowsnest::manifests::{self, Edit, PathStep};

fn main() {
    if let Err(e) = run() {
        eprintln!("manifests_tree: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let bench = all.iter().any(|a| a == "--bench");
    let args: Vec<String> = all
        .into_iter()
        .filter(|a| !a.starts_with("--bench"))
        .collect();
    match args.first().map(String::as_str) {
        Some("generate") if args.len() >= 2 => {
            let files = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20_000);
            let marked = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1_000);
            generate(Path::new(&args[1]), files, marked)
        }
        Some("scan") if args.len() == 2 => scan(Path::new(&args[1]), 1, true).map(|stats| {
            eprintln!("{stats}");
        }),
        Some("scan") if args.len() == 3 => {
            let (jobs, patch) = match args[2].as_str() {
                "--no-patch" => (1, false),
                n => (n.parse().map_err(|_| format!("bad thread count {n}"))?, true),
            };
            scan(Path::new(&args[1]), jobs, patch).map(|stats| eprintln!("{stats}"))
        }
        Some("phases") if args.len() == 2 => phases(Path::new(&args[1])),
        Some("noise") if args.len() == 3 => noise(Path::new(&args[1]), Path::new(&args[2])),
        None if bench => default_run(),
        // `cargo test --all-targets` runs this without `--bench`: a small
        // tree, to check the generator and the scan agree.
        None => smoke_test(),
        _ => Err(
            "usage: manifests_tree generate DIR [FILES] [MARKED] | scan DIR | phases DIR | noise FIXTURES OUT"
                .into(),
        ),
    }
}

type Result<T> = std::result::Result<T, String>;

fn default_run() -> Result<()> {
    let tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-manifests/tree");
    if !tree.exists() {
        generate(&tree, 20_000, 1_000)?;
    }
    let start = Instant::now();
    let stats = scan(&tree, 1, true)?;
    eprintln!(
        "scan + patch: {:.1} ms; {stats}",
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

fn smoke_test() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    generate(dir.path(), 40, 4)?;
    for jobs in [1, 3] {
        let stats = scan(dir.path(), jobs, true)?;
        let want = (40, 4, 12);
        let got = (stats.files, stats.parsed, stats.setters);
        if got != want {
            return Err(format!(
                "scan with {jobs} threads found {got:?}, not {want:?}"
            ));
        }
    }
    Ok(())
}

/// A Service, a Deployment and a ConfigMap, about 2 KB; `manifest`
/// fills in the placeholders.
const TEMPLATE: &str = r#"# APP: generated for the crowsnest scan benchmark
apiVersion: v1
kind: Service
metadata:
  name: APP
  namespace: NS
spec:
  selector:
    app: APP
  ports:
    - port: 80
      targetPort: 8080 # http
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: APP
  namespace: NS
  labels:
    app.kubernetes.io/name: APP
    app.kubernetes.io/part-of: fleet
spec:
  replicas: 2
  selector:
    matchLabels:
      app: APP
  template:
    metadata:
      labels:
        app: APP
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9090"
    spec:
      serviceAccountName: APP
      initContainers:
        - name: migrate
          image: registry.example.com/NS/APP:1.MINOR.0MARK_IMAGE
          command: ["/app", "migrate"]
      containers:
        - name: app
          image: registry.example.com/NS/APP:1.MINOR.0MARK_IMAGE
          ports:
            - containerPort: 8080
              name: http
          env:
            - name: LOG_LEVEL
              value: info
            - name: REGION
              value: eu-west-1
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {cpu: 500m, memory: 256Mi}
          readinessProbe:
            httpGet: {path: /readyz, port: http}

        - name: proxy
          image: docker.io/library/nginx:1.25.MINOR
          args: ["-c", "/etc/nginx/nginx.conf"]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: APP
data:
  nginx.conf: |
    server {
      listen 80;
      location / { proxy_pass http://127.0.0.1:8080; }
    }
  tag: "1.MINOR.0"MARK_TAG
"#;

/// The template for app `i`, with markers when `marked`.
fn manifest(i: usize, marked: bool) -> String {
    let ns = format!("team{}", i % 7);
    let app = format!("app{i}");
    let marker = |suffix: &str| {
        if marked {
            format!(" # {{\"$imagepolicy\": \"{ns}:{app}{suffix}\"}}")
        } else {
            String::new()
        }
    };
    TEMPLATE
        .replace("MARK_IMAGE", &marker(""))
        .replace("MARK_TAG", &marker(":tag"))
        .replace("MINOR", &(i % 20).to_string())
        .replace("APP", &app)
        .replace("NS", &ns)
}

fn generate(dir: &Path, files: usize, marked: usize) -> Result<()> {
    let every = files.checked_div(marked).unwrap_or(usize::MAX).max(1);
    for i in 0..files {
        let sub = dir.join(format!("team{}/app{:03}", i % 7, i / 100));
        std::fs::create_dir_all(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
        let path = sub.join(format!("app{i}.yaml"));
        let text = manifest(i, marked > 0 && i % every == 0 && i / every < marked);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!(
        "generated {files} files, {marked} with markers, under {}",
        dir.display()
    );
    Ok(())
}

struct Stats {
    files: usize,
    bytes: usize,
    parsed: usize,
    setters: usize,
    patched_bytes: usize,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} files ({} bytes), {} parsed, {} setters, {} patched bytes",
            self.files, self.bytes, self.parsed, self.setters, self.patched_bytes
        )
    }
}

/// The new value a benchmark edit writes: the tag bumped (`…:1.3.0` →
/// `…:1.3.0-next`), so every patch really changes the file.
fn bumped(value: &str) -> String {
    format!("{value}-next")
}

fn scan(dir: &Path, jobs: usize, patch: bool) -> Result<Stats> {
    let mut paths = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.file_type().is_file()
            && manifests::is_manifest_path(&entry.path().to_string_lossy())
        {
            paths.push(entry.into_path());
        }
    }
    let jobs = jobs.max(1);
    let results: Vec<Result<Stats>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|j| {
                let paths = &paths;
                scope.spawn(move || scan_files(paths.iter().skip(j).step_by(jobs), patch))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("a scan thread panicked".into()))
            })
            .collect()
    });
    let mut total = Stats {
        files: 0,
        bytes: 0,
        parsed: 0,
        setters: 0,
        patched_bytes: 0,
    };
    for stats in results {
        let stats = stats?;
        total.files += stats.files;
        total.bytes += stats.bytes;
        total.parsed += stats.parsed;
        total.setters += stats.setters;
        total.patched_bytes += stats.patched_bytes;
    }
    Ok(total)
}

fn scan_files<'p>(paths: impl Iterator<Item = &'p PathBuf>, patch: bool) -> Result<Stats> {
    let mut stats = Stats {
        files: 0,
        bytes: 0,
        parsed: 0,
        setters: 0,
        patched_bytes: 0,
    };
    for path in paths {
        let name = path.to_string_lossy();
        let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
        stats.files += 1;
        stats.bytes += bytes.len();
        if !manifests::may_contain_markers(&bytes) {
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|e| format!("{name}: {e}"))?;
        stats.parsed += 1;
        // One parse for the markers and the patch, one to verify it.
        let manifest = manifests::Manifest::parse(&name, &text).map_err(|e| e.to_string())?;
        let setters = manifest.markers().map_err(|e| e.to_string())?;
        stats.setters += setters.len();
        if !patch {
            continue;
        }
        let edits: Vec<Edit> = setters
            .iter()
            .map(|s| Edit {
                span: s.span.clone(),
                value: bumped(&s.value),
            })
            .collect();
        let out = manifest.patch(&edits).map_err(|e| e.to_string())?;
        stats.patched_bytes += out.len();
    }
    Ok(stats)
}

/// Like `scan`, with the time of each phase summed over the tree.
fn phases(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    let start = Instant::now();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.file_type().is_file()
            && manifests::is_manifest_path(&entry.path().to_string_lossy())
        {
            files.push(entry.into_path());
        }
    }
    let walk = start.elapsed();
    let start = Instant::now();
    let mut texts = Vec::new();
    for path in &files {
        texts.push(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let read = start.elapsed();
    let start = Instant::now();
    let marked: Vec<String> = texts
        .into_iter()
        .filter(|t| manifests::may_contain_markers(t))
        .map(|t| String::from_utf8(t).map_err(|e| e.to_string()))
        .collect::<Result<_>>()?;
    let fast = start.elapsed();
    let start = Instant::now();
    let mut parsed = Vec::new();
    for text in &marked {
        parsed.push(manifests::Manifest::parse("f.yaml", text).map_err(|e| e.to_string())?);
    }
    let parse = start.elapsed();
    let start = Instant::now();
    let mut found = Vec::new();
    for manifest in &parsed {
        found.push(manifest.markers().map_err(|e| e.to_string())?);
    }
    let find = start.elapsed();
    let start = Instant::now();
    for (manifest, setters) in parsed.iter().zip(&found) {
        let edits: Vec<Edit> = setters
            .iter()
            .map(|s| Edit {
                span: s.span.clone(),
                value: bumped(&s.value),
            })
            .collect();
        manifest.patch(&edits).map_err(|e| e.to_string())?;
    }
    let patch = start.elapsed();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "walk {:.1} ms, read {:.1} ms ({} files), fast path {:.1} ms, parse {:.1} ms ({} files), markers {:.1} ms, patch + verify {:.1} ms",
        ms(walk),
        ms(read),
        files.len(),
        ms(fast),
        ms(parse),
        marked.len(),
        ms(find),
        ms(patch)
    );
    Ok(())
}

/// Writes each fixture's edits (by path) and crowsnest's patched text.
fn noise(fixtures: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for name in manifests_common::fixture_names() {
        let text =
            std::fs::read_to_string(fixtures.join(&name)).map_err(|e| format!("{name}: {e}"))?;
        let setters = manifests::find_markers(&name, &text).map_err(|e| e.to_string())?;
        let edits = manifests_common::edits_for(&setters);
        let patched = manifests::patch(&name, &text, &edits).map_err(|e| e.to_string())?;
        let scalars = manifests::scalars(&name, &text).map_err(|e| e.to_string())?;
        let mut json = Vec::new();
        for (setter, edit) in setters.iter().zip(&edits) {
            let scalar = scalars
                .iter()
                .find(|s| s.span == setter.span)
                .ok_or_else(|| format!("{name}: setter without a scalar"))?;
            let path: Vec<serde_json::Value> = scalar
                .path
                .iter()
                .map(|step| match step {
                    PathStep::Key(k) => serde_json::Value::String(k.clone()),
                    PathStep::Index(i) => serde_json::Value::from(*i),
                    PathStep::ComplexKey => serde_json::Value::Null,
                })
                .collect();
            json.push(serde_json::json!({
                "document": scalar.document,
                "path": path,
                "line": setter.at.line,
                "old": setter.value,
                "value": edit.value,
            }));
        }
        let edits_path = out.join(format!("{name}.edits.json"));
        let body = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        std::fs::write(&edits_path, body).map_err(|e| format!("{}: {e}", edits_path.display()))?;
        let patched_path = out.join(format!("{name}.crowsnest"));
        std::fs::write(&patched_path, patched)
            .map_err(|e| format!("{}: {e}", patched_path.display()))?;
    }
    Ok(())
}
