//! `crowsnest run` as a child process: started with a config, talked to
//! over its real HTTP socket, stopped with SIGTERM (or killed with SIGKILL).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::process::{Guard, free_port};

pub struct Daemon {
    guard: Guard,
    pub port: u16,
    client: reqwest::blocking::Client,
}

impl Daemon {
    /// Starts `BINARY run --config CONFIG ARGS` with `env`, logging to `log`.
    /// `binary` is the test's `env!("CARGO_BIN_EXE_crowsnest")` (support is
    /// also compiled into examples, which have no such variable).
    pub fn start(
        binary: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
        port: u16,
    ) -> Daemon {
        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("CROWSNEST_LOG", "info");
        for (k, v) in env {
            command.env(k, v);
        }
        let guard = Guard::spawn("crowsnest run", command, log);
        Daemon {
            guard,
            port,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// A free port for `http.listen`.
    pub fn free_port() -> u16 {
        free_port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        self.guard.log_text()
    }

    pub fn log_path(&self) -> PathBuf {
        self.guard.log.clone()
    }

    /// `GET path` → (status, body); (0, "") while nothing listens.
    pub fn get(&self, path: &str) -> (u16, String) {
        match self.client.get(self.url(path)).send() {
            Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let mut request = self.client.post(self.url(path)).body(body.to_owned());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().expect("POST to the daemon");
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/api/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    pub fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Waits until `done` holds, or panics with `what` and the log.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Daemon) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return;
            }
            if let Some(status) = self.guard.exited() {
                panic!(
                    "crowsnest run exited ({status}) while waiting for {what}:\n{}",
                    self.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `/readyz` to answer 200.
    pub fn wait_ready(&mut self) {
        self.wait_until("/readyz", Duration::from_secs(60), |d| {
            d.get("/readyz").0 == 200
        });
    }

    /// SIGKILL now, and reaps the process: a crash, with no chance to
    /// clean up.
    pub fn kill(&mut self) {
        self.guard.stop();
    }

    /// The exit status if the daemon has exited by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.guard.exited()
    }

    /// Sends SIGTERM and waits for the exit, at most `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.guard.pid().to_string();
        super::process::run(Command::new("kill").args(["-TERM", &pid]));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.guard.exited() {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "crowsnest run did not exit within {timeout:?} of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
