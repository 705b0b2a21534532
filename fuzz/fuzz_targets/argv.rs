//! The reference-style command line split (where `dcx exec`'s options end and the command
//! begins), on any words: no panic, and no word invented (a leading `--` may be dropped).
//! Inputs led by `\0` and a byte below 4 also go through the whole parse (clap's
//! definitions are costly to build; the split is where the rule lives).
#![no_main]

use std::ffi::OsString;
use std::sync::OnceLock;

use clap::CommandFactory;
use libfuzzer_sys::fuzz_target;

fn exec() -> &'static clap::Command {
    static EXEC: OnceLock<clap::Command> = OnceLock::new();
    EXEC.get_or_init(|| {
        let mut cli = dcx::cli::args::Cli::command();
        cli.build();
        cli.find_subcommand("exec").cloned().unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<String> = text.split('\0').map(str::to_owned).collect();
    let (options, command) = dcx::cli::args::split_exec_argv(exec(), &words);
    // A leading `--` is dropped; everything else is kept.
    let kept: Vec<&String> = options.iter().chain(command.iter()).collect();
    let given: Vec<&String> = words.iter().collect();
    assert!(kept.len() <= given.len());
    if data.len() > 1 && data[0] == 0 && data[1] < 4 {
        let mut argv: Vec<OsString> = vec!["dcx".into(), "exec".into()];
        argv.extend(words.iter().map(OsString::from));
        let _ = dcx::cli::args::parse(argv);
    }
});
