//! A handed-over `crun exec` done by dcx itself: the process is started in the container's
//! namespaces, cgroups, user, capabilities and seccomp filter by a child of dcx, as crun
//! 1.8.1's `exec --process` would start it, without crun's two starts of its own binary.
//!
//! What crun 1.8.1 does for the `process.json` dcx writes (`command.rs`), and this module
//! repeats, in crun's order (its `libcrun_join_process` and `exec_process_entrypoint`):
//! * the process joins the container's cgroup (crun's `cgroup-path`, in each hierarchy; none
//!   when the container was made without one), then its cgroup, IPC, UTS, network and mount
//!   namespaces; it is born in its PID namespace (a thread of dcx's enters that namespace and
//!   forks it);
//! * every signal at its default action; a session of its own; the working directory entered
//!   as root; the program found on the process's `PATH` inside the container (crun's rules:
//!   executable, a regular file); `HOME` from the container's `/etc/passwd` when the env has
//!   none (crun's rule: unset for a uid it does not list, `/` without the file);
//! * descriptors above 2 closed at exec; crun's compiled seccomp filter (`seccomp.bpf` in its
//!   state directory, whatever made it, with the config's flags), before the user switch since
//!   the file asks no `noNewPrivileges`; no supplementary groups; stdio that is no terminal
//!   given to the user (crun's `fchown`); the bounding set, user, group, permitted, effective,
//!   inheritable and ambient capabilities from the container's config; umask 022; then a plain
//!   `execve`, whose failure is reported as crun's (`exec: <reason>`, exit code 1).
//!
//! Nothing of the host is reachable from the container through the child before it has
//! exec'd, and the host's dcx binary never runs in the container (CVE-2019-5736, which crun and
//! runc guard against by running from a sealed or read-only copy of themselves):
//! * dcx is undumpable while it forks, and the child again after its change of user, so its
//!   `/proc/PID/exe`, `environ`, `fd` and memory are closed to the container; a container whose
//!   bounding set holds `CAP_SYS_PTRACE` (which would open them anyway) is left to crun;
//! * dcx's command line (which may hold a `--remote-env` secret, and which `/proc/PID/cmdline`
//!   shows to anyone) is blanked while it forks, so the child has only zeros there;
//! * the namespaces are opened from the container's first process, checked afterwards to be
//!   that process still (not a later one given its pid);
//! * the child ends by starting the helper dcx carries, from a sealed memfd, in its `--exec`
//!   mode, which runs the program: a `#!/proc/self/exe` script reaches only that sealed copy.
//!
//! Whatever this does not do as crun would goes to crun (`Entry::plan` gives `None`): a user or
//! time namespace of the container's own, an AppArmor profile, an SELinux label, a personality,
//! crun's own extensions (`run.oci.*` annotations, a seccomp receiver), a seccomp listener or a
//! profile crun has not compiled, a paused container, a `/etc` that is mounted over (for
//! `HOME`), no helper for this architecture, dcx not root. A failure before the program starts
//! (a command not found, a working directory that cannot be entered) also goes to crun, which
//! then reports it in its own words and exit code.
//!
//! The only unsafe code of dcx's own is here: the child's steps after `fork`, which make raw
//! system calls on memory prepared before it (no allocation, no lock), and the blanking of the
//! command line.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

use rustix::fs::OFlags;

use super::command::ExecProcess;
use super::state::{CapabilitiesConfig, SeccompConfig};
use crate::runtime::Container;

/// Everything the child needs, prepared before the fork.
pub(super) struct Entry {
    /// The container's PID namespace, entered by the thread that forks.
    pid_ns: OwnedFd,
    child: Child,
}

/// The child's side, prepared before the fork (it only fills in the program's slot of the
/// helper's argv).
struct Child {
    /// `cgroup.procs` of the container's cgroup in each hierarchy (crun's `cgroup-path`).
    cgroups: Vec<OwnedFd>,
    /// Namespaces to enter, the mount namespace last.
    namespaces: Vec<OwnedFd>,
    cwd: CString,
    /// Where the program may be, in `PATH` order.
    candidates: Vec<CString>,
    uid: u32,
    gid: u32,
    caps: Capabilities,
    seccomp: Option<Seccomp>,
    /// The helper, sealed in a memfd.
    shim: OwnedFd,
    /// `dcx-helper --exec PATH ARGV...`: its `PATH` slot is filled in by the child.
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into the `CString`s of the same value, which move with it and
// are never changed; the value is used by one thread at a time (the parent builds it, then the
// forked child reads it).
unsafe impl Send for Child {}
unsafe impl Sync for Child {}

/// Capability sets as bit masks (bit N: capability N).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Capabilities {
    bounding: u64,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
    /// The highest capability this kernel knows.
    last: u32,
}

