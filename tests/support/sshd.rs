//! An OpenSSH server (Debian's openssh-server) on a loopback port, letting
//! one client key log in as root and run git-upload-pack/git-receive-pack.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::process::{Guard, free_port, require, run, wait_for_port};

pub struct Sshd {
    dir: TempDir,
    guard: Guard,
    pub port: u16,
    /// The server's host key, `ssh-ed25519 AAAA...`.
    pub host_key: String,
    /// The client's private key (authorized for root).
    pub client_key: PathBuf,
    pub client_passphrase_file: Option<PathBuf>,
}

/// Makes an ed25519 key pair at `path` (and `path.pub`); returns the public line.
pub fn keygen(path: &Path, passphrase: Option<&str>) -> String {
    require("ssh-keygen", "openssh-client");
    run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase.unwrap_or(""),
            "-C",
            "test",
            "-f",
        ])
        .arg(path));
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("read public key");
    let mut fields = public.split_whitespace();
    format!(
        "{} {}",
        fields.next().expect("key type"),
        fields.next().expect("key")
    )
}

impl Sshd {
    /// Starts sshd; the client key is protected by `client_passphrase` when given.
    pub fn start(client_passphrase: Option<&str>) -> Sshd {
        let sshd = require("sshd", "openssh-server");
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-sshd-")
            .tempdir()
            .expect("create a temp dir");
        let d = dir.path();
        let host_key = keygen(&d.join("host_ed25519"), None);
        let client_key = d.join("client_ed25519");
        let client_public = keygen(&client_key, client_passphrase);
        std::fs::write(d.join("authorized_keys"), format!("{client_public}\n"))
            .expect("write authorized_keys");
        let client_passphrase_file = client_passphrase.map(|p| {
            let path = d.join("client_passphrase");
            std::fs::write(&path, format!("{p}\n")).expect("write passphrase");
            path
        });
        let port = free_port();
        let conf = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             UsePAM no\n\
             LogLevel VERBOSE\n",
            d = d.display()
        );
        let conf_path = d.join("sshd_config");
        std::fs::write(&conf_path, conf).expect("write sshd_config");
        let mut cmd = Command::new(sshd);
        cmd.arg("-D")
            .arg("-f")
            .arg(&conf_path)
            .arg("-E")
            .arg(d.join("sshd.log"));
        let mut guard = Guard::spawn("sshd", cmd, &d.join("sshd.stdout"));
        wait_for_port(&mut guard, port);
        Sshd {
            dir,
            guard,
            port,
            host_key,
            client_key,
            client_passphrase_file,
        }
    }

    /// Lets the key `public` (an OpenSSH public key line) log in too.
    pub fn authorize(&self, public: &str) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .and_then(|mut f| writeln!(f, "{public}"))
            .expect("append to authorized_keys");
    }

    /// `ssh://root@127.0.0.1:PORT/<absolute path>`.
    pub fn url(&self, repo: &Path) -> String {
        format!("ssh://root@127.0.0.1:{}{}", self.port, repo.display())
    }

    /// The known_hosts line for this server, as `ssh-keyscan -p PORT` gives it.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key)
    }

    /// Writes a known_hosts file with `content` next to the server's files.
    pub fn write_known_hosts(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write known_hosts");
        path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// sshd's log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
            + &self.guard.log_text()
    }
}
