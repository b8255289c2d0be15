//! A `kora serve` process on a random loopback port, and the CLI and curl talking to it.

use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const KORA: &str = env!("CARGO_BIN_EXE_kora");

/// A `kora serve` process and the address it listens on.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(data: &std::path::Path) -> Server {
        Server::start_with(data, &[])
    }

    /// A server with `KORA_*` settings in its environment.
    pub fn start_with(data: &std::path::Path, settings: &[(&str, &str)]) -> Server {
        Server::start_args(data, &[], settings)
    }

    /// A server with more arguments (`--config FILE`) and variables in its environment.
    pub fn start_args(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(KORA)
            .args(["serve", "--bind", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kora serve starts");
        let addr = super::listening_address(&mut child);
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn kill_9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("exits");
        assert!(status.success(), "graceful shutdown exits 0: {status}");
    }
}

impl Drop for Server {
    /// A failing test must not leave servers behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn put(server: &Server, path: &str, body: &str) -> Value {
    let output = Command::new("curl")
        .args([
            "-s",
            "-X",
            "PUT",
            &server.url(&format!("/v1/data/{path}")),
            "-d",
            body,
        ])
        .output()
        .expect("curl");
    serde_json::from_slice(&output.stdout).expect("a JSON reply")
}

pub fn get(server: &Server, path: &str) -> Value {
    let output = Command::new("curl")
        .args(["-s", &server.url(&format!("/v1/data/{path}"))])
        .output()
        .expect("curl");
    serde_json::from_slice(&output.stdout).expect("a JSON reply")
}

/// Runs `kora ARGS --url SERVER`.
pub fn kora(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(KORA)
        .args(args)
        .args(["--url", &server.url("")])
        .output()
        .expect("kora runs")
}