/// The container's compiled seccomp filter.
struct Seccomp {
    filter: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

/// The index of the program path in the helper's argv.
const PATH_SLOT: usize = 2;

impl Entry {
    /// What entering `container` to run `process` takes, or `None` when crun must do it.
    pub(super) fn plan(root: &Path, container: &Container, process: &ExecProcess) -> Option<Self> {
        if process.terminal || process.args.is_empty() || container.paused {
            return None;
        }
        if !rustix::process::geteuid().is_root() {
            return None;
        }
        let init = container.init_pid?;
        let dir = root.join(&container.id);
        let config = super::state::config(root, &container.id)?;
        let status = super::state::status(root, &container.id)?;
        if status.pid != init {
            return None;
        }
        // crun's own extensions (`run.oci.*`: kept groups, seccomp receivers, handlers…; the
        // wasm handlers' keys) change its exec in ways this does not repeat.
        if container
            .labels
            .keys()
            .any(|key| key.starts_with("run.oci.") || key.starts_with("module.wasm.image/"))
            || std::env::var_os("RUN_OCI_SECCOMP_RECEIVER").is_some()
        {
            return None;
        }
        if config.process.apparmor_profile.is_some()
            || config.process.selinux_label.is_some()
            || config.linux.personality.is_some()
            || config
                .linux
                .namespaces
                .iter()
                .any(|ns| ns.kind == "user" || ns.kind == "time")
        {
            return None;
        }
        for own in ["user", "time"] {
            if ns_id(&format!("/proc/{init}/ns/{own}"))? != ns_id(&format!("/proc/self/ns/{own}"))?
            {
                return None;
            }
        }
        let caps = Capabilities::of(&config.process.capabilities)?;
        if caps.bounding & (1 << CAP_SYS_PTRACE) != 0 {
            return None;
        }
        let seccomp = Seccomp::compiled(&dir, config.linux.seccomp.as_ref())?;
        let mut env = process.env.clone();
        if !env.iter().any(|entry| entry.starts_with("HOME=")) {
            let mounted = |path: &str| config.mounts.iter().any(|m| m.destination == path);
            if mounted("/etc") || mounted("/etc/passwd") {
                return None;
            }
            let passwd = super::command::read_in_root(container, "/etc/passwd");
            if let Some(home) = home_of(process.uid, passwd.as_deref()) {
                env.push(format!("HOME={home}"));
            }
        }
        let path = env
            .iter()
            .rev()
            .find_map(|entry| entry.strip_prefix("PATH="))
            .map(str::to_owned);
        let candidates = candidates(&process.args[0], &process.cwd, path.as_deref())?;
        let cgroups = match status.cgroup_path.as_deref() {
            None | Some("") => Vec::new(),
            Some(path) => cgroup_files(path)?,
        };
        let open = |name: &str| open_cloexec(&format!("/proc/{init}/ns/{name}"), OFlags::RDONLY);
        let mut namespaces = Vec::new();
        for name in ["cgroup", "ipc", "uts", "net", "mnt"] {
            namespaces.push(open(name)?);
        }
        let pid_ns = open("pid")?;
        // The same first process still (not a later one given its pid): the namespaces opened
        // are the container's.
        if !super::state::alive(init, container.init_start) || container.init_start.is_none() {
            return None;
        }
        let shim = sealed_helper()?;

        let cstring = |text: &str| CString::new(text).ok();
        let mut argv = vec![cstring("dcx-helper")?, cstring("--exec")?, cstring("")?];
        for arg in &process.args {
            argv.push(cstring(arg)?);
        }
        let envp = env
            .iter()
            .map(|entry| cstring(entry))
            .collect::<Option<Vec<_>>>()?;
        let mut child = Child {
            cgroups,
            namespaces,
            cwd: cstring(&process.cwd)?,
            candidates,
            uid: process.uid,
            gid: process.gid,
            caps,
            seccomp,
            shim,
            argv,
            argv_ptrs: Vec::new(),
            envp,
            envp_ptrs: Vec::new(),
        };
        child.argv_ptrs = pointers(&child.argv);
        child.envp_ptrs = pointers(&child.envp);
        Some(Self { pid_ns, child })
    }

