//! Builds the in-container helper (`helper/`, the `dcx-helper` crate) statically for each
//! architecture whose Rust target is installed, and writes the list `src/runtime/helper/binary.rs`
//! includes. x86_64: musl when its target is installed, else the glibc target with
//! `+crt-static` (Debian's libc.a; no download); aarch64: musl linked by rust-lld, when its
//! target is installed. A helper that cannot be built is left out with a warning: dcx then runs
//! those containers' commands by plain engine exec. `DCX_HELPER_BUILD=0` builds none.
//!
//! It also sets `DCX_VERSION`, what `dcx --version` prints: the package version, followed by
//! the commit and its date when built from a git checkout (`0.1.0 (1a2b3c4 2026-12-06)`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (architecture, Rust target, extra rustflags), in order of preference per architecture.
const TARGETS: &[(&str, &str, &str)] = &[
    (
        "x86_64",
        "x86_64-unknown-linux-musl",
        "-Ctarget-feature=+crt-static",
    ),
    (
        "x86_64",
        "x86_64-unknown-linux-gnu",
        "-Ctarget-feature=+crt-static",
    ),
    (
        "aarch64",
        "aarch64-unknown-linux-musl",
        "-Ctarget-feature=+crt-static\u{1f}-Clinker=rust-lld\u{1f}-Clinker-flavor=ld.lld",
    ),
];

fn installed(target: &str) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

fn build(root: &Path, target_dir: &Path, target: &str, flags: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--offline", "--quiet", "-p", "dcx-helper"])
        .args(["--profile", "helper", "--target", target])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", flags);
    // What the outer build set for itself (clippy's wrapper, sanitizer flags, its jobserver)
    // must not reach the helper's build.
    for name in [
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(name);
    }
    let status = command.status().map_err(|err| err.to_string())?;
    if !status.success() {
        return Err(format!("cargo build for {target} failed ({status})"));
    }
    let binary = target_dir.join(target).join("helper").join("dcx-helper");
    match binary.is_file() {
        true => Ok(binary),
        false => Err(format!("{} was not made", binary.display())),
    }
}

/// `git` in the crate's folder, its trimmed stdout when it succeeds.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The version `dcx --version` prints, and a rebuild when the checked-out commit changes.
fn version(root: &Path) {
    let package = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = git(root, &["rev-parse", "--short=7", "HEAD"]);
    let date = git(root, &["log", "-1", "--format=%cs", "HEAD"]);
    let version = match (commit, date) {
        (Some(commit), Some(date)) => format!("{package} ({commit} {date})"),
        (Some(commit), None) => format!("{package} ({commit})"),
        _ => package,
    };
    println!("cargo::rustc-env=DCX_VERSION={version}");
    // HEAD moves when a branch is checked out; the branch's ref when a commit is made on it
    // (a loose ref, else the packed ones).
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(root, &["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        // (A path that does not exist would make cargo rerun this on every build.)
        let path = git(
            root,
            &["rev-parse", "--path-format=absolute", "--git-path", &name],
        );
        if let Some(path) = path.filter(|path| Path::new(path).exists()) {
            println!("cargo::rerun-if-changed={path}");
        }
    }
}

fn main() {
    println!("cargo::rerun-if-changed=helper/src");
    println!("cargo::rerun-if-changed=helper/Cargo.toml");
    println!("cargo::rerun-if-env-changed=DCX_HELPER_BUILD");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    version(&root);
    let target_dir = root.join("target").join("helper");
    let mut carried: Vec<(String, PathBuf)> = Vec::new();
    if std::env::var("DCX_HELPER_BUILD").as_deref() != Ok("0") {
        for (arch, target, flags) in TARGETS {
            if carried.iter().any(|(done, _)| done == arch) || !installed(target) {
                continue;
            }
            match build(&root, &target_dir, target, flags) {
                Ok(binary) => carried.push(((*arch).to_owned(), binary)),
                Err(reason) => println!("cargo::warning=no {arch} helper: {reason}"),
            }
        }
    }
    let mut list = String::from(
        "/// The helper binaries built with this dcx: (architecture, bytes).\npub static HELPERS: &[(&str, &[u8])] = &[\n",
    );
    for (arch, binary) in &carried {
        list.push_str(&format!(
            "    ({arch:?}, include_bytes!({:?})),\n",
            binary.display().to_string()
        ));
    }
    list.push_str("];\n");
    if let Err(err) = std::fs::write(out.join("helpers.rs"), list) {
        println!("cargo::warning=cannot write the helper list: {err}");
    }
}
