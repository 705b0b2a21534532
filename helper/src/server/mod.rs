//! The helper's session: HELLO, the loop over dcx's frames, each command's start, the end.
//!
//! The main thread reads frames from stdin and acts on each at once: RUN forks the command
//! ([`spawn`]) and starts its threads ([`threads`]); the other frames go to that command's
//! [`Job`]. A file call starts a thread of its own ([`calls`], [`files`], [`write`]). Nothing
//! here blocks on a command or a file. When stdin ends (dcx closed the stream or died), or
//! carries a frame that cannot be read, the helper closes its writes' queues ([`calls`]),
//! terminates every group it started that may still run ([`end`]) and exits 0. The environment
//! it was started with and its umask are read once, at start.

mod calls;
mod end;
mod files;
mod job;
mod out;
mod refusal;
mod retired;
mod spawn;
mod strerror;
mod threads;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use dcx_helper::{Frame, FromHelper, PROTOCOL, RunSpec, Stage, ToHelper, command_env, kind};
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};

use calls::Call;
use job::Job;
use out::Out;
use refusal::Refusal;
use retired::Retired;
use write::WriteSpec;

/// How much of dcx's stream is read ahead.
const READ_BUFFER: usize = 64 * 1024;

/// Why the helper could not serve at all (its stdio unusable at start).
#[derive(Debug)]
pub struct ServeError {
    what: &'static str,
    source: io::Error,
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What every thread shares: the stream to dcx, the base environment, the running commands.
pub struct Session {
    /// Frames to dcx.
    pub out: Out,
    /// The helper's own environment at start (`NAME=value`, in order).
    base_env: Vec<Vec<u8>>,
    /// Commands by id, from STARTED until both EXITED and OUTPUT_END are sent.
    jobs: Mutex<HashMap<u32, Arc<Job>>>,
    /// The process group of every command started that may still run.
    groups: Mutex<Vec<Pid>>,
    /// Ids that ended recently: frames about them are dropped quietly.
    retired: Mutex<Retired>,
    /// File calls by id, from their first frame until their last answer is sent.
    calls: Mutex<HashMap<u32, Call>>,
    /// The writes' threads, waited for at the end (they remove their temporary files).
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// The helper's umask, read at start (a new file's mode is `0o666 & !umask`).
    umask: Mode,
}

impl Session {
    fn job(&self, id: u32) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Frees `id`: RUN may use it again; until then frames about it are dropped quietly.
    pub fn forget(&self, id: u32) {
        self.retire(id);
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    fn retire(&self, id: u32) {
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(id);
    }

    fn retired(&self, id: u32) -> bool {
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    /// Acts on one frame from dcx; what it cannot use gets an ERROR frame.
    fn handle(self: &Arc<Self>, frame: Frame) {
        let (id, kind) = (frame.id, frame.kind);
        let result = match ToHelper::from_frame(frame) {
            Err(error) => {
                self.out.error(id, Refusal::Malformed { kind, error });
                self.refuse_call(id, kind);
                return;
            }
            Ok(ToHelper::Run(spec)) => self.run(id, &spec),
            Ok(ToHelper::FsStat { follow, path }) => {
                self.start_call(id, "fs-stat", move |session| {
                    files::stat(session, id, follow, &path);
                })
            }
            Ok(ToHelper::FsList { limit, path }) => {
                self.start_call(id, "fs-list", move |session| {
                    files::list(session, id, limit, &path);
                })
            }
            Ok(ToHelper::FsRead {
                offset,
                length,
                limit,
                path,
            }) => self.start_call(id, "fs-read", move |session| {
                files::read(session, id, offset, length, limit, &path);
            }),
            Ok(ToHelper::FsWrite { append, mode, path }) => {
                self.start_write(id, WriteSpec { append, mode, path })
            }
            Ok(ToHelper::FsWriteData(bytes)) => self.write_data(id, bytes),
            Ok(ToHelper::FsWriteEnd) => self.write_end(id),
            Ok(message) => self.to_job(id, message),
        };
        if let Err(refusal) = result {
            self.out.error(id, refusal);
        }
    }

    /// A malformed frame that would start a file call (ERROR sent) still ends as a call does,
    /// when its id is free: FS_ERR `EINVAL` at once, or at FS_WRITE_END for a write.
    fn refuse_call(&self, id: u32, kind: u8) {
        if id == 0 || self.in_use(id) {
            return;
        }
        match kind {
            kind::FS_STAT | kind::FS_LIST | kind::FS_READ => {
                self.out.send(id, &files::failure(Errno::INVAL));
            }
            kind::FS_WRITE => self.refuse_write(id, Errno::INVAL),
            _ => {}
        }
    }

    /// A frame about a started command.
    fn to_job(&self, id: u32, message: ToHelper) -> Result<(), Refusal> {
        let Some(job) = self.job(id) else {
            // An id that just ended: the frame raced the end (an acknowledgement, a signal).
            return if self.retired(id) {
                Ok(())
            } else {
                Err(Refusal::UnknownId(id))
            };
        };
        match message {
            ToHelper::Stdin(bytes) => job.queue_stdin(bytes),
            ToHelper::StdinEof => job.close_stdin(),
            ToHelper::Resize { rows, cols } => job.resize(rows, cols),
            ToHelper::Signal { signo, group } => job.signal(signo, group),
            ToHelper::Detach => {
                job.detach();
                Ok(())
            }
            ToHelper::OutputAck(bytes) => {
                job.ack_output(bytes);
                Ok(())
            }
            // RUN and file calls never come here (see `handle`).
            ToHelper::Run(_)
            | ToHelper::FsStat { .. }
            | ToHelper::FsList { .. }
            | ToHelper::FsRead { .. }
            | ToHelper::FsWrite { .. }
            | ToHelper::FsWriteData(_)
            | ToHelper::FsWriteEnd => Err(Refusal::IdInUse(id)),
        }
    }

    /// RUN: starts the command, then sends STARTED, or FAILED if nothing ran.
    fn run(self: &Arc<Self>, id: u32, spec: &RunSpec) -> Result<(), Refusal> {
        if id == 0 {
            return Err(Refusal::IdZero);
        }
        if self.in_use(id) {
            return Err(Refusal::IdInUse(id));
        }
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        let env = command_env(&self.base_env, &spec.unset, &spec.set, spec.tty);
        let spawned = match spawn::spawn(spec, &env) {
            Ok(spawned) => spawned,
            Err(failure) => {
                self.retire(id);
                self.out.send(
                    id,
                    &FromHelper::Failed {
                        stage: failure.stage,
                        errno: failure.errno,
                        message: failure.message,
                    },
                );
                return Ok(());
            }
        };
        let pid = spawned.pid;
        self.track_group(pid);
        let (sender, stdin) = match spawned.stdin {
            Some(sink) => {
                let (sender, receiver) = mpsc::channel();
                (Some(sender), Some((sink, receiver)))
            }
            None => (None, None),
        };
        let job = Arc::new(Job::new(
            id,
            pid,
            spawned.master,
            sender,
            spawned.outputs.len(),
        ));
        if let Err((err, waiter_running)) =
            threads::start_all(&job, self, spawned.child, spawned.outputs, stdin)
        {
            // Not announced yet: kill it, and report it as not started.
            job.abort();
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            if !waiter_running {
                let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
            }
            self.retire(id);
            self.out.send(
                id,
                &FromHelper::Failed {
                    stage: Stage::Other,
                    errno: err.raw_os_error().unwrap_or(0),
                    message: format!("cannot start a thread: {err}"),
                },
            );
            return Ok(());
        }
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&job));
        self.out.send(
            id,
            &FromHelper::Started {
                pid: pid.as_raw_pid().unsigned_abs(),
            },
        );
        job.start();
        Ok(())
    }

