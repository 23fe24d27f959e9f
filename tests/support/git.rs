//! Bare Git remotes for tests, driven with the git CLI so that what the
//! tests check is what plain git sees.
//!
//! A [`Remote`] is `git init --bare -b main` in its own temporary directory,
//! seeded through a scratch clone. Helpers read the remote's log, commit
//! count, diffs and files, let "another user" push to it, and install
//! server-side hooks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::process::{require, run};

/// One commit as `git log` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub id: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    pub committer_name: String,
    pub committer_email: String,
    /// The full message (`%B`).
    pub message: String,
}

/// A bare repository on disk, reachable as `file://` (and served by the
/// HTTP and SSH servers of `support` when they are pointed at it).
pub struct Remote {
    dir: TempDir,
    /// The bare repository.
    pub path: PathBuf,
    scratch: std::cell::Cell<u32>,
}

/// A `git` command with no user or system config, a fixed identity, and
/// no signing, so tests see the same thing on every machine.
pub fn git() -> Command {
    require("git", "git");
    let mut command = Command::new("git");
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Someone Else")
        .env("GIT_AUTHOR_EMAIL", "someone@example.com")
        .env("GIT_COMMITTER_NAME", "Someone Else")
        .env("GIT_COMMITTER_EMAIL", "someone@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GNUPGHOME");
    command
}

impl Remote {
    /// A remote whose `main` holds exactly `files` (path -> content) in one commit.
    pub fn new(files: &[(&str, &str)]) -> Remote {
        let remote = Remote::empty();
        remote.change("main", "Initial commit", |dir| {
            for (path, content) in files {
                write(dir, path, content.as_bytes());
            }
        });
        remote
    }

