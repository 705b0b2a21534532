//! A command's threads: one reader per output descriptor, its stdin writer, its waiter.
//!
//! Each blocks on one thing only (a read, a write, `waitid`), so a command that does not read
//! its stdin, or whose output waits for credit, never holds up the main loop or another
//! command. File calls start their threads here too ([`spawn`]). The threads have small stacks
//! ([`STACK`]): their buffers are on the heap.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::process::Child;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dcx_helper::{FromHelper, HEADER_LEN, OUTPUT_CHUNK, frame_header};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::process::{WaitId, WaitIdOptions, waitid};

use super::Session;
use super::job::Job;

/// Each thread's stack: enough for a read, a write and an error message.
const STACK: usize = 64 * 1024;

/// Starts a thread with a small stack.
pub fn start<F: FnOnce() + Send + 'static>(name: &str, body: F) -> io::Result<()> {
    spawn(name, body).map(drop)
}

/// Starts a thread with a small stack, to be joined.
pub fn spawn<F: FnOnce() + Send + 'static>(name: &str, body: F) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(STACK)
        .spawn(body)
}

/// Relays one output descriptor as frames of `kind` until end of file (a PTY master's EIO
/// too), within the command's credit, or discarding after DETACH; then counts it closed.
///
/// Credit is taken only once the descriptor is readable, so a quiet descriptor (often
/// stderr) holds none while another is waiting for it.
pub fn read_output(job: &Job, session: &Session, kind: u8, mut source: File) {
    // Allocated zeroed: its pages cost memory only once output fills them.
    let mut buf = vec![0u8; HEADER_LEN + OUTPUT_CHUNK];
    loop {
        wait_readable(&source);
        let Some(grant) = job.reserve() else { break };
        let read = loop {
            match source.read(&mut buf[HEADER_LEN..HEADER_LEN + grant.len]) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // EIO: a PTY whose slave side is closed everywhere; any error ends the output.
                other => break other.unwrap_or(0),
            }
        };
        let send = job.settle(&grant, read);
        if read == 0 {
            break;
        }
        if send {
            buf[..HEADER_LEN].copy_from_slice(&frame_header(kind, job.id, read));
            session.out.write_frame(&buf[..HEADER_LEN + read]);
            job.sent(read);
        }
    }
    drop(source);
    job.output_closed(session);
}

/// Waits until `source` has bytes, end of file or an error to read.
fn wait_readable(source: &File) {
    let mut fds = [PollFd::new(source, PollFlags::IN)];
    // Any answer but an interruption means a read will not wait (or will tell the error).
    while poll(&mut fds, None) == Err(Errno::INTR) {}
}

/// Writes queued STDIN into the command's stdin, acknowledging each frame's bytes once done;
/// closes stdin when the queue closes (STDIN_EOF). After a failed write (the command closed
/// its stdin) the bytes are dropped, and still acknowledged, so dcx's credit never sticks.
pub fn write_stdin(job: &Job, session: &Session, queue: &Receiver<Vec<u8>>, sink: File) {
    let mut sink = Some(sink);
    while let Ok(bytes) = queue.recv() {
        if let Some(open) = sink.as_mut()
            && open.write_all(&bytes).is_err()
        {
            sink = None;
        }
        job.stdin_written(bytes.len());
        if !bytes.is_empty() {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            session.out.send(job.id, &FromHelper::StdinAck(len));
        }
    }
}

/// How long EXITED may wait for the output the process left behind to be sent (dcx taking
/// it slower than this would have to stop acknowledging it).
const EXIT_OUTPUT_LIMIT: Duration = Duration::from_secs(10);

/// Waits until the command's own process ends, reaps it, waits for the output it left behind
/// to be sent ([`Job::sent_before_exit`]; `outputs`: its output descriptors, duplicated) and
/// sends EXITED. The wait leaves it a zombie (`WNOWAIT`) so that [`Job::signal`] never
/// signals a reused pid.
pub fn wait_exit(job: &Job, session: &Session, mut child: Child, outputs: &[OwnedFd]) {
    // Ended, or cannot be waited for without reaping: the blocking reap below waits.
    while let Err(Errno::INTR) = waitid(
        WaitId::Pid(job.pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    ) {}
    let exit = job.reap(&mut child);
    job.sent_before_exit(outputs, EXIT_OUTPUT_LIMIT);
    job.exited(exit, session);
}

/// Starts every thread of a new command. On an error the command must be abandoned;
/// `waiter_running` says whether the waiter (which reaps it) runs.
pub fn start_all(
    job: &Arc<Job>,
    session: &Arc<Session>,
    child: Child,
    outputs: Vec<(u8, File)>,
    stdin: Option<(File, Receiver<Vec<u8>>)>,
) -> Result<(), (io::Error, bool)> {
    // The waiter's own copies of the output descriptors, to see what they still hold.
    let held: Vec<OwnedFd> = outputs
        .iter()
        .filter_map(|(_, source)| source.try_clone().ok().map(OwnedFd::from))
        .collect();
    let (j, s) = (Arc::clone(job), Arc::clone(session));
    start("wait", move || wait_exit(&j, &s, child, &held)).map_err(|err| (err, false))?;
    for (kind, source) in outputs {
        let (j, s) = (Arc::clone(job), Arc::clone(session));
        start("output", move || read_output(&j, &s, kind, source)).map_err(|err| (err, true))?;
    }
    if let Some((sink, queue)) = stdin {
        let (j, s) = (Arc::clone(job), Arc::clone(session));
        start("stdin", move || write_stdin(&j, &s, &queue, sink)).map_err(|err| (err, true))?;
    }
    Ok(())
}
