//! A started command's shared state: output credit, stdin queue, signals, exit and end.
//!
//! The main loop, the command's output readers, its stdin writer and its waiter share one
//! [`Job`]. One lock guards its state; a condition variable wakes readers waiting for credit
//! (at most [`OUTPUT_WINDOW`] bytes sent and not yet acknowledged; none needed after DETACH)
//! and threads waiting for STARTED to be sent. EXITED and OUTPUT_END are sent under the lock,
//! and whichever comes second frees the id (before its frame is written, so dcx may reuse the
//! id as soon as it has both).
//!
//! EXITED comes after every byte the process wrote before it ended ([`Job::sent_before_exit`]):
//! what its readers had read and what its pipes still held when it was reaped is sent first,
//! however late the readers are scheduled, so dcx, which stops reading a short while after
//! EXITED when the output stays silent, never loses the end of a short command's output. A
//! background child's later output does not hold EXITED back.

use std::os::fd::OwnedFd;
use std::process::Child;
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use dcx_helper::{Exit, FromHelper, OUTPUT_CHUNK, OUTPUT_WINDOW, STDIN_WINDOW};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};
use rustix::termios::{Winsize, tcsetwinsize};

use super::Session;
use super::refusal::Refusal;

/// One started command.
pub struct Job {
    /// Its id in the protocol.
    pub id: u32,
    /// Its pid: also its session and process group id.
    pub pid: Pid,
    /// The PTY master, for RESIZE.
    master: Option<OwnedFd>,
    /// The stdin writer's queue; `None` once closed (or never open).
    stdin: Mutex<Option<Sender<Vec<u8>>>>,
    /// Whether stdin was ever open (to word refusals).
    stdin_open: bool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// STARTED was sent: output and EXITED may follow.
    started: bool,
    /// The start was abandoned (FAILED sent instead): threads end without sending.
    aborted: bool,
    /// Output bytes sent or being read under a grant, not yet acknowledged.
    unacked: usize,
    /// DETACH came: read output and discard it.
    detached: bool,
    /// The process was reaped: its pid may be reused, signal only its group.
    reaped: bool,
    /// EXITED was sent.
    exited: bool,
    /// Output descriptors not yet at end of file.
    open_outputs: usize,
    /// STDIN bytes queued and not yet acknowledged.
    stdin_pending: usize,
    /// Readers between their grant and its settling (a read in progress).
    reading: usize,
    /// Output bytes read, and of them sent (or discarded after DETACH), since the start.
    read_total: u64,
    done_total: u64,
}

/// Leave to read output: `len` bytes at most, `reserved` of them counted against the credit.
pub struct Grant {
    /// The most bytes to read.
    pub len: usize,
    reserved: usize,
}

