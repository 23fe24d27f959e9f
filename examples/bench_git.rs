//! The crowsnest side of `scripts/bench-git` (issue 6's measurement).
//!
//! ```text
//! bench_git fast-import FILES COMMITS   a `git fast-import` stream: one commit adding
//!                                       FILES deployment manifests, then COMMITS-1
//!                                       commits each bumping one image tag
//! bench_git pass URL STATE_DIR FILE [OPENPGP_KEY]
//!                                       one update pass as the daemon runs it:
//!                                       open the clone in STATE_DIR (cloning the first
//!                                       time), fetch, read FILE, set its tag to a new
//!                                       value, commit (signed with the key if given),
//!                                       push; prints the phases' times to stderr
//! bench_git passes URL STATE_DIR FILE N [OPENPGP_KEY]
//!                                       the daemon's view: open once, then N passes
//!                                       (fetch + read + commit + sign + push); prints
//!                                       the median, mean and slowest pass
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crowsnest::config::{Author, GitAuth, GitConfig, Signing, SigningFormat};
use crowsnest::git::{PushOutcome, Repo};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("fast-import") if args.len() == 3 => fast_import(&args[1], &args[2]),
        Some("pass") if args.len() == 4 || args.len() == 5 => {
            pass(&args[1], Path::new(&args[2]), &args[3], args.get(4))
        }
        Some("passes") if args.len() == 5 || args.len() == 6 => passes(
            &args[1],
            Path::new(&args[2]),
            &args[3],
            &args[4],
            args.get(5),
        ),
        _ => Err("usage: bench_git fast-import FILES COMMITS | bench_git pass URL STATE_DIR FILE [OPENPGP_KEY] | bench_git passes URL STATE_DIR FILE N [OPENPGP_KEY]".into()),
    };
    if let Err(e) = result {
        eprintln!("bench_git: {e}");
        std::process::exit(1);
    }
}

/// The path of manifest `n`: 100 teams, the rest spread below them.
fn manifest_path(n: usize) -> String {
    format!("apps/team-{:02}/app-{n:05}/deploy.yaml", n % 100)
}

fn manifest(n: usize, tag: usize) -> String {
    format!(
        "apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n  name: app-{n:05}\n  namespace: team-{team:02}\n\
         spec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: app-{n:05}}}\n\
         \x20 template:\n    metadata:\n      labels: {{app: app-{n:05}}}\n\
         \x20   spec:\n      containers:\n        - name: app\n\
         \x20         image: registry.example/team-{team:02}/app-{n:05}:1.0.{tag} # {{\"$imagepolicy\": \"team-{team:02}:app-{n:05}\"}}\n\
         \x20         ports: [{{containerPort: 8080}}]\n",
        team = n % 100
    )
}

fn fast_import(files: &str, commits: &str) -> Result<(), String> {
    let files: usize = files.parse().map_err(|_| "FILES is a number")?;
    let commits: usize = commits.parse().map_err(|_| "COMMITS is a number")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut emit = |bytes: &[u8]| out.write_all(bytes).map_err(|e| e.to_string());
    let data = |text: &str| format!("data {}\n{text}\n", text.len());
    emit(b"feature done\n")?;
    for n in 0..files {
        emit(format!("blob\nmark :{}\n{}", n + 1, data(&manifest(n, 0))).as_bytes())?;
    }
    let mut time = 1_600_000_000u64;
    let mut tags = vec![0usize; files];
    // A fixed linear congruential generator: the same history every run.
    let mut seed = 0x2545_f491_u64;
    for c in 0..commits {
        time += 600;
        let who = format!("Dev <dev@example.com> {time} +0000");
        let message = if c == 0 {
            "Add the fleet".to_owned()
        } else {
            format!("Change {c}")
        };
        emit(
            format!(
                "commit refs/heads/main\nauthor {who}\ncommitter {who}\n{}",
                data(&message)
            )
            .as_bytes(),
        )?;
        if c == 0 {
            for n in 0..files {
                emit(format!("M 100644 :{} {}\n", n + 1, manifest_path(n)).as_bytes())?;
            }
        } else {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let n = (seed >> 33) as usize % files;
            tags[n] += 1;
            emit(
                format!(
                    "M 100644 inline {}\n{}",
                    manifest_path(n),
                    data(&manifest(n, tags[n]))
                )
                .as_bytes(),
            )?;
        }
        emit(b"\n")?;
    }
    emit(b"done\n")?;
    out.flush().map_err(|e| e.to_string())
}

