//! `exec.resize`: a PTY-mode exec's terminal size, for the program and its rendered screen.

use serde::{Deserialize, Serialize};

use crate::agent::params::Text;
use crate::agent::protocol::Failure;
use crate::agent::pty;
use crate::agent::service::Service;

/// `exec.resize`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeParams {
    pub exec_id: Text,
    pub rows: u64,
    pub cols: u64,
}

/// `exec.resize`'s answer.
#[derive(Debug, Serialize)]
pub struct Resized {
    pub exec_id: String,
    pub rows: u16,
    pub cols: u16,
}

/// Resizes the exec's terminal (the program gets SIGWINCH) and its screen.
pub async fn resize(service: &Service, params: ResizeParams) -> Result<Resized, Failure> {
    let exec = service.exec(&params.exec_id.0)?;
    let size = pty::size(Some(params.rows), Some(params.cols))?;
    if exec.ending().is_some() {
        return Err(Failure::bad(format!("exec {} has ended", exec.id)));
    }
    if !exec.resize(size) {
        return Err(Failure::bad(format!(
            "exec {} has no terminal (start it with `tty: true`)",
            exec.id
        )));
    }
    Ok(Resized {
        exec_id: exec.id.clone(),
        rows: size.rows,
        cols: size.cols,
    })
}