    /// Remembers a new group, forgetting those that have gone.
    fn track_group(&self, pid: Pid) {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.retain(|&group| end::may_run(group));
        groups.push(pid);
    }
}

/// Serves dcx on stdin and stdout until stdin ends; then ends every group it started.
///
/// # Errors
/// [`ServeError`] when stdin or stdout cannot be taken at start.
pub fn serve() -> Result<(), ServeError> {
    // Read before any thread starts: `umask` can only be read by setting it.
    let umask = rustix::process::umask(Mode::empty());
    rustix::process::umask(umask);
    let base_env = std::env::vars_os()
        .map(|(name, value)| [name.as_bytes(), b"=", value.as_bytes()].concat())
        .collect();
    let input = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| ServeError {
            what: "cannot take stdin",
            source,
        })?;
    let output = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| ServeError {
            what: "cannot take stdout",
            source,
        })?;
    let session = Arc::new(Session {
        out: Out::new(File::from(output)),
        base_env,
        jobs: Mutex::new(HashMap::new()),
        groups: Mutex::new(Vec::new()),
        retired: Mutex::new(Retired::default()),
        calls: Mutex::new(HashMap::new()),
        writers: Mutex::new(Vec::new()),
        umask,
    });
    session.out.send(
        0,
        &FromHelper::Hello {
            protocol: PROTOCOL,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    );
    let mut input = BufReader::with_capacity(READ_BUFFER, File::from(input));
    loop {
        match Frame::read_from(&mut input) {
            Ok(Some(frame)) => session.handle(frame),
            Ok(None) => break,
            Err(err) => {
                eprintln!("dcx-helper: {err}; ending as at end of file");
                break;
            }
        }
    }
    let groups = std::mem::take(
        &mut *session
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let writes = session.close_calls();
    end::terminate(&groups);
    writes.wait();
    Ok(())
}
