//! The real binary (`switchboard serve`) as a child process on a fixed loopback port: killed
//! with SIGKILL (as a crash or an OOM kill would) and started again on the same port and config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A gateway process; killed (SIGKILL) when dropped.
pub struct Gateway {
    child: Option<Child>,
    config: PathBuf,
    port: u16,
    logs: PathBuf,
    env: Vec<(String, String)>,
    starts: u32,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Gateway {
    /// Starts `switchboard serve` on `config` and `port` (logs in `logs/<port>-<n>.log`) and
    /// waits until `/healthz` answers.
    pub async fn start(config: &Path, port: u16, logs: &Path) -> Gateway {
        Gateway::start_with_env(config, port, logs, &[]).await
    }

    /// [`Gateway::start`] with these environment variables set (secrets a config reads with
    /// `{ env = "..." }`).
    pub async fn start_with_env(
        config: &Path,
        port: u16,
        logs: &Path,
        env: &[(&str, &str)],
    ) -> Gateway {
        let mut gateway = Gateway {
            child: None,
            config: config.to_owned(),
            port,
            logs: logs.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            starts: 0,
            url: format!("http://127.0.0.1:{port}"),
        };
        gateway.start_again().await;
        gateway
    }

    /// Starts the process again (after [`Gateway::kill_9`]) on the same config and port.
    pub async fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "the gateway on {} still runs",
            self.port
        );
        self.starts += 1;
        let log = self.logs.join(format!("{}-{}.log", self.port, self.starts));
        let log = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--bind", &format!("127.0.0.1:{}", self.port)])
            .env("SWITCHBOARD_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the gateway binary starts");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/healthz", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the gateway did not start on port {}", self.port);
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, and waits until the process has stopped (its last log lines written); SIGKILL
    /// if it has not within 20 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        sigterm(&child);
        if wait_exit(&mut child, Duration::from_secs(20)).is_none() {
            child.kill().expect("kill");
            child.wait().expect("reaped");
            panic!("the gateway on {} did not stop on SIGTERM", self.port);
        }
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("reaped");
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Sends `child` SIGTERM, as an orchestrator stopping it would.
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits up to `within` for `child` to exit; its exit status, or `None` if it still runs.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
