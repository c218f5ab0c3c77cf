//! Runs one suite command in its own process group with a timeout, and measures its exit
//! status, wall time and peak RSS (from `wait4`'s resource usage).

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

/// How much of the end of stdout/stderr is kept for logs and error messages.
const OUTPUT_TAIL_BYTES: usize = 16 * 1024;

/// What to run.
#[derive(Debug)]
pub struct ProcessSpec<'a> {
    pub argv: &'a [String],
    pub working_dir: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when the timeout hits.
    pub kill_grace: Duration,
    /// Keep the whole of stdout, up to this many bytes (the suite's report is its stdout).
    pub keep_stdout: Option<u64>,
}

/// How the process ended.
#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    pub peak_rss_bytes: Option<u64>,
    pub stdout_tail: String,
    pub stderr_tail: String,
    /// All of stdout when `keep_stdout` asked for it and it fit.
    pub stdout: Option<Vec<u8>>,
    /// Stdout was larger than `keep_stdout`.
    pub stdout_overflowed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("failed to start {program:?} in {}{}", working_dir.display(), hint(working_dir, source))]
    Spawn {
        program: String,
        working_dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to wait for {program:?}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// Which of the two things a spawn needs was missing, when the error alone cannot say:
/// "No such file or directory" is also what a missing working dir gives.
fn hint(working_dir: &Path, source: &std::io::Error) -> &'static str {
    if source.kind() != std::io::ErrorKind::NotFound {
        ""
    } else if !working_dir.is_dir() {
        " (the working dir does not exist)"
    } else {
        " (the program is not in the working dir or on PATH)"
    }
}

/// Exit information from `wait4`.
struct Reaped {
    status: std::process::ExitStatus,
    peak_rss_bytes: Option<u64>,
}

/// Runs the command to completion or timeout. The whole process group is killed on timeout,
/// and any process of the group still alive after the leader exits is killed too.
pub async fn run(spec: &ProcessSpec<'_>) -> Result<ProcessOutcome, ProcessError> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(ProcessError::Spawn {
            program: String::new(),
            working_dir: spec.working_dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        });
    };
    let program = program.clone();
    let mut command = Command::new(&program);
    command
        .args(args)
        .current_dir(spec.working_dir)
        .envs(spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        working_dir: spec.working_dir.to_path_buf(),
        source,
    })?;
    let pid = child.id() as libc::pid_t;
    // Whatever happens to this future from here (finished, timed out, or dropped because the
    // agent is shutting down), no process of the group outlives it.
    let _group = KillGroupOnDrop(pid);
    // The pipes are read as the suite writes them, and can be given up at any time: a
    // process that left the group may hold them open for ever.
    let (stop, stopped) = watch::channel(false);
    let keep = spec
        .keep_stdout
        .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
    let stdout = child
        .stdout
        .take()
        .and_then(|out| tokio::process::ChildStdout::from_std(out).ok())
        .map(|out| tokio::spawn(read_output(out, keep, stopped.clone())));
    let stderr = child
        .stderr
        .take()
        .and_then(|err| tokio::process::ChildStderr::from_std(err).ok())
        .map(|err| tokio::spawn(read_output(err, None, stopped)));
    // `child` is never waited on through std: `wait4` below reaps it, and dropping a std
    // `Child` neither waits nor kills.
    drop(child);
    let mut reaper = tokio::task::spawn_blocking(move || wait4(pid));

    let mut timed_out = false;
    let joined = match tokio::time::timeout(spec.timeout, &mut reaper).await {
        Ok(joined) => joined,
        Err(_) => {
            timed_out = true;
            tracing::warn!(program, pid, timeout = ?spec.timeout, "suite timed out; sending SIGTERM to its process group");
            kill_group(pid, libc::SIGTERM);
            match tokio::time::timeout(spec.kill_grace, &mut reaper).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::warn!(
                        program,
                        pid,
                        "suite ignored SIGTERM; sending SIGKILL to its process group"
                    );
                    kill_group(pid, libc::SIGKILL);
                    reaper.await
                }
            }
        }
    };
    let duration = started.elapsed();
    let reaped = joined
        .map_err(|join| std::io::Error::other(join.to_string()))
        .and_then(|result| result)
        .map_err(|source| ProcessError::Wait {
            program: program.clone(),
            source,
        })?;
    // The leader is gone: what is left of its group (daemons, hung workers) is killed now,
    // and the pipes are read until they close. A process that left the group (`setsid`) may
    // hold them open: after OUTPUT_CLOSE_GRACE what is already in them is read and they are
    // given up, so neither the run nor the agent's exit waits for that process.
    kill_group(pid, libc::SIGKILL);
    let reading = async { tokio::join!(join_output(stdout), join_output(stderr)) };
    tokio::pin!(reading);
    let (stdout, stderr) = tokio::select! {
        outputs = &mut reading => outputs,
        () = tokio::time::sleep(OUTPUT_CLOSE_GRACE) => {
            let _ = stop.send(true);
            reading.await
        }
    };
    if stdout.given_up || stderr.given_up {
        tracing::warn!(
            program,
            "a process outside the suite's group still holds its output open; output read so far is kept, the rest given up"
        );
    }
    Ok(ProcessOutcome {
        exit_code: reaped.status.code(),
        signal: reaped.status.signal(),
        timed_out,
        duration,
        peak_rss_bytes: reaped.peak_rss_bytes,
        stdout_tail: stdout.tail,
        stderr_tail: stderr.tail,
        stdout: stdout.all,
        stdout_overflowed: stdout.overflowed,
    })
}

