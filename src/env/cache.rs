//! A host-side cache of `userEnvProbe` results, so repeated execs skip the probe.
//!
//! The probe (a login shell's start, by default) can take seconds. An entry is valid for one
//! [`CacheKey`]: the engine endpoint, the container id and its start time (a restart invalidates
//! it), the user, the probe mode and the image's `SHELL`; it holds the env with the home folder and
//! probe shell found on the way, and the fingerprint of the shell's startup files. Its file name is
//! the SHA-256 of the key; the file repeats the whole key, which is compared on load, so a
//! collision or a stale file reads as a miss. Files are private to the user (0600 in a 0700
//! directory) because environments hold secrets, and are written to a temporary file and renamed
//! into place so a reader never sees half a file. Nothing here fails an exec: every problem is a
//! miss (or a skipped store) with a reason for the debug log, and a cache another user could have
//! written is not used, with a warning.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format version stored in each file; bump it when the layout changes.
const FORMAT: u32 = 3;

/// What a cached probe result is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// The engine endpoint (for example `unix:///var/run/docker.sock`).
    pub endpoint: String,
    /// The full container id.
    pub container_id: String,
    /// When the container was last started ([`crate::runtime::Container::started_at`]).
    pub started_at: String,
    /// The whole user string the probe ran as.
    pub user: String,
    /// The probe mode's name.
    pub mode: String,
    /// The image's `SHELL` (empty without one): the probe's shell when set; the passwd shell is
    /// found by the lookup the cache saves, and stored with the entry.
    pub shell: String,
}

