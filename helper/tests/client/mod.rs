//! The test client both test files drive the built helper with: a started helper, its frames
//! read on a thread, and the frames no test took yet kept for later.

// Each test file uses part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use dcx_helper::{Frame, FromHelper, PROTOCOL, ToHelper};

/// How long a test waits for a frame it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// The helper under test: this build's, or `DCX_HELPER_BIN` (the static one, say).
pub fn program() -> OsString {
    std::env::var_os("DCX_HELPER_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_dcx-helper").into())
}

/// A running helper and the frames it sent that no test took yet.
pub struct Helper {
    pub process: Child,
    pub input: Option<ChildStdin>,
    frames: Receiver<(u32, FromHelper)>,
    stash: VecDeque<(u32, FromHelper)>,
    pub pid: u32,
    next_id: u32,
}

impl Helper {
    /// Starts `command` (the helper, or a wrapper that execs it) with piped stdio and takes its
    /// HELLO.
    pub fn spawn(mut command: Command) -> Self {
        let mut process = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut output = process.stdout.take().unwrap();
        let (sender, frames) = mpsc::channel();
        thread::spawn(move || {
            while let Ok(Some(frame)) = Frame::read_from(&mut output) {
                let id = frame.id;
                let message = FromHelper::from_frame(frame).unwrap();
                if sender.send((id, message)).is_err() {
                    break;
                }
            }
        });
        let mut helper = Self {
            input: process.stdin.take(),
            pid: process.id(),
            process,
            frames,
            stash: VecDeque::new(),
            next_id: 1,
        };
        let (id, hello) = helper.next_any(WAIT).expect("HELLO");
        assert_eq!(id, 0);
        assert_eq!(
            hello,
            FromHelper::Hello {
                protocol: PROTOCOL,
                pid: helper.pid,
                version: env!("CARGO_PKG_VERSION").into()
            }
        );
        helper
    }

    /// A fresh id.
    pub fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    pub fn send(&mut self, id: u32, message: &ToHelper) {
        self.send_raw(&message.encode(id));
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().unwrap();
        input.write_all(bytes).unwrap();
        input.flush().unwrap();
    }

    /// Closes the helper's stdin: the end of its stream.
    pub fn close(&mut self) {
        self.input = None;
    }

    pub fn next_any(&mut self, within: Duration) -> Option<(u32, FromHelper)> {
        if let Some(frame) = self.stash.pop_front() {
            return Some(frame);
        }
        self.frames.recv_timeout(within).ok()
    }

    /// The next frame about `id` (others are kept for later), or `None` after `within`.
    pub fn next_for(&mut self, id: u32, within: Duration) -> Option<FromHelper> {
        if let Some(at) = self.stash.iter().position(|(i, _)| *i == id) {
            return self.stash.remove(at).map(|(_, m)| m);
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok((i, message)) if i == id => return Some(message),
                Ok(other) => self.stash.push_back(other),
                Err(_) => return None,
            }
        }
    }

    pub fn expect(&mut self, id: u32) -> FromHelper {
        self.next_for(id, WAIT)
            .unwrap_or_else(|| panic!("no frame for id {id} within {WAIT:?}"))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.input = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
