//! Standard output that cannot be written is the command's end, as for
//! `ls`: into a closed pipe (`status | head -1`), quietly, by SIGPIPE;
//! otherwise (a full disk, `> /dev/full`) one `error:` line and status 1 —
//! never output lost with status 0, nor a panic's backtrace.

use std::io::Write;

use super::CliResult;

/// What std's `print!` family says when standard output fails; the io
/// error's text follows, ending in `(os error N)`.
const PRINT_FAILED: &str = "failed printing to stdout: ";

/// Ends the command as a failed write of its output must: see the module.
pub(crate) fn fail(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        crate::sys::process::die_of_sigpipe();
    }
    eprintln!("error: cannot write the output: {e}");
    std::process::exit(1)
}

/// Turns a failed `println!` (which panics) into [`fail`]; other panics
/// are reported as before.
pub(crate) fn exit_when_stdout_fails() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        if let Some(reason) = message.and_then(|m| m.strip_prefix(PRINT_FAILED)) {
            // The panic carries the error as text only: its errno is the
            // number std's io::Error display ends with.
            let errno = reason
                .rsplit_once("(os error ")
                .and_then(|(_, n)| n.trim_end_matches(')').parse::<i32>().ok());
            match errno {
                Some(n) => fail(&std::io::Error::from_raw_os_error(n)),
                None => fail(&std::io::Error::other(reason.to_owned())),
            }
        }
        previous(info);
    }));
}

/// Flushes what is still buffered for standard output.
pub(super) fn flush_stdout() -> CliResult {
    if let Err(e) = std::io::stdout().flush() {
        fail(&e);
    }
    Ok(())
}

/// Writes a line of a command's output (a listing written through a
/// buffer), ending the command if it cannot be written.
pub(super) fn write_line(out: &mut impl Write, line: &str) {
    if let Err(e) = writeln!(out, "{line}") {
        fail(&e);
    }
}

/// Flushes a command's buffered output, ending the command if it cannot.
pub(super) fn flush(out: &mut impl Write) {
    if let Err(e) = out.flush() {
        fail(&e);
    }
}