impl Job {
    /// A command `id` running as `pid`, with `outputs` descriptors to relay.
    pub fn new(
        id: u32,
        pid: Pid,
        master: Option<OwnedFd>,
        stdin: Option<Sender<Vec<u8>>>,
        outputs: usize,
    ) -> Self {
        Self {
            id,
            pid,
            master,
            stdin_open: stdin.is_some(),
            stdin: Mutex::new(stdin),
            state: Mutex::new(State {
                open_outputs: outputs,
                ..State::default()
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// STARTED was sent: let the threads send.
    pub fn start(&self) {
        self.lock().started = true;
        self.changed.notify_all();
    }

    /// The start was abandoned: threads end quietly, stdin closes.
    pub fn abort(&self) {
        self.lock().aborted = true;
        self.close_stdin_queue();
        self.changed.notify_all();
    }

    /// Waits for leave to read output; `None` when the start was abandoned.
    pub fn reserve(&self) -> Option<Grant> {
        let mut state = self.lock();
        loop {
            if state.aborted {
                return None;
            }
            if state.started && state.detached {
                state.reading += 1;
                return Some(Grant {
                    len: OUTPUT_CHUNK,
                    reserved: 0,
                });
            }
            if state.started && state.unacked < OUTPUT_WINDOW {
                let len = OUTPUT_CHUNK.min(OUTPUT_WINDOW - state.unacked);
                state.unacked += len;
                state.reading += 1;
                return Some(Grant { len, reserved: len });
            }
            state = self.wait(state);
        }
    }

    /// `read` bytes came under `grant`: returns whether to send them (not after DETACH; then
    /// they count as done at once). Sent ones are [`Job::sent`] once written.
    pub fn settle(&self, grant: &Grant, read: usize) -> bool {
        let mut state = self.lock();
        state.reading = state.reading.saturating_sub(1);
        state.read_total += read as u64;
        let unused = grant.reserved.saturating_sub(read);
        state.unacked = state.unacked.saturating_sub(unused);
        let send = !state.detached;
        if !send {
            state.unacked = state.unacked.saturating_sub(grant.reserved - unused);
            state.done_total += read as u64;
        }
        drop(state);
        self.changed.notify_all();
        send
    }

    /// `bytes` read under a grant were written to dcx.
    pub fn sent(&self, bytes: usize) {
        self.lock().done_total += bytes as u64;
        self.changed.notify_all();
    }

    /// Waits (at most `limit`) until every byte the reaped process left behind is sent: what
    /// its readers had read, and what `outputs` (its pipes or terminal) still held. Output
    /// that ends, a start abandoned or DETACH end the wait too.
    pub fn sent_before_exit(&self, outputs: &[OwnedFd], limit: std::time::Duration) {
        let until = std::time::Instant::now() + limit;
        let mut state = self.lock();
        // No read half done: every byte is either counted as read or still in a descriptor.
        while state.reading > 0 && !state.aborted && std::time::Instant::now() < until {
            state = self.wait_until(state, until);
        }
        let held: u64 = outputs
            .iter()
            .map(|fd| rustix::io::ioctl_fionread(fd).unwrap_or(0))
            .sum();
        let target = state.read_total + held;
        while state.done_total < target
            && state.open_outputs > 0
            && !state.aborted
            && !state.detached
            && std::time::Instant::now() < until
        {
            state = self.wait_until(state, until);
        }
    }

    fn wait_until<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        until: std::time::Instant,
    ) -> MutexGuard<'a, State> {
        let left = until.saturating_duration_since(std::time::Instant::now());
        self.changed
            .wait_timeout(guard, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// OUTPUT_ACK: dcx took `bytes` more.
    pub fn ack_output(&self, bytes: u32) {
        let mut state = self.lock();
        state.unacked = state.unacked.saturating_sub(bytes as usize);
        drop(state);
        self.changed.notify_all();
    }

    /// DETACH: read and discard from now on.
    pub fn detach(&self) {
        let mut state = self.lock();
        state.detached = true;
        state.unacked = 0;
        drop(state);
        self.changed.notify_all();
    }

    /// STDIN: queues `bytes` for the writer. (Lock order, everywhere: state, then stdin.)
    pub fn queue_stdin(&self, bytes: Vec<u8>) -> Result<(), Refusal> {
        let mut state = self.lock();
        let stdin = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(queue) = stdin.as_ref() else {
            return Err(self.stdin_refusal());
        };
        if state.stdin_pending + bytes.len() > STDIN_WINDOW {
            return Err(Refusal::StdinWindow(self.id));
        }
        let len = bytes.len();
        if queue.send(bytes).is_ok() {
            state.stdin_pending += len;
        }
        Ok(())
    }

    /// STDIN_EOF: the writer closes stdin after what is queued.
    pub fn close_stdin(&self) -> Result<(), Refusal> {
        if self.close_stdin_queue() {
            Ok(())
        } else {
            Err(self.stdin_refusal())
        }
    }

    fn close_stdin_queue(&self) -> bool {
        self.stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .is_some()
    }

    fn stdin_refusal(&self) -> Refusal {
        if self.stdin_open {
            Refusal::StdinClosed(self.id)
        } else {
            Refusal::StdinNotOpen(self.id)
        }
    }

    /// The writer is done with `bytes` of the queue (written, or dropped on a closed stdin).
    pub fn stdin_written(&self, bytes: usize) {
        let mut state = self.lock();
        state.stdin_pending = state.stdin_pending.saturating_sub(bytes);
    }

    /// SIGNAL: `signo` (0: only a check) for the process or its group. A target that is gone
    /// is no error; the process is not signalled once reaped (its pid may be reused), its
    /// group is (the group id stays reserved while any member lives).
    pub fn signal(&self, signo: u8, group: bool) -> Result<(), Refusal> {
        let signal = match signo {
            0 => None,
            _ => Some(Signal::from_named_raw(i32::from(signo)).ok_or(Refusal::Signal(signo))?),
        };
        let result = if group {
            match signal {
                Some(signal) => rustix::process::kill_process_group(self.pid, signal),
                None => rustix::process::test_kill_process_group(self.pid),
            }
        } else {
            let state = self.lock();
            if state.reaped {
                return Ok(());
            }
            let result = match signal {
                Some(signal) => rustix::process::kill_process(self.pid, signal),
                None => rustix::process::test_kill_process(self.pid),
            };
            drop(state);
            result
        };
        match result {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(errno) => Err(Refusal::Kill(self.id, errno)),
        }
    }

    /// RESIZE: the PTY's new size (the kernel sends SIGWINCH to its foreground group).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Refusal> {
        let master = self.master.as_ref().ok_or(Refusal::NoPty(self.id))?;
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(master, size).map_err(|errno| Refusal::Resize(self.id, errno))
    }

    /// Reaps the process (a zombie by now), under the lock that [`Job::signal`] takes.
    pub fn reap(&self, child: &mut Child) -> Exit {
        let mut state = self.lock();
        let status = child.wait();
        state.reaped = true;
        drop(state);
        match status {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(code), _) => Exit::Code(code),
                    (None, Some(signo)) => Exit::Signal(signo),
                    (None, None) => Exit::Code(-1),
                }
            }
            Err(_) => Exit::Code(-1),
        }
    }

    /// Sends EXITED (after STARTED); frees the id if the output has ended too.
    pub fn exited(&self, exit: Exit, session: &Session) {
        let mut state = self.lock();
        while !state.started && !state.aborted {
            state = self.wait(state);
        }
        if state.aborted {
            return;
        }
        state.exited = true;
        if state.open_outputs == 0 {
            self.finish(session);
        }
        session.out.send(self.id, &FromHelper::Exited(exit));
    }

    /// One output descriptor reached end of file; the last sends OUTPUT_END and frees the id
    /// if EXITED was sent.
    pub fn output_closed(&self, session: &Session) {
        let mut state = self.lock();
        while !state.started && !state.aborted {
            state = self.wait(state);
        }
        state.open_outputs = state.open_outputs.saturating_sub(1);
        if state.aborted || state.open_outputs > 0 {
            return;
        }
        if state.exited {
            self.finish(session);
        }
        session.out.send(self.id, &FromHelper::OutputEnd);
    }

    /// Both EXITED and OUTPUT_END: the id is free; stdin closes (nobody can write it now).
    fn finish(&self, session: &Session) {
        session.forget(self.id);
        self.close_stdin_queue();
    }
}
