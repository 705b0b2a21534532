//! PTY sessions under a real terminal (a pseudo-terminal opened by the test): TTY detection,
//! exact size before the first instruction, resizes, interactive use, byte-exact output, and
//! the host terminal restored afterwards.

use crate::harness::{DEBIAN, TestContainer, assert_fixed_size_from_the_start};

#[test]
fn a_terminal_gets_a_tty_and_pipes_do_not() {
    let c = TestContainer::start(DEBIAN);
    let mut run = c.dcx(["[", "-t", "1", "]"]).spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(0), "{}", run.stdout.text());
    c.dcx(["[", "!", "-t", "1", "]"]).run().code(0);
    let mut run = c.dcx(["bash", "-lc", "tty"]).spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(0));
    run.stdout.wait_for("/dev/pts/");
}

#[test]
fn the_given_size_holds_from_the_first_instruction_every_time() {
    let c = TestContainer::start(DEBIAN);
    assert_fixed_size_from_the_start(&c, 50);
}

#[test]
fn the_host_terminal_size_is_used_and_followed() {
    let c = TestContainer::start(DEBIAN);
    let mut run = c.dcx(["sh"]).spawn_in_terminal(31, 97);
    run.type_in(b"stty size; echo first-done\n");
    run.stdout.wait_for("31 97");
    run.resize(41, 123);
    // The resize reaches the container asynchronously: ask until it shows.
    let started = std::time::Instant::now();
    while !run.stdout.text().contains("41 123") {
        assert!(
            started.elapsed().as_secs() < 60,
            "resize never seen: {}",
            run.stdout.text()
        );
        run.type_in(b"stty size\n");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    run.type_in(b"exit\n");
    assert_eq!(run.wait(), Some(0));
}

#[test]
fn an_interactive_shell_takes_typed_lines() {
    let c = TestContainer::start(DEBIAN);
    let mut run = c.dcx(["sh"]).spawn_in_terminal(24, 80);
    run.type_in(b"FOO=BAR\necho ${FOO}hi${FOO}\nexit\n");
    assert_eq!(run.wait(), Some(0));
    run.stdout.wait_for("BARhiBAR");
    let mut run = c.dcx(["sh", "-c", "exit 123"]).spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(123));
}

#[test]
fn tty_output_is_byte_exact_even_when_it_starts_with_bytes_0_to_2() {
    let c = TestContainer::start(DEBIAN);
    let mut run = c
        .dcx([
            "sh",
            "-c",
            r"printf '\000\001\002abc'; sleep 0.2; printf '\002\000tail'",
        ])
        .spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(0));
    run.stdout.wait_for("tail");
    assert_eq!(run.stdout.bytes(), b"\0\x01\x02abc\x02\0tail");
}

#[test]
fn the_first_line_is_byte_exact_every_time() {
    // The host terminal must be raw before the command's first byte arrives, else it turns the
    // container terminal's `\r\n` into `\r\r\n`.
    let c = TestContainer::start(DEBIAN);
    // Probed once first: a slow first probe shows its passing status line on the terminal
    // (stderr), which is not what is checked here.
    c.dcx(["true"]).run().code(0);
    for attempt in 0..50 {
        let mut run = c
            .dcx(["sh", "-c", "[ -t 1 ] && echo tty"])
            .spawn_in_terminal(24, 80);
        assert_eq!(run.wait(), Some(0), "attempt {attempt}");
        run.stdout.wait_for("tty");
        assert_eq!(
            run.stdout.text(),
            "tty\r\n",
            "attempt {attempt}: {:?}",
            run.stdout.text()
        );
    }
}

#[test]
fn large_tty_output_arrives_complete() {
    let c = TestContainer::start(DEBIAN);
    let size = 100 * 1024 * 1024;
    let mut run = c
        .dcx(["head", "-c", &size.to_string(), "/dev/zero"])
        .spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(0));
    let started = std::time::Instant::now();
    while run.stdout.bytes().len() < size {
        assert!(
            started.elapsed().as_secs() < 120,
            "only {} bytes",
            run.stdout.bytes().len()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let bytes = run.stdout.bytes();
    assert_eq!(bytes.len(), size);
    assert!(bytes.iter().all(|b| *b == 0));
}

#[test]
fn the_host_terminal_is_restored_after_the_session() {
    let c = TestContainer::start(DEBIAN);
    let mut run = c.dcx(["sh"]).spawn_in_terminal(24, 80);
    // The answer, not the echo of the typed line, shows that the session is under way.
    run.type_in(b"echo $((6*7))\n");
    run.stdout.wait_for("42");
    assert!(!run.terminal_is_cooked(), "raw during the session");
    run.type_in(b"exit\n");
    assert_eq!(run.wait(), Some(0));
    assert!(run.terminal_is_cooked(), "restored after a normal exit");

    // Also after SIGTERM (forwarded: the shell in the container dies of it).
    let mut run = c
        .dcx(["sh", "-c", "echo started; sleep 100"])
        .spawn_in_terminal(24, 80);
    run.stdout.wait_for("started");
    run.signal("TERM");
    assert_eq!(run.wait(), Some(143));
    assert!(run.terminal_is_cooked(), "restored after SIGTERM");

    // And after an error.
    let mut run = crate::harness::dcx()
        .args(["exec", "--container-id", "no-such-container-here", "sh"])
        .spawn_in_terminal(24, 80);
    assert_eq!(run.wait(), Some(1));
    assert!(run.terminal_is_cooked(), "restored after an error");
}

#[test]
fn terminal_flags_come_in_pairs() {
    let c = TestContainer::start(DEBIAN);
    c.dcx(["--terminal-columns", "80", "true"])
        .run()
        .code(1)
        .stderr("error: --terminal-columns requires --terminal-rows\n\nUsage: dcx exec [OPTIONS] <CMD> [ARGS]...\n\nFor more information, try '--help'.\n");
    c.dcx(["--terminal-rows", "24", "true"])
        .run()
        .code(1)
        .stderr("error: --terminal-rows requires --terminal-columns\n\nUsage: dcx exec [OPTIONS] <CMD> [ARGS]...\n\nFor more information, try '--help'.\n");
}