    /// Starts the process with dcx's stdio: forked by a thread that has entered the container's
    /// PID namespace, with dcx undumpable meanwhile. Must be called inside the Tokio runtime
    /// (the child is reaped by it).
    pub(super) fn spawn(self) -> std::io::Result<tokio::process::Child> {
        let runtime = tokio::runtime::Handle::current();
        let Self { pid_ns, child } = self;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let _entered = runtime.enter();
                    rustix::thread::move_into_link_name_space(
                        pid_ns.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::ProcessID),
                    )?;
                    let mut command = std::process::Command::new("dcx-direct-exec");
                    let mut child = child;
                    // SAFETY: `enter` makes only raw system calls on memory prepared before the
                    // fork and owned by the closure; it allocates nothing and takes no lock.
                    unsafe {
                        command.pre_exec(move || child.enter());
                    }
                    let _undumpable = Undumpable::new();
                    let _hidden = HiddenArgv::new();
                    tokio::process::Command::from(command)
                        .kill_on_drop(false)
                        .spawn()
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the forking thread panicked")))
        })
    }
}

/// Signals the process group of a process started by [`Entry::spawn`] (it leads a session
/// of its own, so the group is its pid).
pub(super) fn signal_group(pid: u32, signal: i32) {
    let (Some(group), Some(signal)) = (
        rustix::process::Pid::from_raw(pid as i32),
        rustix::process::Signal::from_named_raw(signal),
    ) else {
        return;
    };
    let _ = rustix::process::kill_process_group(group, signal);
}

/// dcx undumpable while it exists: a process forked meanwhile starts undumpable, so nothing in
/// the container can open its `/proc/PID/exe` (the host's binary) before it has exec'd.
struct Undumpable(Option<rustix::process::DumpableBehavior>);

impl Undumpable {
    fn new() -> Self {
        use rustix::process::{DumpableBehavior, dumpable_behavior, set_dumpable_behavior};
        let before = dumpable_behavior().ok();
        let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
        Self(before)
    }
}

impl Drop for Undumpable {
    /// Back as it was.
    fn drop(&mut self) {
        if let Some(before) = self.0 {
            let _ = rustix::process::set_dumpable_behavior(before);
        }
    }
}

/// dcx's command line blanked while it exists: the child, born in the container's PID
/// namespace, shows it in its `/proc/PID/cmdline` (which needs no ptrace access) until it has
/// exec'd, and it may hold a secret (`--remote-env`). Forked meanwhile, the child has only
/// zeros there; dcx's own is put back after.
struct HiddenArgv {
    area: Option<(*mut u8, Vec<u8>)>,
}

impl HiddenArgv {
    fn new() -> Self {
        let area = argv_area().map(|(start, end)| {
            let len = end - start;
            // SAFETY: [start, end) is this process's argv area, as the kernel reports it
            // (`/proc/self/stat` fields 48 and 49): mapped, writable, and only read (by std's
            // `args`) while dcx parses its command line, long before this.
            unsafe {
                let bytes = std::slice::from_raw_parts_mut(start as *mut u8, len);
                let saved = bytes.to_vec();
                bytes.fill(0);
                (start as *mut u8, saved)
            }
        });
        Self { area }
    }
}

impl Drop for HiddenArgv {
    fn drop(&mut self) {
        if let Some((start, saved)) = &self.area {
            // SAFETY: the same area as in `new`, with the same length.
            unsafe { std::slice::from_raw_parts_mut(*start, saved.len()).copy_from_slice(saved) }
        }
    }
}

/// The start and end addresses of this process's argv area (`/proc/self/stat` fields 48, 49).
fn argv_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut fields = stat[stat.rfind(')')? + 2..].split_whitespace().skip(45);
    let start: usize = fields.next()?.parse().ok()?;
    let end: usize = fields.next()?.parse().ok()?;
    (start > 0 && end > start && end - start < 1 << 24).then_some((start, end))
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The last OS error, as std's pre-exec closures return it (no allocation).
fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// The last OS error's number.
fn errno() -> i32 {
    last_error().raw_os_error().unwrap_or_default()
}

