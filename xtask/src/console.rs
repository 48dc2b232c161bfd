//! Writing to stdout and stderr when the reader may go away: `cargo xtask run-scenario x | head`
//! closes the pipe early, and `println!` then panics (exit 101). Here a closed pipe only drops the
//! rest of the output: the command goes on and ends with its own exit code.

use std::fmt;
use std::io::{self, Write};

/// Writes one line to stdout; a closed pipe is not an error (see the module doc), any other
/// failure is. Use as `outln!("…")?`.
macro_rules! outln {
    () => {
        $crate::console::line(&mut ::std::io::stdout().lock(), format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::console::line(&mut ::std::io::stdout().lock(), format_args!($($arg)*))
    };
}

/// Writes one line to stderr; a failure to write there has nowhere to be reported, so it is
/// dropped.
macro_rules! errln {
    ($($arg:tt)*) => {
        // Nothing is left to tell the user through.
        let _ = $crate::console::line(&mut ::std::io::stderr().lock(), format_args!($($arg)*));
    };
}

pub(crate) use {errln, outln};

/// Writes `args` and a newline to `out`, treating a closed pipe as success.
pub fn line(out: &mut impl Write, args: fmt::Arguments<'_>) -> io::Result<()> {
    match writeln!(out, "{args}") {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_not_an_error_but_a_full_disk_is() {
        assert!(line(&mut ClosedPipe, format_args!("verdict: {}", "PASSED")).is_ok());
        let mut full = [0u8; 4];
        let error = line(&mut &mut full[..], format_args!("too long for the buffer")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
        let mut out = Vec::new();
        line(&mut out, format_args!("seed: {}", 8141)).unwrap();
        assert_eq!(out, b"seed: 8141\n");
    }
}
