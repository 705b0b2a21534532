//! Where the options end and the command begins, compared with the reference CLI.

use crate::harness::{DEBIAN, TestContainer};

fn same_output(words: &[&str], expected_stdout: &str) {
    let c = TestContainer::start(DEBIAN);
    let reference = c.reference(words.iter().copied()).run();
    c.dcx(words.iter().copied())
        .run()
        .code(0)
        .stdout(expected_stdout)
        .same_as(&reference);
}

#[test]
fn options_after_the_command_belong_to_it() {
    same_output(
        &["echo", "hi", "--container-id", "x", "--log-level", "debug"],
        "hi --container-id x --log-level debug\n",
    );
}

#[test]
fn a_leading_double_dash_is_dropped_and_a_later_one_kept() {
    same_output(&["--", "echo", "hi"], "hi\n");
    same_output(&["echo", "--", "hi"], "-- hi\n");
}

#[test]
fn help_and_version_after_the_command_go_to_the_command() {
    same_output(&["printf", "%s\\n", "--help"], "--help\n");
    same_output(&["printf", "%s\\n", "--version"], "--version\n");
}

#[test]
fn a_link_named_devcontainer_takes_the_reference_command_line() {
    let c = TestContainer::start(DEBIAN);
    let dir = std::env::temp_dir().join(format!("dcx-link-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("devcontainer");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(crate::harness::dcx_path(), &link).unwrap();
    crate::harness::Cmd::program(link.to_str().unwrap())
        .args([
            "exec",
            "--container-id",
            &c.id,
            "echo",
            "via",
            "devcontainer",
        ])
        .run()
        .code(0)
        .stdout("via devcontainer\n");
    let _ = std::fs::remove_dir_all(&dir);
}
