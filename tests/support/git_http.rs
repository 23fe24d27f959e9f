//! Smart HTTP git: `git http-backend` behind nginx + fcgiwrap, with basic
//! auth, serving every bare repository under one folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::{Guard, free_port, require, run, wait_for_port};

pub struct GitHttp {
    // nginx first: it stops before what it talks to.
    nginx: Group,
    _fcgiwrap: Group,
    dir: TempDir,
    pub port: u16,
    tls: bool,
    pub user: String,
    pub password: String,
    /// A file holding the password, for `git.auth.passwordFile`.
    pub password_file: PathBuf,
}

impl GitHttp {
    /// Serves the bare repositories in `root` at `http://127.0.0.1:PORT/<name>`,
    /// to `user` with `password` only.
    pub fn start(root: &Path, user: &str, password: &str) -> GitHttp {
        GitHttp::start_with(root, user, password, false)
    }

    /// The same over HTTPS, with a self-signed certificate for 127.0.0.1
    /// (`cert.pem` in [`GitHttp::dir`]) that no CA vouches for.
    pub fn start_tls(root: &Path, user: &str, password: &str) -> GitHttp {
        GitHttp::start_with(root, user, password, true)
    }

    fn start_with(root: &Path, user: &str, password: &str, tls: bool) -> GitHttp {
        let nginx_bin = require("nginx", "nginx");
        let fcgiwrap_bin = require("fcgiwrap", "fcgiwrap");
        let htpasswd = require("htpasswd", "apache2-utils");
        let backend = require("git-http-backend", "git");
        let dir = tempfile::Builder::new()
            .prefix("crowsnest-githttp-")
            .tempdir()
            .expect("create a temp dir");
        let d = dir.path();
        for sub in [
            "tmp/body",
            "tmp/fastcgi",
            "tmp/proxy",
            "tmp/uwsgi",
            "tmp/scgi",
        ] {
            std::fs::create_dir_all(d.join(sub)).expect("create nginx temp dirs");
        }
        // apr1 (MD5) hashes: nginx checks them itself, whatever libc does.
        let line = run(Command::new(htpasswd).args(["-bn", user, password]));
        std::fs::write(d.join("htpasswd"), line.trim_end().to_owned() + "\n")
            .expect("write htpasswd");
        let password_file = d.join("password");
        std::fs::write(&password_file, format!("{password}\n")).expect("write password file");

        let socket = d.join("fcgi.sock");
        let mut fcgi_cmd = Command::new(fcgiwrap_bin);
        fcgi_cmd
            .args(["-c", "4", "-s"])
            .arg(format!("unix:{}", socket.display()));
        let mut fcgiwrap = Group::spawn("fcgiwrap", fcgi_cmd, &d.join("fcgiwrap.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            fcgiwrap.0.assert_running();
            assert!(Instant::now() < deadline, "fcgiwrap made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }

        let port = free_port();
        let listen = if tls {
            run(Command::new(require("openssl", "openssl"))
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ])
                .args(["-nodes", "-days", "30", "-subj", "/CN=127.0.0.1"])
                .args(["-addext", "subjectAltName=IP:127.0.0.1"])
                .arg("-keyout")
                .arg(d.join("key.pem"))
                .arg("-out")
                .arg(d.join("cert.pem")));
            format!(
                "listen 127.0.0.1:{port} ssl;\n    ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;",
                d = d.display()
            )
        } else {
            format!("listen 127.0.0.1:{port};")
        };
        let conf = format!(
            r#"user root;
daemon off;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp/body;
  fastcgi_temp_path {d}/tmp/fastcgi;
  proxy_temp_path {d}/tmp/proxy;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{
    {listen}
    client_max_body_size 0;
    location / {{
      auth_basic "git";
      auth_basic_user_file {d}/htpasswd;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {root};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_param PATH_INFO $uri;
      fastcgi_pass unix:{socket};
    }}
  }}
}}
"#,
            d = d.display(),
            backend = backend.display(),
            root = root.display(),
            socket = socket.display(),
        );
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut cmd = Command::new(nginx_bin);
        cmd.arg("-e")
            .arg(d.join("error.log"))
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(&conf_path);
        let mut nginx = Group::spawn("nginx", cmd, &d.join("nginx.log"));
        wait_for_port(&mut nginx.0, port);
        GitHttp {
            dir,
            _fcgiwrap: fcgiwrap,
            nginx,
            port,
            tls,
            user: user.to_owned(),
            password: password.to_owned(),
            password_file,
        }
    }

    /// `http://127.0.0.1:PORT/<name>` for a repository folder under the root.
    pub fn url(&self, name: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/{name}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// nginx's access log lines so far.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// nginx's error log, for assertion messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
            + &self.nginx.0.log_text()
    }
}

/// A server that forks workers (nginx, fcgiwrap -c N): started in its own
/// process group, and the whole group is killed on drop so no worker
/// outlives the test.
struct Group(Guard);

impl Group {
    fn spawn(name: &str, mut command: Command, log: &Path) -> Group {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        Group(Guard::spawn(name, command, log))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.pid();
        if pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        self.0.stop();
    }
}
