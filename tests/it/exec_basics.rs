//! `dcx exec --container-id` against the reference CLI on the same container: output, exit
//! codes, stdin bytes, TTY-less runs (the reference's own exec test scenarios).

use crate::harness::{BUSYBOX, DEBIAN, TestContainer, dcx};

#[test]
fn echo_prints_exactly_hi() {
    let c = TestContainer::start(DEBIAN);
    let reference = c.reference(["echo", "hi"]).run();
    c.dcx(["echo", "hi"])
        .run()
        .code(0)
        .stdout("hi\n")
        .stderr("")
        .same_as(&reference);
}

#[test]
fn exit_code_is_the_process_code() {
    let c = TestContainer::start(DEBIAN);
    let reference = c.reference(["sh", "-c", "exit 123"]).run();
    c.dcx(["sh", "-c", "exit 123"])
        .run()
        .code(123)
        .same_as(&reference);
}

#[test]
fn killed_by_a_signal_gives_128_plus_its_number() {
    let c = TestContainer::start(DEBIAN);
    let reference = c.reference(["sh", "-c", "kill -TERM $$"]).run();
    c.dcx(["sh", "-c", "kill -TERM $$"])
        .run()
        .code(143)
        .same_as(&reference);
    c.dcx(["sh", "-c", "kill -KILL $$"]).run().code(137);
    c.dcx(["sh", "-c", "kill -INT $$"]).run().code(130);
}

#[test]
fn stdin_bytes_0_to_255_come_back_identical() {
    let c = TestContainer::start(DEBIAN);
    let bytes: Vec<u8> = (0..=255).collect();
    let reference = c.reference(["cat"]).stdin(bytes.clone()).run();
    c.dcx(["cat"])
        .stdin(bytes.clone())
        .run()
        .code(0)
        .stdout_bytes(&bytes)
        .same_as(&reference);
}

#[test]
fn no_tty_with_pipes() {
    let c = TestContainer::start(DEBIAN);
    let reference = c.reference(["[", "!", "-t", "1", "]"]).run();
    c.dcx(["[", "!", "-t", "1", "]"])
        .run()
        .code(0)
        .same_as(&reference);
    c.dcx(["[", "!", "-t", "0", "]"]).run().code(0);
}

#[test]
fn stdout_and_stderr_stay_separate() {
    let c = TestContainer::start(DEBIAN);
    let script = "printf out1; printf err1 >&2; printf 'out2\\n'; printf 'err2\\n' >&2";
    let reference = c.reference(["sh", "-c", script]).run();
    let ours = c
        .dcx(["sh", "-c", script])
        .run()
        .code(0)
        .stdout("out1out2\n")
        .stderr("err1err2\n")
        .same_as(&reference);
    assert_eq!(ours.stderr, reference.stderr);
}

#[test]
fn stdin_eof_reaches_the_process() {
    let c = TestContainer::start(DEBIAN);
    c.dcx(["sh", "-c", "cat; echo after-eof"])
        .stdin("line\n")
        .run()
        .code(0)
        .stdout("line\nafter-eof\n");
    c.dcx(["wc", "-c"])
        .stdin(Vec::new())
        .run()
        .code(0)
        .stdout("0\n");
}

#[test]
fn a_null_or_closed_stdin_never_hangs() {
    let c = TestContainer::start(DEBIAN);
    c.dcx(["cat"]).run().code(0).stdout("");
    c.dcx(["cat"]).stdin_closed().run().code(0).stdout("");
    c.dcx(["echo", "ok"])
        .stdin_closed()
        .run()
        .code(0)
        .stdout("ok\n");
}

#[test]
fn the_container_is_found_by_name_and_by_unique_id_prefix() {
    let c = TestContainer::start(BUSYBOX);
    dcx()
        .args(["exec", "--container-id", &c.name, "echo", "by-name"])
        .run()
        .code(0)
        .stdout("by-name\n");
    dcx()
        .args(["exec", "--container-id", &c.id[..12], "echo", "by-prefix"])
        .run()
        .code(0)
        .stdout("by-prefix\n");
}

#[test]
fn an_unknown_program_gives_126_as_the_reference() {
    let c = TestContainer::start(DEBIAN);
    let reference = c.reference(["no-such-program"]).run();
    c.dcx(["no-such-program"])
        .run()
        .code(126)
        .same_as(&reference);
}

#[test]
fn docker_host_is_honoured_for_unix_and_tcp() {
    let c = TestContainer::start(BUSYBOX);
    c.dcx(["echo", "unix"])
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .run()
        .code(0)
        .stdout("unix\n");
    c.dcx(["sh", "-c", "cat; exit 5"])
        .env("DOCKER_HOST", &crate::harness::setting("DCX_TCP_HOST"))
        .stdin("over tcp\n")
        .run()
        .code(5)
        .stdout("over tcp\n");
}