/// `Err` with the last OS error when a raw call returned a negative value.
fn check(ret: libc::c_long) -> std::io::Result<()> {
    if ret < 0 { Err(last_error()) } else { Ok(()) }
}

impl Child {
    /// The child's steps, after `fork` and before the helper is exec'd, in crun's order.
    /// Returns only on failure (std then reports the error to the parent, which goes on to
    /// crun).
    fn enter(&mut self) -> std::io::Result<()> {
        // SAFETY (every block below): raw system calls with valid pointers into `self`, which
        // outlives them; none of them allocates or takes a lock.
        unsafe {
            // crun's `unblock_signals`: every signal back to its default action (glibc's
            // `sigaction` refuses its own two, 32 and 33, as crun's does); the mask is std's.
            let default: libc::sigaction = std::mem::zeroed();
            for signal in 1..libc::SIGRTMAX() + 1 {
                if libc::sigaction(signal, &default, std::ptr::null_mut()) < 0
                    && errno() != libc::EINVAL
                {
                    return Err(last_error());
                }
            }
            check(libc::c_long::from(libc::setsid()))?;
            for file in &self.cgroups {
                check(libc::write(file.as_raw_fd(), b"0".as_ptr().cast(), 1) as libc::c_long)?;
            }
            for ns in &self.namespaces {
                check(libc::c_long::from(libc::setns(ns.as_raw_fd(), 0)))?;
            }
            let entered = libc::chdir(self.cwd.as_ptr()) == 0;
            // crun marks every descriptor above stdio close-on-exec.
            check(libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ))?;
            // crun's `find_executable`: the first candidate that is executable and a file.
            let found = self.candidates.iter().find(|candidate| {
                let mut stat: libc::stat = std::mem::zeroed();
                libc::faccessat(
                    libc::AT_FDCWD,
                    candidate.as_ptr(),
                    libc::X_OK,
                    libc::AT_EACCESS,
                ) == 0
                    && libc::stat(candidate.as_ptr(), &mut stat) == 0
                    && stat.st_mode & libc::S_IFMT == libc::S_IFREG
            });
            let Some(found) = found else {
                return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
            };
            self.argv_ptrs[PATH_SLOT] = found.as_ptr();
            // No `noNewPrivileges` in the process file: the filter goes on while still root.
            if let Some(seccomp) = &self.seccomp {
                let program = libc::sock_fprog {
                    len: seccomp.filter.len() as libc::c_ushort,
                    filter: seccomp.filter.as_ptr().cast_mut(),
                };
                check(libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    seccomp.flags,
                    &program as *const libc::sock_fprog,
                ))?;
            }
            check(libc::syscall(
                libc::SYS_setgroups,
                0,
                std::ptr::null::<libc::gid_t>(),
            ))?;
            for fd in 0..3 {
                if libc::isatty(fd) == 0
                    && libc::fchown(fd, self.uid, self.gid) < 0
                    && !matches!(errno(), libc::EINVAL | libc::EPERM | libc::EROFS)
                {
                    return Err(last_error());
                }
            }
            self.set_capabilities()?;
            // A change of user makes the process dumpable again where `fs.suid_dumpable` is 1:
            // not before the exec.
            check(libc::c_long::from(libc::prctl(
                libc::PR_SET_DUMPABLE,
                0,
                0,
                0,
                0,
            )))?;
            if !entered {
                check(libc::c_long::from(libc::chdir(self.cwd.as_ptr())))?;
            }
            libc::umask(0o022);
            libc::syscall(
                libc::SYS_execveat,
                self.shim.as_raw_fd(),
                c"".as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        Err(last_error())
    }

