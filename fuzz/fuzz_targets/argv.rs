//! The reference-style command line split (where `dcx exec`'s options end and the command
//! begins), on any words: no panic, and no word invented (a leading `--` may be dropped). The
//! whole parse (clap's) is covered by the tests; its definitions are costly to build, and the
//! split is where the rule lives.
#![no_main]

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
});