/// Kills the process group with SIGKILL when dropped.
struct KillGroupOnDrop(libc::pid_t);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        kill_group(self.0, libc::SIGKILL);
    }
}

fn kill_group(pgid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: killpg has no memory-safety preconditions; a stale group id yields ESRCH.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

fn wait4(pid: libc::pid_t) -> std::io::Result<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, exclusively borrowed out-pointers.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    // On Linux ru_maxrss is in KiB.
    let peak_rss_bytes = u64::try_from(usage.ru_maxrss)
        .ok()
        .filter(|kib| *kib > 0)
        .map(|kib| kib * 1024);
    Ok(Reaped {
        status: std::process::ExitStatus::from_raw(status),
        peak_rss_bytes,
    })
}

/// What was read from one output stream.
#[derive(Debug, Default)]
struct Captured {
    /// The last `OUTPUT_TAIL_BYTES`, for logs and error messages.
    tail: String,
    /// Everything, when asked for and within the limit.
    all: Option<Vec<u8>>,
    overflowed: bool,
    /// The stream was still open when reading it was given up.
    given_up: bool,
}

/// Bytes read so far from one stream.
struct Reading {
    tail: Vec<u8>,
    all: Option<Vec<u8>>,
    keep: Option<usize>,
    overflowed: bool,
}

impl Reading {
    fn push(&mut self, bytes: &[u8]) {
        if let (Some(kept), Some(limit)) = (&mut self.all, self.keep) {
            if kept.len() + bytes.len() > limit {
                self.overflowed = true;
                self.all = None;
            } else {
                kept.extend_from_slice(bytes);
            }
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * OUTPUT_TAIL_BYTES {
            self.tail.drain(..self.tail.len() - OUTPUT_TAIL_BYTES);
        }
    }

    fn captured(mut self, given_up: bool) -> Captured {
        if self.tail.len() > OUTPUT_TAIL_BYTES {
            self.tail.drain(..self.tail.len() - OUTPUT_TAIL_BYTES);
        }
        Captured {
            tail: String::from_utf8_lossy(&self.tail).into_owned(),
            all: self.all,
            overflowed: self.overflowed,
            given_up,
        }
    }
}

/// Reads a stream until it ends, keeping its tail and, with `keep`, all of it up to `keep`
/// bytes; or until `stop` turns true: then what the stream already holds is read, and the
/// rest given up.
async fn read_output(
    mut stream: impl AsyncRead + Unpin,
    keep: Option<usize>,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let mut reading = Reading {
        tail: Vec::new(),
        all: keep.map(|_| Vec::new()),
        keep,
        overflowed: false,
    };
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            biased;
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return reading.captured(false),
                Ok(n) => reading.push(&buffer[..n]),
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    // Whatever is in the pipe now was written before the stop; nothing more is waited for.
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::ZERO, stream.read(&mut buffer)).await {
        if n == 0 {
            return reading.captured(false);
        }
        reading.push(&buffer[..n]);
    }
    reading.captured(true)
}