    /// crun's `set_required_caps`: the bounding set, then the user with the permitted set kept,
    /// then the three sets and the ambient one.
    unsafe fn set_capabilities(&self) -> std::io::Result<()> {
        let caps = self.caps;
        // SAFETY: raw system calls with valid pointers to locals.
        unsafe {
            for cap in 0..=caps.last {
                if caps.bounding & (1 << cap) == 0
                    && libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) < 0
                    && errno() != libc::EINVAL
                {
                    return Err(last_error());
                }
            }
            check(libc::c_long::from(libc::prctl(
                libc::PR_SET_KEEPCAPS,
                1,
                0,
                0,
                0,
            )))?;
            check(libc::syscall(
                libc::SYS_setresgid,
                self.gid,
                self.gid,
                self.gid,
            ))?;
            check(libc::syscall(
                libc::SYS_setresuid,
                self.uid,
                self.uid,
                self.uid,
            ))?;
            let header = CapHeader {
                version: LINUX_CAPABILITY_VERSION_3,
                pid: 0,
            };
            let half = |set: u64, high: bool| (if high { set >> 32 } else { set }) as u32;
            let data = [false, true].map(|high| CapData {
                effective: half(caps.effective, high),
                permitted: half(caps.permitted, high),
                inheritable: half(caps.inheritable, high),
            });
            check(libc::syscall(
                libc::SYS_capset,
                &header as *const CapHeader,
                data.as_ptr(),
            ))?;
            let ambient = |op: libc::c_int, cap: libc::c_ulong| {
                let ret = libc::prctl(libc::PR_CAP_AMBIENT, op, cap, 0, 0);
                if ret < 0 && !matches!(errno(), libc::EINVAL | libc::EPERM) {
                    Err(last_error())
                } else {
                    Ok(())
                }
            };
            ambient(libc::PR_CAP_AMBIENT_CLEAR_ALL, 0)?;
            for cap in 0..=caps.last {
                if caps.ambient & (1 << cap) != 0 {
                    ambient(libc::PR_CAP_AMBIENT_RAISE, libc::c_ulong::from(cap))?;
                }
            }
        }
        Ok(())
    }
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_SYS_PTRACE: u32 = 19;

/// Capability names as the OCI config spells them, by number.
const CAPABILITY_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

impl Capabilities {
    /// The config's sets; `None` for a name this does not know (crun warns and skips it: crun
    /// then says so).
    fn of(config: &Option<CapabilitiesConfig>) -> Option<Self> {
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let Some(config) = config else {
            return Some(Self {
                last,
                ..Self::default()
            });
        };
        let mask = |names: &[String]| -> Option<u64> {
            names.iter().try_fold(0u64, |mask, name| {
                let cap = CAPABILITY_NAMES.iter().position(|known| known == name)?;
                Some(mask | 1 << cap)
            })
        };
        Some(Self {
            bounding: mask(&config.bounding)?,
            effective: mask(&config.effective)?,
            permitted: mask(&config.permitted)?,
            inheritable: mask(&config.inheritable)?,
            ambient: mask(&config.ambient)?,
            last,
        })
    }
}

impl Seccomp {
    /// The filter crun applies to every exec (its `libcrun_open_seccomp_bpf`): the compiled
    /// `seccomp.bpf` of the state directory, whatever made it (the config's profile, an
    /// annotation), with the config's flags (crun's default: `SECCOMP_FILTER_FLAG_SPEC_ALLOW`).
    /// `Some(None)`: no filter; `None`: crun must do this exec (a profile crun has not compiled,
    /// a listener, a flag this does not know, a file it cannot read).
    #[allow(clippy::option_option)]
    fn compiled(dir: &Path, profile: Option<&SeccompConfig>) -> Option<Option<Self>> {
        let bytes = match std::fs::read(dir.join("seccomp.bpf")) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && profile.is_none() => {
                return Some(None);
            }
            Err(_) => return None,
        };
        if profile.is_some_and(|profile| profile.listener_path.is_some()) {
            return None;
        }
        let flags = match profile.and_then(|profile| profile.flags.as_ref()) {
            None => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Some(names) => names.iter().try_fold(0, |flags, name| {
                Some(
                    flags
                        | match name.as_str() {
                            "SECCOMP_FILTER_FLAG_TSYNC" => libc::SECCOMP_FILTER_FLAG_TSYNC,
                            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => {
                                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                            }
                            "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG,
                            _ => return None,
                        },
                )
            })?,
        };
        if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > usize::from(u16::MAX) {
            return None;
        }
        let filter = bytes
            .chunks_exact(8)
            .map(|raw| libc::sock_filter {
                code: u16::from_ne_bytes([raw[0], raw[1]]),
                jt: raw[2],
                jf: raw[3],
                k: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
            })
            .collect();
        Some(Some(Self { filter, flags }))
    }
}

