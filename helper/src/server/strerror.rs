//! FS_ERR's message: `strerror`'s words for an errno, the same in every build.
//!
//! The helper is built against glibc and musl, whose texts differ for some errnos (musl's
//! `ELOOP` is "Symbolic link loop"); the errnos a file call commonly meets are worded here as
//! glibc words them. Any other is the C library's own text, else `error N`.

use std::io;

use rustix::io::Errno;

/// `strerror(errno)`'s words.
pub fn words(errno: Errno) -> String {
    let known = match errno {
        Errno::PERM => "Operation not permitted",
        Errno::NOENT => "No such file or directory",
        Errno::IO => "Input/output error",
        Errno::NXIO => "No such device or address",
        Errno::TOOBIG => "Argument list too long",
        Errno::AGAIN => "Resource temporarily unavailable",
        Errno::NOMEM => "Cannot allocate memory",
        Errno::ACCESS => "Permission denied",
        Errno::BUSY => "Device or resource busy",
        Errno::EXIST => "File exists",
        Errno::XDEV => "Invalid cross-device link",
        Errno::NOTDIR => "Not a directory",
        Errno::ISDIR => "Is a directory",
        Errno::INVAL => "Invalid argument",
        Errno::MFILE => "Too many open files",
        Errno::TXTBSY => "Text file busy",
        Errno::FBIG => "File too large",
        Errno::NOSPC => "No space left on device",
        Errno::ROFS => "Read-only file system",
        Errno::NAMETOOLONG => "File name too long",
        Errno::NOTEMPTY => "Directory not empty",
        Errno::LOOP => "Too many levels of symbolic links",
        Errno::STALE => "Stale file handle",
        Errno::DQUOT => "Disk quota exceeded",
        _ => return library_words(errno),
    };
    known.to_owned()
}

/// The C library's text, without std's ` (os error N)`.
fn library_words(errno: Errno) -> String {
    let raw = errno.raw_os_error();
    let text = io::Error::from_raw_os_error(raw).to_string();
    match text.strip_suffix(&format!(" (os error {raw})")) {
        // glibc's "Unknown error N", musl's "No error information": no words.
        Some(words)
            if !words.is_empty()
                && !words.starts_with("Unknown error")
                && words != "No error information" =>
        {
            words.to_owned()
        }
        _ => format!("error {raw}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_errnos_have_glibc_words_and_others_the_library_or_a_number() {
        assert_eq!(words(Errno::NOENT), "No such file or directory");
        assert_eq!(words(Errno::ACCESS), "Permission denied");
        assert_eq!(words(Errno::LOOP), "Too many levels of symbolic links");
        assert!(!words(Errno::PIPE).contains("os error"));
        assert_eq!(words(Errno::from_raw_os_error(4000)), "error 4000");
    }
}