/// How long to wait for a stream to close after the process group is gone. A grandchild that
/// left the group (setsid) may hold the pipe open forever; reading it then stops.
const OUTPUT_CLOSE_GRACE: Duration = Duration::from_secs(2);

async fn join_output(handle: Option<tokio::task::JoinHandle<Captured>>) -> Captured {
    match handle {
        Some(handle) => handle.await.unwrap_or_default(),
        None => Captured::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(
        argv: &'a [String],
        env: &'a BTreeMap<String, String>,
        timeout: Duration,
    ) -> ProcessSpec<'a> {
        ProcessSpec {
            argv,
            working_dir: Path::new("/"),
            env,
            timeout,
            kill_grace: Duration::from_millis(300),
            keep_stdout: Some(1024),
        }
    }

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn reports_exit_code_output_and_peak_rss() {
        let env = BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]);
        let argv = argv(&["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"]);
        let outcome = run(&spec(&argv, &env, Duration::from_secs(10)))
            .await
            .expect("runs");
        assert_eq!(outcome.exit_code, Some(3));
        assert_eq!(outcome.stdout_tail, "hello\n");
        assert_eq!(outcome.stdout.as_deref(), Some(&b"hello\n"[..]));
        assert_eq!(outcome.stderr_tail, "oops\n");
        assert!(!outcome.timed_out);
        assert!(outcome.peak_rss_bytes.is_some_and(|b| b > 0));
    }

    #[tokio::test]
    async fn timeout_kills_the_group_even_when_sigterm_is_ignored() {
        let env = BTreeMap::new();
        let argv = argv(&["sh", "-c", "trap '' TERM; sleep 30 & sleep 30; wait"]);
        let outcome = run(&spec(&argv, &env, Duration::from_millis(200)))
            .await
            .expect("runs");
        assert!(outcome.timed_out);
        assert_eq!(outcome.signal, Some(libc::SIGKILL));
        assert!(outcome.duration < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_grandchild_that_escapes_the_group_cannot_hang_the_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("escaped.pid");
        let env = BTreeMap::from([("PID_FILE".to_owned(), pid_file.display().to_string())]);
        // The grandchild leaves the group (setsid) and keeps the inherited stdout open; the
        // suite exits only once the escape has happened.
        let script = "setsid sh -c 'echo $$ > \"$PID_FILE\"; exec sleep 30' & \
                      while [ ! -s \"$PID_FILE\" ]; do sleep 0.01; done; echo started";
        let argv = argv(&["sh", "-c", script]);
        let outcome = run(&spec(&argv, &env, Duration::from_secs(20))).await;
        let escaped: libc::pid_t = std::fs::read_to_string(&pid_file)
            .expect("the grandchild wrote its pid")
            .trim()
            .parse()
            .expect("a pid");
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(escaped, libc::SIGKILL);
        }
        let outcome = outcome.expect("runs");
        assert_eq!(outcome.exit_code, Some(0));
        assert!(
            outcome.duration < Duration::from_secs(5),
            "{:?}",
            outcome.duration
        );
        assert_eq!(
            outcome.stdout_tail, "started\n",
            "what the suite wrote is kept though the pipe is still held open"
        );
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error_naming_it() {
        let env = BTreeMap::new();
        let argv = argv(&["/nonexistent/testmeter-no-such-program"]);
        let error = run(&spec(&argv, &env, Duration::from_secs(1)))
            .await
            .expect_err("no such program");
        assert_eq!(
            error.to_string(),
            "failed to start \"/nonexistent/testmeter-no-such-program\" in / (the program is not in the working dir or on PATH)"
        );
    }
}