/// Where crun's `find_executable` looks for `program`: a path with a `/` (relative ones from
/// `cwd`) is taken as it is; a name is looked for in each `PATH` entry.
fn candidates(program: &str, cwd: &str, path: Option<&str>) -> Option<Vec<CString>> {
    let paths = if program.starts_with('.') || (!program.starts_with('/') && program.contains('/'))
    {
        let lead = if cwd.starts_with('/') { "" } else { "/" };
        vec![format!("{lead}{cwd}/{program}")]
    } else if program.starts_with('/') {
        vec![program.to_owned()]
    } else {
        // crun has no default `PATH`: without one, it is crun's to say what happens.
        path?
            .split(':')
            .map(|dir| format!("{dir}/{program}"))
            .collect()
    };
    paths
        .into_iter()
        .map(|path| CString::new(path).ok())
        .collect()
}

/// crun's `HOME` for `uid` (its `set_home_env`): the home folder of its line in the passwd file
/// (glibc's `fgetpwent` reading); `/` when there is no passwd file to read; none (the variable
/// stays unset) when the file has no line for `uid`.
fn home_of(uid: u32, passwd: Option<&[u8]>) -> Option<String> {
    let Some(passwd) = passwd else {
        return Some("/".to_owned());
    };
    String::from_utf8_lossy(passwd).lines().find_map(|line| {
        let fields: Vec<&str> = line.trim_start().splitn(7, ':').collect();
        (fields.len() == 7 && fields[2].parse() == Ok(uid)).then(|| fields[5].to_owned())
    })
}

/// The `cgroup.procs` file, opened for writing, of the container's cgroup `path` (crun's
/// `cgroup-path`) in each hierarchy dcx itself is in, as crun joins it (by the usual mount
/// points: `/sys/fs/cgroup` for cgroup v2, else `/sys/fs/cgroup/<controllers>` and
/// `/sys/fs/cgroup/unified`); `None` when one cannot be opened.
fn cgroup_files(path: &str) -> Option<Vec<OwnedFd>> {
    // The two types differ between architectures (`__fsword_t`, `c_long`).
    #[allow(clippy::unnecessary_cast)]
    let unified = rustix::fs::statfs("/sys/fs/cgroup")
        .is_ok_and(|fs| fs.f_type as i64 == libc::CGROUP2_SUPER_MAGIC as i64);
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    own.lines()
        .map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers) = (fields.next()?, fields.next()?);
            let mount = match (controllers, unified) {
                ("", true) => "/sys/fs/cgroup".to_owned(),
                ("", false) => "/sys/fs/cgroup/unified".to_owned(),
                (_, true) => return None,
                (named, false) => format!(
                    "/sys/fs/cgroup/{}",
                    named.strip_prefix("name=").unwrap_or(named)
                ),
            };
            open_cloexec(&format!("{mount}{path}/cgroup.procs"), OFlags::WRONLY)
        })
        .collect()
}

/// `path` opened close-on-exec with `flags`.
fn open_cloexec(path: &str, flags: OFlags) -> Option<OwnedFd> {
    rustix::fs::open(path, flags | OFlags::CLOEXEC, rustix::fs::Mode::empty()).ok()
}

/// A namespace's identity (`/proc/PID/ns/NAME`'s link text).
fn ns_id(path: &str) -> Option<std::ffi::OsString> {
    std::fs::read_link(path)
        .ok()
        .map(|link| link.into_os_string())
}

