//! File calls in flight by id: their threads' start, FS_WRITE_DATA's way, their end.
//!
//! A file call takes an id as a command does, from its first frame until its thread sends the
//! last answer ([`Session::finish_call`]); RUN or another call under that id meanwhile is
//! refused. The main loop never waits for one: it starts the call's thread, and passes a
//! write's FS_WRITE_DATA and FS_WRITE_END on through the write's queue, counting its bytes
//! (over [`FS_WRITE_LIMIT`] the rest is dropped and the write fails, `EFBIG`). When the helper
//! ends, the queues close: every write removes its temporary file, and the helper waits a
//! little for that ([`Session::close_calls`]).

use std::collections::HashMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dcx_helper::{FS_WRITE_LIMIT, FromHelper};
use rustix::io::Errno;

use super::Session;
use super::files::failure;
use super::refusal::Refusal;
use super::threads;
use super::write::{self, Piece, WriteSpec};

/// How long the helper's end waits for writes to remove their temporary files.
const WRITES_GRACE: Duration = Duration::from_secs(2);

/// A file call between its first frame and its last answer.
pub enum Call {
    /// FS_STAT, FS_LIST or FS_READ: its thread answers; nothing more comes from dcx.
    Answering,
    /// FS_WRITE until FS_WRITE_END: its data goes to its thread.
    Writing(Feed),
    /// FS_WRITE that cannot be served (malformed, or its thread could not start): FS_WRITE_END
    /// is answered with this error.
    Unstarted(Errno),
    /// FS_WRITE_END was passed on: the thread answers.
    Ending,
}

/// A write's queue, and what went into it.
pub struct Feed {
    queue: Sender<Piece>,
    /// FS_WRITE_DATA bytes received.
    received: u64,
}

impl Session {
    /// Whether `id` is taken, by a command or a file call.
    pub(super) fn in_use(&self, id: u32) -> bool {
        self.job(id).is_some() || self.calls().contains_key(&id)
    }

    fn calls(&self) -> MutexGuard<'_, HashMap<u32, Call>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends call `id` with its last answer: the id is free once dcx has read it.
    pub fn finish_call(&self, id: u32, last: &FromHelper) {
        self.calls().remove(&id);
        self.out.send(id, last);
    }

    /// FS_STAT, FS_LIST or FS_READ: `body` answers on a thread of its own.
    pub(super) fn start_call<F>(
        self: &Arc<Self>,
        id: u32,
        name: &str,
        body: F,
    ) -> Result<(), Refusal>
    where
        F: FnOnce(&Session) + Send + 'static,
    {
        self.take_id(id, Call::Answering)?;
        let session = Arc::clone(self);
        if let Err(err) = threads::start(name, move || body(&session)) {
            self.finish_call(id, &failure(thread_errno(&err)));
        }
        Ok(())
    }

    /// FS_WRITE: its thread prepares the target and waits for the data.
    pub(super) fn start_write(self: &Arc<Self>, id: u32, spec: WriteSpec) -> Result<(), Refusal> {
        let (queue, pieces) = mpsc::channel();
        self.take_id(id, Call::Writing(Feed { queue, received: 0 }))?;
        let session = Arc::clone(self);
        match threads::spawn("fs-write", move || {
            write::write(&session, id, &spec, &pieces);
        }) {
            Ok(handle) => {
                let mut writers = self.writers.lock().unwrap_or_else(PoisonError::into_inner);
                writers.retain(|writer| !writer.is_finished());
                writers.push(handle);
            }
            Err(err) => self.refuse_write(id, thread_errno(&err)),
        }
        Ok(())
    }

    /// A write that fails with `errno` at FS_WRITE_END, its data dropped until then.
    pub(super) fn refuse_write(&self, id: u32, errno: Errno) {
        self.calls().insert(id, Call::Unstarted(errno));
    }

    /// Registers call `id`, unless the id is 0 or taken.
    fn take_id(&self, id: u32, call: Call) -> Result<(), Refusal> {
        if id == 0 {
            return Err(Refusal::IdZero);
        }
        if self.job(id).is_some() {
            return Err(Refusal::IdInUse(id));
        }
        let mut calls = self.calls();
        if calls.contains_key(&id) {
            return Err(Refusal::IdInUse(id));
        }
        calls.insert(id, call);
        Ok(())
    }

    /// FS_WRITE_DATA: to the write's thread, while the total stays within the limit.
    pub(super) fn write_data(&self, id: u32, bytes: Vec<u8>) -> Result<(), Refusal> {
        let mut calls = self.calls();
        match calls.get_mut(&id) {
            Some(Call::Writing(feed)) => {
                let within = feed.received <= FS_WRITE_LIMIT;
                feed.received = feed.received.saturating_add(bytes.len() as u64);
                // The thread is there until the queue closes or End: a failed send cannot be.
                if feed.received <= FS_WRITE_LIMIT {
                    let _ = feed.queue.send(Piece::Data(bytes));
                } else if within {
                    let _ = feed.queue.send(Piece::TooLarge);
                }
                Ok(())
            }
            Some(Call::Unstarted(_)) => Ok(()),
            Some(Call::Answering | Call::Ending) => Err(Refusal::NoWrite(id)),
            None => {
                drop(calls);
                Err(self.not_a_call(id))
            }
        }
    }

    /// FS_WRITE_END: the write's thread finishes and answers.
    pub(super) fn write_end(&self, id: u32) -> Result<(), Refusal> {
        let mut calls = self.calls();
        match calls.get_mut(&id) {
            Some(call @ Call::Writing(_)) => {
                if let Call::Writing(feed) = std::mem::replace(call, Call::Ending) {
                    let _ = feed.queue.send(Piece::End);
                }
                Ok(())
            }
            Some(Call::Unstarted(errno)) => {
                let errno = *errno;
                drop(calls);
                self.finish_call(id, &failure(errno));
                Ok(())
            }
            Some(Call::Answering | Call::Ending) => Err(Refusal::NoWrite(id)),
            None => {
                drop(calls);
                Err(self.not_a_call(id))
            }
        }
    }

    /// Why a frame of a write came under an id without one.
    fn not_a_call(&self, id: u32) -> Refusal {
        if self.job(id).is_some() {
            Refusal::NoWrite(id)
        } else {
            Refusal::UnknownId(id)
        }
    }

    /// The helper ends: every write's queue closes, so each removes its temporary file;
    /// [`Closed::wait`] then waits for that, at most [`WRITES_GRACE`] from now.
    pub(super) fn close_calls(&self) -> Closed {
        self.calls().clear();
        Closed {
            writers: std::mem::take(
                &mut *self.writers.lock().unwrap_or_else(PoisonError::into_inner),
            ),
            deadline: Instant::now() + WRITES_GRACE,
        }
    }
}

/// The writes' threads at the helper's end, removing their temporary files.
pub struct Closed {
    writers: Vec<JoinHandle<()>>,
    deadline: Instant,
}

impl Closed {
    /// Returns once every write's thread has ended, or at the deadline.
    pub fn wait(self) {
        while self.writers.iter().any(|writer| !writer.is_finished())
            && Instant::now() < self.deadline
        {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The errno of a thread that could not start (`EAGAIN` when it has none).
fn thread_errno(err: &std::io::Error) -> Errno {
    err.raw_os_error()
        .map_or(Errno::AGAIN, Errno::from_raw_os_error)
}
