//! Test server processes that never outlive the test process.
//!
//! Each server runs under a small bash supervisor that holds the read end of a pipe whose write
//! end only this process has. When the `Supervised` handle is dropped, or this process exits for
//! any reason (a `static` shared control plane is never dropped), the pipe closes and the
//! supervisor stops the server by PID: SIGTERM, then SIGKILL after a grace period. Supervisors
//! ignore SIGINT and SIGHUP, so a Ctrl-C that reaches the whole process group still lets them
//! stop their server and remove its directory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

const SUPERVISOR: &str = r#"
trap '' INT HUP
log=$1; shift
cleanup=$1; shift
exec 3<&0
"$@" >>"$log" 2>&1 </dev/null &
child=$!
echo "$child" >"$log.pid"
( read -r -u 3 _; kill -TERM "$child" 2>/dev/null; sleep 5; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
[ -n "$cleanup" ] && rm -rf "$cleanup"
exit "$status"
"#;

/// A running test server; stopped when dropped or when the test process ends.
pub struct Supervised {
    name: String,
    supervisor: Child,
    stop_pipe: Option<ChildStdin>,
    log: PathBuf,
}

impl Supervised {
    /// Starts `program args…` with its output appended to `log`.
    /// `cleanup` is a directory removed once the server has stopped.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
        cleanup: Option<&Path>,
    ) -> Result<Self> {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("supervisor")
            .arg(log)
            .arg(
                cleanup
                    .map(|p| p.as_os_str().to_owned())
                    .unwrap_or_default(),
            )
            .arg(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut supervisor = command.spawn().map_err(|e| {
            Error::Setup(format!("cannot start {name} ({}): {e}", program.display()))
        })?;
        let stop_pipe = supervisor.stdin.take();
        Ok(Self {
            name: name.to_string(),
            supervisor,
            stop_pipe,
            log: log.to_path_buf(),
        })
    }

    /// The server's name as given to `spawn`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID of the server itself (not of its supervisor), once it has started.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(format!("{}.pid", self.log.display()))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.supervisor.try_wait(), Ok(None))
    }

    /// The last `max_bytes` of the server's log, for error messages.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        tail(&self.log, max_bytes)
    }

    /// The lines of the whole log that report a panic or an error `main` returned, each with the
    /// three lines after it (a backtrace can push them out of [`Supervised::log_tail`]).
    pub fn log_failures(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines
            .iter()
            .enumerate()
            .filter(|(_, line)| line.contains("panicked at") || line.starts_with("Error:"))
            .take(5)
            .flat_map(|(at, _)| lines[at..lines.len().min(at + 4)].iter())
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// Path of the server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// SIGKILLs the server (no graceful shutdown, as a crash) and waits until it is gone.
    pub fn kill(&mut self) -> Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| Error::Setup(format!("{} has no PID yet", self.name)))?;
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
        if !status.success() {
            return Err(Error::Setup(format!(
                "kill -KILL {pid} ({}) failed: {status}",
                self.name
            )));
        }
        self.stop();
        Ok(())
    }

    /// Stops the server and waits for it to exit (at most ten seconds).
    pub fn stop(&mut self) {
        self.stop_pipe.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.supervisor.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `max_bytes` of a file, lossily decoded; empty when it cannot be read.
pub fn tail(path: &Path, max_bytes: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
