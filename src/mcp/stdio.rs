//! The stdio transport of `dcx mcp`: the SDK's line transport behind a thin filter that answers
//! a line that is not JSON with JSON-RPC's parse error.
//!
//! The SDK drops such a line without a word (it cannot tell which request it was); JSON-RPC 2.0
//! asks for `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,…}}`, so a client that sent a
//! broken line learns it instead of waiting for an answer that never comes. Lines that parse go
//! to the SDK unchanged (it answers JSON of the wrong shape itself); a line longer than the SDK
//! takes is answered the same way and skipped. One writer owns stdout, so a parse error never
//! lands inside another message.

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The longest line passed on (the SDK's own limit).
const MAX_LINE: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
/// Room in each direction between the filter and the SDK.
const PIPE: usize = 256 * 1024;

/// The SDK's ends (what it reads, where it writes) over `input` and `output`, and the task that
/// writes to `output` (it ends once the SDK's side is closed and all is written).
pub fn filtered<R, W>(input: R, output: W) -> ((DuplexStream, DuplexStream), JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (mut to_sdk, sdk_reads) = tokio::io::duplex(PIPE);
    let (sdk_writes, from_sdk) = tokio::io::duplex(PIPE);
    let (errors, mut errors_rx) = mpsc::channel::<Vec<u8>>(16);
    // Client → SDK, answering what does not parse.
    tokio::spawn(async move {
        let mut input = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            let mut limited = tokio::io::AsyncReadExt::take(&mut input, MAX_LINE as u64 + 1);
            match limited.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
                skip_line(&mut input).await;
                let _ = errors
                    .send(parse_error(&format!(
                        "Parse error: the message is longer than {} MiB",
                        MAX_LINE >> 20
                    )))
                    .await;
                continue;
            }
            let text = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace)
                || serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
            {
                if to_sdk.write_all(&line).await.is_err() {
                    break;
                }
                continue;
            }
            let _ = errors
                .send(parse_error("Parse error: the line is not JSON"))
                .await;
        }
        let _ = to_sdk.shutdown().await;
    });
    // SDK → client, whole lines, parse errors between them; ends with the SDK's side.
    let writer = tokio::spawn(async move {
        let mut output = output;
        let mut from_sdk = BufReader::new(from_sdk);
        let mut line = Vec::new();
        let mut errors_open = true;
        loop {
            // `read_until` keeps what it read in `line` if the other branch wins.
            let next = tokio::select! {
                read = from_sdk.read_until(b'\n', &mut line) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => std::mem::take(&mut line),
                },
                error = errors_rx.recv(), if errors_open => match error {
                    Some(error) => error,
                    None => {
                        errors_open = false;
                        continue;
                    }
                },
            };
            if output.write_all(&next).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    ((sdk_reads, sdk_writes), writer)
}

/// Reads past the end of the current line without keeping it.
async fn skip_line<R: AsyncRead + Unpin>(input: &mut BufReader<R>) {
    loop {
        let Ok(buf) = input.fill_buf().await else {
            return;
        };
        if buf.is_empty() {
            return;
        }
        match buf.iter().position(|byte| *byte == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return;
            }
            None => {
                let all = buf.len();
                input.consume(all);
            }
        }
    }
}

fn parse_error(message: &str) -> Vec<u8> {
    let mut line =
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": message}})
            .to_string()
            .into_bytes();
    line.push(b'\n');
    line
}
