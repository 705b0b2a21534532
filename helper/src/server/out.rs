//! The helper's stdout: whole frames, one `write_all` each, under one lock.
//!
//! Every thread sends through here, so frames never interleave, and each is one write (a short
//! result in one write: ssh channels are subject to Nagle). A failed write means dcx is gone;
//! it is ignored here, as the main loop then sees its stdin end and ends the helper.

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use dcx_helper::FromHelper;

/// The stream to dcx.
pub struct Out {
    stream: Mutex<File>,
}

impl Out {
    /// Frames go to `stream` (a duplicate of the helper's stdout, unbuffered).
    pub fn new(stream: File) -> Self {
        Self {
            stream: Mutex::new(stream),
        }
    }

    /// Writes one whole encoded frame.
    pub fn write_frame(&self, frame: &[u8]) {
        let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        // dcx gone: the main loop sees its stdin end and ends the helper.
        let _ = stream.write_all(frame);
    }

    /// Sends `message` about command `id` (0: the helper).
    pub fn send(&self, id: u32, message: &FromHelper) {
        self.write_frame(&message.encode(id));
    }

    /// Sends an ERROR frame about `id`.
    pub fn error(&self, id: u32, message: impl ToString) {
        self.send(id, &FromHelper::Error(message.to_string()));
    }
}