    /// A remote with no commits and no branches.
    pub fn empty() -> Remote {
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-remote-")
            .tempdir()
            .expect("create a temp dir");
        let path = dir.path().join("fleet.git");
        run(git()
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path));
        // Served over smart HTTP too; harmless for file:// and ssh.
        run(git()
            .arg("-C")
            .arg(&path)
            .args(["config", "http.receivepack", "true"]));
        Remote {
            dir,
            path,
            scratch: std::cell::Cell::new(0),
        }
    }

    /// `file:///.../fleet.git`
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// The temporary directory holding the remote, for neighbouring files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `git -C <bare repo>`.
    pub fn git(&self) -> Command {
        let mut command = git();
        command.arg("-C").arg(&self.path);
        command
    }

    fn run(&self, args: &[&str]) -> String {
        run(self.git().args(args))
    }

    /// The commit `branch` points at, or `None` when the branch does not exist.
    pub fn head(&self, branch: &str) -> Option<String> {
        let output = self
            .git()
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}^{{commit}}"))
            .output()
            .expect("run git rev-parse");
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The commit `branch` points at; panics when it does not exist.
    pub fn tip(&self, branch: &str) -> String {
        self.head(branch)
            .unwrap_or_else(|| panic!("the remote has no branch {branch}"))
    }

    /// Number of commits reachable from `branch` (0 when it does not exist).
    pub fn commit_count(&self, branch: &str) -> usize {
        match self.head(branch) {
            None => 0,
            Some(tip) => self
                .run(&["rev-list", "--count", &tip])
                .trim()
                .parse()
                .expect("rev-list --count prints a number"),
        }
    }

    /// The branches of the remote, sorted.
    pub fn branches(&self) -> Vec<String> {
        self.run(&["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The log of `rev`, newest first.
    pub fn log(&self, rev: &str) -> Vec<Logged> {
        let out = self.run(&[
            "log",
            "--format=%H%x00%P%x00%an%x00%ae%x00%cn%x00%ce%x00%B%x1e",
            rev,
        ]);
        out.split('\x1e')
            .map(|entry| entry.trim_start_matches('\n'))
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let fields: Vec<&str> = entry.splitn(7, '\0').collect();
                assert_eq!(fields.len(), 7, "unexpected log entry {entry:?}");
                Logged {
                    id: fields[0].to_owned(),
                    parents: fields[1].split_whitespace().map(str::to_owned).collect(),
                    author_name: fields[2].to_owned(),
                    author_email: fields[3].to_owned(),
                    committer_name: fields[4].to_owned(),
                    committer_email: fields[5].to_owned(),
                    message: fields[6].to_owned(),
                }
            })
            .collect()
    }

    /// The full message of one commit, as git stores it.
    pub fn message(&self, rev: &str) -> String {
        self.run(&["log", "-1", "--format=%B", rev])
    }

    /// The raw commit object (headers, `gpgsig`, message).
    pub fn raw_commit(&self, rev: &str) -> String {
        self.run(&["cat-file", "commit", rev])
    }

    /// Paths `rev` changed relative to its first parent, sorted.
    pub fn changed_files(&self, rev: &str) -> Vec<String> {
        let mut files: Vec<String> = self
            .run(&["diff-tree", "--no-commit-id", "--name-only", "-r", rev])
            .lines()
            .map(str::to_owned)
            .collect();
        files.sort();
        files
    }

    /// The unified diff of `rev` against its first parent, without headers
    /// that change from run to run (`index` lines).
    pub fn diff(&self, rev: &str) -> String {
        self.run(&[
            "diff",
            "--no-color",
            "--no-ext-diff",
            &format!("{rev}^"),
            rev,
        ])
        .lines()
        .filter(|line| !line.starts_with("index "))
        .map(|line| format!("{line}\n"))
        .collect()
    }

    /// A file's bytes at `rev`, or `None` when it does not exist there.
    pub fn file(&self, rev: &str, path: &str) -> Option<Vec<u8>> {
        let output = self
            .git()
            .args(["cat-file", "blob", &format!("{rev}:{path}")])
            .output()
            .expect("run git cat-file");
        output.status.success().then_some(output.stdout)
    }

    /// Every file at `rev`: path -> (mode, bytes).
    pub fn tree(&self, rev: &str) -> BTreeMap<String, (String, Vec<u8>)> {
        self.run(&["ls-tree", "-r", "-z", rev])
            .split('\0')
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let (meta, path) = entry.split_once('\t').expect("ls-tree entry has a tab");
                let mut meta = meta.split(' ');
                let mode = meta.next().expect("mode").to_owned();
                let bytes = self.file(rev, path).expect("listed file exists");
                (path.to_owned(), (mode, bytes))
            })
            .collect()
    }

    /// "Someone else" commits to `branch` through a scratch clone and pushes
    /// with the git CLI (so server hooks run). `edit` gets the worktree
    /// directory and changes files in it; everything is added. Creates the
    /// branch when it does not exist yet. Returns the new commit.
    pub fn change(&self, branch: &str, message: &str, edit: impl FnOnce(&Path)) -> String {
        let work = self.scratch_clone(branch);
        edit(&work);
        run(git().arg("-C").arg(&work).args(["add", "-A"]));
        run(git()
            .arg("-C")
            .arg(&work)
            .args(["commit", "-q", "--allow-empty", "-m", message]));
        run(git().arg("-C").arg(&work).args([
            "push",
            "-q",
            "origin",
            &format!("HEAD:refs/heads/{branch}"),
        ]));
        let id = run(git().arg("-C").arg(&work).args(["rev-parse", "HEAD"]))
            .trim()
            .to_owned();
        std::fs::remove_dir_all(&work).expect("remove the scratch clone");
        id
    }

    /// "Someone else" merges `from` into `into` with a merge commit (what
    /// a pull request's merge button does) and pushes. Returns the merge.
    pub fn merge(&self, into: &str, from: &str) -> String {
        let work = self.scratch_clone(into);
        run(git().arg("-C").arg(&work).args([
            "merge",
            "-q",
            "--no-ff",
            "-m",
            &format!("Merge {from} into {into}"),
            &format!("origin/{from}"),
        ]));
        run(git().arg("-C").arg(&work).args([
            "push",
            "-q",
            "origin",
            &format!("HEAD:refs/heads/{into}"),
        ]));
        let id = run(git().arg("-C").arg(&work).args(["rev-parse", "HEAD"]))
            .trim()
            .to_owned();
        std::fs::remove_dir_all(&work).expect("remove the scratch clone");
        id
    }

    /// Writes `files` on `branch` as one commit by someone else (see [`Remote::change`]).
    pub fn commit_files(&self, branch: &str, message: &str, files: &[(&str, &str)]) -> String {
        self.change(branch, message, |dir| {
            for (path, content) in files {
                write(dir, path, content.as_bytes());
            }
        })
    }

    fn scratch_clone(&self, branch: &str) -> PathBuf {
        let n = self.scratch.get() + 1;
        self.scratch.set(n);
        let work = self.dir.path().join(format!("scratch-{n}"));
        run(git()
            .args(["clone", "-q", "--no-checkout"])
            .arg(&self.path)
            .arg(&work));
        if self.head(branch).is_some() {
            run(git().arg("-C").arg(&work).args([
                "checkout",
                "-q",
                "-B",
                branch,
                &format!("origin/{branch}"),
            ]));
        } else if self.head("main").is_some() {
            run(git()
                .arg("-C")
                .arg(&work)
                .args(["checkout", "-q", "-B", branch, "origin/main"]));
        } else {
            run(git()
                .arg("-C")
                .arg(&work)
                .args(["checkout", "-q", "--orphan", branch]));
        }
        work
    }

    /// Points `branch` at `rev` on the remote (creating or moving it,
    /// without hooks): a force-push by someone else.
    pub fn set_branch(&self, branch: &str, rev: &str) {
        self.run(&["update-ref", &format!("refs/heads/{branch}"), rev]);
    }

    /// Deletes `branch` on the remote.
    pub fn delete_branch(&self, branch: &str) {
        self.run(&["update-ref", "-d", &format!("refs/heads/{branch}")]);
    }

    /// Installs an executable server-side hook (`pre-receive`, `update`, ...).
    pub fn set_hook(&self, name: &str, script: &str) {
        let path = self.path.join("hooks").join(name);
        std::fs::write(&path, script).expect("write hook");
        set_mode(&path, 0o755);
    }

    /// Runs `git fsck --strict` on the remote; panics with its output on
    /// failure. A receive-pack still running on the server (a client
    /// killed inside a push over HTTP does not stop it) is waited out
    /// first: while it moves the pushed objects out of its quarantine one
    /// by one, fsck can find a commit whose tree is not moved yet and call
    /// the tree missing, though no ref points to the commit until the move
    /// is done.
    pub fn fsck(&self) {
        let quarantined = || {
            std::fs::read_dir(self.path.join("objects"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains("incoming-"))
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while quarantined() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.run(&["fsck", "--strict", "--no-progress"]);
    }

    /// `true` when `ancestor` is an ancestor of (or equal to) `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        self.git()
            .args(["merge-base", "--is-ancestor", ancestor, descendant])
            .status()
            .expect("run git merge-base")
            .success()
    }
}

/// Writes `bytes` at `dir/path`, creating parent folders.
pub fn write(dir: &Path, path: &str, bytes: &[u8]) {
    let full = dir.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).expect("create parent folders");
    }
    std::fs::write(&full, bytes).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
}

/// Sets a file's Unix permission bits.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