impl CacheKey {
    /// The cache file name: the SHA-256 of the key's fields, in hex, with `.json`.
    pub fn file_name(&self) -> String {
        let mut hasher = Sha256::new();
        for field in [
            &self.endpoint,
            &self.container_id,
            &self.started_at,
            &self.user,
            &self.mode,
            &self.shell,
        ] {
            // Length-prefixed, so that moving text between fields changes the hash.
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{hex}.json")
    }
}

/// Why a load found no usable entry (a missing file is `Ok(None)`, not one of these). The text is
/// for the debug log.
#[derive(Debug, thiserror::Error)]
pub enum CacheMiss {
    #[error("cannot read probe cache {path}: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("ignoring corrupt probe cache {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("ignoring probe cache {path}: it belongs to another key")]
    KeyMismatch { path: PathBuf },
    /// A folder or file another user could have put there or changed: never used.
    #[error("not using the probe cache {path}: {reason}")]
    Untrusted { path: PathBuf, reason: String },
}

impl CacheMiss {
    /// A miss the user should hear about (someone else's or an open cache), not a plain one.
    pub fn is_untrusted(&self) -> bool {
        matches!(self, Self::Untrusted { .. })
    }
}

/// Whether `path` (a cache folder or file) may be trusted: this user's own, not a symlink, and
/// writable by nobody else.
fn trusted(path: &Path) -> Result<(), CacheMiss> {
    use std::os::unix::fs::MetadataExt;
    let untrusted = |reason: String| CacheMiss::Untrusted {
        path: path.to_path_buf(),
        reason,
    };
    let meta = fs::symlink_metadata(path).map_err(|source| CacheMiss::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(untrusted("it is a symlink".to_owned()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(untrusted(format!(
            "it belongs to uid {}, not to this user ({me})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(format!(
            "its mode {:04o} lets other users write to it",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Why a store did not happen. The text is for the debug log, but for a cache folder that
/// cannot be trusted, which the user hears about.
#[derive(Debug, thiserror::Error)]
pub enum CacheWriteError {
    #[error("cannot write probe cache {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Untrusted(CacheMiss),
}

impl CacheWriteError {
    pub fn is_untrusted(&self) -> bool {
        matches!(self, Self::Untrusted(_))
    }
}

/// What is cached for a key: the probed env and the user facts found on the way (home folder
/// and probe shell, from the passwd lookup), so that a warm exec needs no helper process at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedProbe {
    pub home: String,
    pub shell: String,
    pub env: Vec<(String, String)>,
    /// The fingerprint of the shell's startup files taken before the probe
    /// ([`super::startup`]): the entry holds only while it does.
    #[serde(default)]
    pub startup: String,
    /// The entries of the watched folders found then ([`super::startup::entries_seen`]).
    #[serde(default)]
    pub startup_entries: Vec<String>,
}

/// The file layout.
#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: CacheKey,
    probe: CachedProbe,
}

/// A directory of cached probe results. dcx makes (0700) only the directory itself and, in the
/// default layout, its `dcx` parent, never what lies above; it uses folders and files only
/// when they are this user's, not symlinks, and writable by nobody else.
#[derive(Debug, Clone)]
pub struct ProbeCache {
    dir: PathBuf,
}

impl ProbeCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folders dcx owns: the cache directory, and its parent in the default layout
    /// (`…/dcx/probe`).
    fn own_dirs(&self) -> Vec<&Path> {
        let mut dirs = vec![self.dir.as_path()];
        if let Some(parent) = self
            .dir
            .parent()
            .filter(|parent| parent.file_name().is_some_and(|name| name == "dcx"))
        {
            dirs.insert(0, parent);
        }
        dirs
    }

    /// The cache directory: `$XDG_CACHE_HOME/dcx/probe`, else `$HOME/.cache/dcx/probe`; `None`
    /// when neither variable gives an absolute path.
    pub fn default_dir() -> Option<PathBuf> {
        default_dir_from(
            std::env::var_os("XDG_CACHE_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached env for `key`: `Ok(None)` when there is none, `Err` when a file is there but
    /// unusable.
    pub fn load(&self, key: &CacheKey) -> Result<Option<CachedProbe>, CacheMiss> {
        let Some((path, bytes)) = self.read(&key.file_name())? else {
            return Ok(None);
        };
        let entry: Entry = match serde_json::from_slice(&bytes) {
            Ok(entry) => entry,
            Err(err) => {
                return Err(CacheMiss::Corrupt {
                    path,
                    reason: err.to_string(),
                });
            }
        };
        if entry.format != FORMAT {
            return Err(CacheMiss::Corrupt {
                path,
                reason: format!("format {} (expected {FORMAT})", entry.format),
            });
        }
        if entry.key != *key {
            return Err(CacheMiss::KeyMismatch { path });
        }
        Ok(Some(entry.probe))
    }

    /// The bytes of the cache file `name`, with its path: `Ok(None)` when there is none, `Err`
    /// when it is there but unusable (another user's, a symlink, unreadable).
    pub fn read(&self, name: &str) -> Result<Option<(PathBuf, Vec<u8>)>, CacheMiss> {
        let path = self.dir.join(name);
        match fs::symlink_metadata(&path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        for dir in self.own_dirs() {
            trusted(dir)?;
        }
        trusted(&path)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CacheMiss::Unreadable { path, source }),
        }
    }

    /// Stores `probe` for `key`, replacing any earlier entry atomically.
    pub fn store(&self, key: &CacheKey, probe: &CachedProbe) -> Result<(), CacheWriteError> {
        let entry = Entry {
            format: FORMAT,
            key: key.clone(),
            probe: probe.clone(),
        };
        let json = serde_json::to_vec(&entry).map_err(|err| CacheWriteError::Io {
            path: self.dir.join(key.file_name()),
            source: err.into(),
        })?;
        self.write(&key.file_name(), &json)
    }

    /// Writes the cache file `name` (private to this user), replacing any earlier one
    /// atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), CacheWriteError> {
        let path = self.dir.join(name);
        let failed = |source| CacheWriteError::Io {
            path: path.clone(),
            source,
        };
        // dcx's own folders are made, and the cache base above them as the XDG spec asks, but
        // only where that base's own parent exists (a HOME of /nonexistent makes nothing);
        // dcx's folders, when they exist, must be trustworthy.
        let own = self.own_dirs();
        if let Some(base) = own.first().and_then(|first| first.parent())
            && !base.exists()
            && base.parent().is_some_and(Path::is_dir)
        {
            let _ = fs::DirBuilder::new().mode(0o700).create(base);
        }
        for dir in own {
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(failed(source)),
            }
            trusted(dir).map_err(CacheWriteError::Untrusted)?;
        }
        let temp = self.dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            temp_suffix()
        ));
        let written = write_private(&temp, bytes).and_then(|()| fs::rename(&temp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(failed)
    }
}

fn default_dir_from(
    xdg_cache_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    // The XDG spec says a relative XDG_CACHE_HOME is to be ignored.
    absolute(xdg_cache_home)
        .map(Path::to_path_buf)
        .or_else(|| absolute(home).map(|h| h.join(".cache")))
        .map(|base| base.join("dcx").join("probe"))
}

fn absolute(var: Option<&std::ffi::OsStr>) -> Option<&Path> {
    var.map(Path::new).filter(|p| p.is_absolute())
}

/// Creates `path` (which must not exist) readable by the owner only, and writes `bytes` to it.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Distinguishes temporary files of concurrent writers within one process.
fn temp_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::fs::PermissionsExt;

    fn key() -> CacheKey {
        CacheKey {
            endpoint: "unix:///var/run/docker.sock".into(),
            container_id: "c0ffee".into(),
            started_at: "2025-11-16T10:00:00.000000000Z".into(),
            user: "vscode".into(),
            mode: "loginInteractiveShell".into(),
            shell: "/bin/bash".into(),
        }
    }

    fn env() -> CachedProbe {
        CachedProbe {
            home: "/home/vscode".into(),
            shell: "/bin/bash".into(),
            env: vec![
                ("PATH".into(), "/usr/local/bin:/usr/bin".into()),
                ("MULTI".into(), "a\nb=c\0d".into()),
                ("EMPTY".into(), String::new()),
            ],
            startup: "5e".repeat(32),
            startup_entries: vec!["/etc/profile.d/a.sh".into()],
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn open_or_linked_folders_and_files_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("dcx/probe");
        let cache = ProbeCache::new(&dir);
        cache.store(&key(), &env()).unwrap();
        assert_eq!(cache.load(&key()).unwrap(), Some(env()));
        // Writable by others: refused, and said to be.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let miss = cache.load(&key()).unwrap_err();
        assert!(miss.is_untrusted(), "{miss}");
        assert!(
            miss.to_string()
                .ends_with("its mode 0777 lets other users write to it"),
            "{miss}"
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let file = dir.join(key().file_name());
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cache.load(&key()).unwrap_err().is_untrusted());
        // Reached through a symlink.
        let elsewhere = base.path().join("elsewhere");
        fs::rename(&dir, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        let miss = cache.load(&key()).unwrap_err();
        assert!(miss.to_string().ends_with("it is a symlink"), "{miss}");
        assert!(cache.store(&key(), &env()).is_err());
    }

    #[test]
    fn nothing_is_made_above_the_cache_folders() {
        let base = tempfile::tempdir().unwrap();
        let missing_home = base.path().join("nonexistent");
        let cache = ProbeCache::new(missing_home.join(".cache/dcx/probe"));
        assert!(cache.store(&key(), &env()).is_err());
        assert!(!missing_home.exists());
    }

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProbeCache::new(tmp.path().join("dcx/probe"));
        assert!(cache.load(&key()).unwrap().is_none());
        cache.store(&key(), &env()).unwrap();
        assert_eq!(cache.load(&key()).unwrap().unwrap(), env());
        // A second store replaces the first.
        let empty = CachedProbe {
            env: vec![],
            ..env()
        };
        cache.store(&key(), &empty).unwrap();
        assert_eq!(cache.load(&key()).unwrap().unwrap(), empty);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 1);
    }

    #[test]
    fn permissions_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProbeCache::new(tmp.path().join("probe"));
        cache.store(&key(), &env()).unwrap();
        assert_eq!(mode_of(cache.dir()), 0o700);
        assert_eq!(mode_of(&cache.dir().join(key().file_name())), 0o600);
    }

    #[test]
    fn every_key_field_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProbeCache::new(tmp.path());
        cache.store(&key(), &env()).unwrap();
        let variants: [fn(&mut CacheKey); 6] = [
            |k| k.endpoint.push('x'),
            |k| k.container_id.push('x'),
            |k| k.started_at.push('x'),
            |k| k.user.push('x'),
            |k| k.mode.push('x'),
            |k| k.shell.push('x'),
        ];
        for change in variants {
            let mut other = key();
            change(&mut other);
            assert_ne!(other.file_name(), key().file_name());
            assert!(cache.load(&other).unwrap().is_none());
        }
    }

    #[test]
    fn fields_do_not_run_together() {
        let mut a = key();
        let mut b = key();
        a.user = "ab".into();
        a.mode = "c".into();
        b.user = "a".into();
        b.mode = "bc".into();
        assert_ne!(a.file_name(), b.file_name());
    }

    #[test]
    fn file_name_is_stable() {
        // The name must not change between dcx builds, or every upgrade empties the cache.
        insta::assert_snapshot!(
            key().file_name(),
            @"ddb24c327898f78ed26e67ecfc7388d8dba0d09a8a5735757ed45f1ec5691058.json"
        );
    }

    #[test]
    fn corrupt_file_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProbeCache::new(tmp.path());
        let path = tmp.path().join(key().file_name());
        fs::write(&path, b"{\"format\":1,\"key\"").unwrap();
        let miss = cache.load(&key()).unwrap_err();
        assert!(matches!(miss, CacheMiss::Corrupt { .. }), "{miss}");
        let text = miss
            .to_string()
            .replace(tmp.path().to_str().unwrap(), "[DIR]");
        insta::assert_snapshot!(
            text,
            @"ignoring corrupt probe cache [DIR]/ddb24c327898f78ed26e67ecfc7388d8dba0d09a8a5735757ed45f1ec5691058.json: EOF while parsing an object at line 1 column 17"
        );
        // The next store repairs it.
        cache.store(&key(), &env()).unwrap();
        assert_eq!(cache.load(&key()).unwrap().unwrap(), env());
    }

    #[test]
    fn other_format_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProbeCache::new(tmp.path());
        let entry = serde_json::json!({"format": 99, "key": key(), "probe": env()});
        fs::write(tmp.path().join(key().file_name()), entry.to_string()).unwrap();
        let miss = cache.load(&key()).unwrap_err();
        assert!(
            miss.to_string().ends_with(": format 99 (expected 3)"),
            "{miss}"
        );
    }