/// The helper dcx carries for this host, in a memfd sealed against any change.
fn sealed_helper() -> Option<OwnedFd> {
    let bytes = crate::runtime::helper::binary::for_arch(std::env::consts::ARCH)?;
    super::binary::sealed_memfd("dcx-helper", true, bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[CString]) -> Vec<&str> {
        list.iter().map(|s| s.to_str().unwrap()).collect()
    }

    #[test]
    fn the_program_is_looked_for_as_crun_looks() {
        let found = candidates("ls", "/w", Some("/usr/bin:/bin:")).unwrap();
        assert_eq!(strings(&found), ["/usr/bin/ls", "/bin/ls", "/ls"]);
        let found = candidates("./run", "/w", Some("/bin")).unwrap();
        assert_eq!(strings(&found), ["/w/./run"]);
        let found = candidates("sub/run", "w", Some("/bin")).unwrap();
        assert_eq!(strings(&found), ["/w/sub/run"]);
        let found = candidates("/bin/sh", "/w", None).unwrap();
        assert_eq!(strings(&found), ["/bin/sh"]);
        assert!(candidates("ls", "/w", None).is_none());
        assert!(candidates("l\0s", "/w", Some("/bin")).is_none());
    }

    #[test]
    fn the_command_line_is_blank_while_hidden_and_back_after() {
        let before = std::fs::read("/proc/self/cmdline").unwrap();
        assert!(before.iter().any(|b| *b != 0));
        let hidden = HiddenArgv::new();
        let during = std::fs::read("/proc/self/cmdline").unwrap();
        assert!(during.iter().all(|b| *b == 0), "{during:?}");
        drop(hidden);
        assert_eq!(std::fs::read("/proc/self/cmdline").unwrap(), before);
    }

    #[test]
    fn home_comes_from_passwd_as_crun_sets_it() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nvscode:x:1000:1000::/home/vscode:/bin/sh\n";
        assert_eq!(home_of(1000, Some(passwd)).as_deref(), Some("/home/vscode"));
        assert_eq!(home_of(0, Some(passwd)).as_deref(), Some("/root"));
        assert_eq!(home_of(4242, Some(passwd)), None);
        assert_eq!(home_of(0, Some(b"")), None);
        assert_eq!(home_of(0, None).as_deref(), Some("/"));
    }

    #[test]
    fn capability_sets_are_masks_and_unknown_names_go_to_crun() {
        let config = CapabilitiesConfig {
            bounding: vec![
                "CAP_CHOWN".into(),
                "CAP_KILL".into(),
                "CAP_AUDIT_WRITE".into(),
            ],
            effective: vec!["CAP_KILL".into()],
            ambient: vec!["CAP_CHECKPOINT_RESTORE".into()],
            ..CapabilitiesConfig::default()
        };
        let caps = Capabilities::of(&Some(config)).unwrap();
        assert_eq!(caps.bounding, 1 | 1 << 5 | 1 << 29);
        assert_eq!(caps.effective, 1 << 5);
        assert_eq!(caps.ambient, 1 << 40);
        assert_eq!(caps.permitted, 0);
        let unknown = CapabilitiesConfig {
            bounding: vec!["CAP_NOT_ONE".into()],
            ..CapabilitiesConfig::default()
        };
        assert_eq!(Capabilities::of(&Some(unknown)), None);
        assert_eq!(Capabilities::of(&None).unwrap().bounding, 0);
        assert_eq!(CAPABILITY_NAMES[CAP_SYS_PTRACE as usize], "CAP_SYS_PTRACE");
    }

    #[test]
    fn a_compiled_filter_is_read_with_the_config_s_flags() {
        let dir = tempfile::tempdir().unwrap();
        let profile = |flags: Option<Vec<&str>>| SeccompConfig {
            flags: flags.map(|list| list.into_iter().map(str::to_owned).collect()),
            listener_path: None,
        };
        // No profile, no file: no filter; a profile crun has not compiled: crun's.
        assert!(matches!(Seccomp::compiled(dir.path(), None), Some(None)));
        assert!(Seccomp::compiled(dir.path(), Some(&profile(None))).is_none());
        std::fs::write(
            dir.path().join("seccomp.bpf"),
            [6, 0, 0, 0, 0, 0, 0xff, 0x7f],
        )
        .unwrap();
        let filter = Seccomp::compiled(dir.path(), Some(&profile(None)))
            .unwrap()
            .unwrap();
        assert_eq!(filter.flags, libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
        assert_eq!(filter.filter.len(), 1);
        assert_eq!(
            (filter.filter[0].code, filter.filter[0].k),
            (6, 0x7fff_0000)
        );
        // A compiled filter with no profile in the config (an annotation made it) applies too.
        let annotated = Seccomp::compiled(dir.path(), None).unwrap().unwrap();
        assert_eq!(annotated.flags, libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
        let logged = Seccomp::compiled(
            dir.path(),
            Some(&profile(Some(vec!["SECCOMP_FILTER_FLAG_LOG"]))),
        );
        assert_eq!(
            logged.unwrap().unwrap().flags,
            libc::SECCOMP_FILTER_FLAG_LOG
        );
        assert!(Seccomp::compiled(dir.path(), Some(&profile(Some(vec!["NEW_ONE"])))).is_none());
        let listener = SeccompConfig {
            flags: None,
            listener_path: Some("/run/l.sock".into()),
        };
        assert!(Seccomp::compiled(dir.path(), Some(&listener)).is_none());
    }
}
