//! [`ExitStatus`]: how a process ended, and the one function giving dcx's exit code.
//!
//! The rule is the reference CLI's (`commonUtils.ts`): a numeric code is used as is (a byte wide: a
//! larger one wraps as a shell's would, a negative one gives 1), a signal N gives 128+N, anything
//! else 1. [`ExitStatus::death_signal`] reads the engines' 128+N back as signal N. Signal names
//! (for `kill -s`) use the Linux numbering of the reference's table, checked name by name in the
//! tests.

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code (engines already report a death by signal N as 128+N).
    Code(i64),
    /// Killed by this signal number.
    Signal(i32),
    /// The engine could not tell.
    Unknown,
}

impl ExitStatus {
    /// From an engine's exit code, where `None` means it could not tell.
    pub fn from_code(code: Option<i64>) -> Self {
        code.map_or(Self::Unknown, Self::Code)
    }

    /// The signal the process died of, as the engines report it: a signal, or a code from 129
    /// to 159 (128+N; an `exit 143` reads the same, as it does to a shell).
    pub fn death_signal(self) -> Option<i32> {
        match self {
            Self::Code(code) if (129..=159).contains(&code) => i32::try_from(code - 128).ok(),
            Self::Signal(signal) => Some(signal),
            Self::Code(_) | Self::Unknown => None,
        }
    }

    /// The exit code dcx ends with.
    pub fn exit_code(self) -> u8 {
        match self {
            // Exit codes are a byte wide on Unix; the engine's wider number wraps as a shell's would.
            Self::Code(code) if (0..=255).contains(&code) => code as u8,
            Self::Code(code) if code > 255 => (code % 256) as u8,
            Self::Signal(signal) if (1..=127).contains(&signal) => 128 + signal as u8,
            Self::Code(_) | Self::Signal(_) | Self::Unknown => 1,
        }
    }
}

/// The name (without `SIG`) of a Linux signal number, as `kill -s` takes it.
pub fn signal_name(number: i32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    usize::try_from(number - 1)
        .ok()
        .and_then(|index| NAMES.get(index).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Linux number of a signal name, with or without the `SIG` prefix (the reference's table,
    /// aliases included). EMT, CLD, INFO and LOST have no Linux number.
    fn signal_number(name: &str) -> Option<i32> {
        let name = name.strip_prefix("SIG").unwrap_or(name);
        Some(match name {
            "HUP" => 1,
            "INT" => 2,
            "QUIT" => 3,
            "ILL" => 4,
            "TRAP" => 5,
            "ABRT" | "IOT" => 6,
            "BUS" => 7,
            "FPE" => 8,
            "KILL" => 9,
            "USR1" => 10,
            "SEGV" => 11,
            "USR2" => 12,
            "PIPE" => 13,
            "ALRM" => 14,
            "TERM" => 15,
            "STKFLT" => 16,
            "CHLD" => 17,
            "CONT" => 18,
            "STOP" => 19,
            "TSTP" => 20,
            "TTIN" => 21,
            "TTOU" => 22,
            "URG" => 23,
            "XCPU" => 24,
            "XFSZ" => 25,
            "VTALRM" => 26,
            "PROF" => 27,
            "WINCH" => 28,
            "IO" | "POLL" => 29,
            "PWR" => 30,
            "SYS" | "UNUSED" => 31,
            _ => return None,
        })
    }

    #[test]
    fn codes_pass_through() {
        assert_eq!(ExitStatus::Code(0).exit_code(), 0);
        assert_eq!(ExitStatus::Code(123).exit_code(), 123);
        assert_eq!(ExitStatus::Code(143).exit_code(), 143);
        assert_eq!(ExitStatus::Code(255).exit_code(), 255);
        assert_eq!(ExitStatus::Code(256 + 7).exit_code(), 7);
        assert_eq!(ExitStatus::Code(-1).exit_code(), 1);
        assert_eq!(ExitStatus::from_code(None).exit_code(), 1);
    }

    #[test]
    fn a_death_by_signal_reads_from_a_signal_or_128_plus_n() {
        assert_eq!(ExitStatus::Code(143).death_signal(), Some(15));
        assert_eq!(ExitStatus::Code(129).death_signal(), Some(1));
        assert_eq!(ExitStatus::Code(159).death_signal(), Some(31));
        assert_eq!(ExitStatus::Code(128).death_signal(), None);
        assert_eq!(ExitStatus::Code(160).death_signal(), None);
        assert_eq!(ExitStatus::Signal(9).death_signal(), Some(9));
        assert_eq!(ExitStatus::Unknown.death_signal(), None);
    }

    #[test]
    fn every_linux_signal_maps_to_128_plus_its_number() {
        let table = [
            ("HUP", 1),
            ("INT", 2),
            ("QUIT", 3),
            ("ILL", 4),
            ("TRAP", 5),
            ("ABRT", 6),
            ("IOT", 6),
            ("BUS", 7),
            ("FPE", 8),
            ("KILL", 9),
            ("USR1", 10),
            ("SEGV", 11),
            ("USR2", 12),
            ("PIPE", 13),
            ("ALRM", 14),
            ("TERM", 15),
            ("STKFLT", 16),
            ("CHLD", 17),
            ("CONT", 18),
            ("STOP", 19),
            ("TSTP", 20),
            ("TTIN", 21),
            ("TTOU", 22),
            ("URG", 23),
            ("XCPU", 24),
            ("XFSZ", 25),
            ("VTALRM", 26),
            ("PROF", 27),
            ("WINCH", 28),
            ("IO", 29),
            ("POLL", 29),
            ("PWR", 30),
            ("SYS", 31),
            ("UNUSED", 31),
        ];
        for (name, number) in table {
            assert_eq!(signal_number(name), Some(number), "{name}");
            assert_eq!(
                signal_number(&format!("SIG{name}")),
                Some(number),
                "SIG{name}"
            );
            assert_eq!(ExitStatus::Signal(number).exit_code(), 128 + number as u8);
        }
        for number in 1..=31 {
            let name = signal_name(number).unwrap();
            assert_eq!(signal_number(name), Some(number), "{name}");
        }
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(32), None);
        for name in ["EMT", "CLD", "INFO", "LOST", "BOGUS", ""] {
            assert_eq!(signal_number(name), None, "{name}");
        }
        assert_eq!(ExitStatus::Signal(0).exit_code(), 1);
    }
}