    #[test]
    fn stored_key_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProbeCache::new(tmp.path());
        let mut other = key();
        other.user = "root".into();
        cache.store(&other, &env()).unwrap();
        // Put the other key's file where this key's would be.
        fs::rename(
            tmp.path().join(other.file_name()),
            tmp.path().join(key().file_name()),
        )
        .unwrap();
        let miss = cache.load(&key()).unwrap_err();
        let text = miss
            .to_string()
            .replace(tmp.path().to_str().unwrap(), "[DIR]");
        insta::assert_snapshot!(
            text,
            @"ignoring probe cache [DIR]/ddb24c327898f78ed26e67ecfc7388d8dba0d09a8a5735757ed45f1ec5691058.json: it belongs to another key"
        );
    }

    #[test]
    fn unreadable_file_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ProbeCache::new(tmp.path());
        // A directory where the file should be cannot be read as one.
        fs::create_dir(tmp.path().join(key().file_name())).unwrap();
        assert!(matches!(
            cache.load(&key()).unwrap_err(),
            CacheMiss::Unreadable { .. }
        ));
        // And it cannot be replaced by a file: the store fails, with a reason.
        let err = cache.store(&key(), &env()).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot write probe cache "),
            "{err}"
        );
        assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 1);
    }

    #[test]
    fn default_dir_rules() {
        let dir = |xdg: Option<&str>, home: Option<&str>| {
            default_dir_from(xdg.map(OsStr::new), home.map(OsStr::new))
        };
        assert_eq!(
            dir(Some("/xdg"), Some("/home/me")),
            Some(PathBuf::from("/xdg/dcx/probe"))
        );
        assert_eq!(
            dir(None, Some("/home/me")),
            Some(PathBuf::from("/home/me/.cache/dcx/probe"))
        );
        assert_eq!(
            dir(Some(""), Some("/home/me")),
            Some(PathBuf::from("/home/me/.cache/dcx/probe"))
        );
        assert_eq!(
            dir(Some("relative"), Some("/home/me")),
            Some(PathBuf::from("/home/me/.cache/dcx/probe"))
        );
        assert_eq!(dir(None, None), None);
        assert_eq!(dir(None, Some("")), None);
    }
}