fn config(url: &str, key: Option<&String>) -> GitConfig {
    GitConfig {
        url: url.to_owned(),
        branch: "main".into(),
        push_branch: "main".into(),
        path: String::new(),
        policies: "policies".into(),
        auth: GitAuth::default(),
        author: Author {
            name: "crowsnest".into(),
            email: "crowsnest@example.com".into(),
        },
        signing: key.map(|k| Signing {
            format: SigningFormat::OpenPgp,
            key_file: PathBuf::from(k),
            passphrase_file: None,
        }),
        message_template: None,
    }
}

/// Durations of one pass's phases.
struct Phases {
    fetch: Duration,
    commit: Duration,
    push: Duration,
}

/// fetch, read FILE, give its image a new tag, commit (signed when the
/// repo signs), push.
fn one_pass(repo: &mut Repo, file: &str) -> Result<Phases, String> {
    let start = Instant::now();
    let base = repo.fetch().map_err(|e| e.to_string())?;
    let fetched = start.elapsed();
    let old = repo
        .read_path(&base, file)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{file} is not in the branch"))?;
    let old = String::from_utf8(old).map_err(|e| e.to_string())?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    let new: String = old
        .lines()
        .map(|line| match line.find(":1.0.") {
            Some(at) if line.trim_start().starts_with("image:") => {
                let rest = &line[at + 5..];
                let end = rest.find(' ').unwrap_or(rest.len());
                format!("{}:1.0.{stamp}{}\n", &line[..at], &rest[end..])
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let message =
        format!("Update image to 1.0.{stamp}\n\nImage-Update: bench:app 1.0.x -> 1.0.{stamp}\n");
    let commit = repo
        .commit(&base, &[(file.to_owned(), new.into_bytes())], &message)
        .map_err(|e| e.to_string())?;
    let committed = start.elapsed();
    match repo.push(&base, &commit).map_err(|e| e.to_string())? {
        PushOutcome::Pushed => {}
        other => return Err(format!("push: {other:?}")),
    }
    Ok(Phases {
        fetch: fetched,
        commit: committed - fetched,
        push: start.elapsed() - committed,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pass(url: &str, state: &Path, file: &str, key: Option<&String>) -> Result<(), String> {
    let start = Instant::now();
    let mut repo = Repo::open(&config(url, key), state).map_err(|e| e.to_string())?;
    let opened = start.elapsed();
    let phases = one_pass(&mut repo, file)?;
    eprintln!(
        "open {:.1} ms, fetch {:.1} ms, commit+sign {:.1} ms, push {:.1} ms, total {:.1} ms (clones: {})",
        ms(opened),
        ms(phases.fetch),
        ms(phases.commit),
        ms(phases.push),
        ms(start.elapsed()),
        repo.stats().clones
    );
    Ok(())
}

fn passes(
    url: &str,
    state: &Path,
    file: &str,
    n: &str,
    key: Option<&String>,
) -> Result<(), String> {
    let n: usize = n.parse().map_err(|_| "N is a number")?;
    let mut repo = Repo::open(&config(url, key), state).map_err(|e| e.to_string())?;
    let mut totals = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let p = one_pass(&mut repo, file)?;
        totals.push(p.fetch + p.commit + p.push);
    }
    totals.sort();
    let mean = totals.iter().sum::<Duration>() / totals.len() as u32;
    println!(
        "{} passes in one process: median {:.1} ms, mean {:.1} ms, slowest {:.1} ms",
        totals.len(),
        ms(totals[totals.len() / 2]),
        ms(mean),
        ms(totals[totals.len() - 1])
    );
    Ok(())
}
