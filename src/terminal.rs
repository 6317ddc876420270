//! The terminal, for podinit run from a shell (`podinit -- cmd`, or
//! `docker run -it`): the main process gets the terminal's foreground only
//! when podinit has it (a background `podinit -- cmd &` takes nothing);
//! podinit gives the foreground back to its own group when it exits; and, when
//! it is not PID 1, it stops itself when the terminal stops the main process
//! (^Z), so the shell regains control, and resumes the main process in the
//! foreground when continued (as dumb-init does).

use std::os::fd::AsFd;

/// Whether stdin is a terminal whose foreground is podinit's own process group.
pub fn podinit_has_foreground() -> bool {
    let stdin = std::io::stdin();
    nix::unistd::tcgetpgrp(stdin.as_fd()).is_ok_and(|fg| fg == nix::unistd::getpgrp())
}

/// Makes `pgrp` the terminal's foreground group; no terminal, no harm.
pub fn give_foreground(pgrp: i32) {
    let _ = nix::unistd::tcsetpgrp(std::io::stdin().as_fd(), nix::unistd::Pid::from_raw(pgrp));
}

/// Gives the foreground back to podinit's own group if `pgrp` still holds it.
pub fn take_back_from(pgrp: i32) {
    let stdin = std::io::stdin();
    if nix::unistd::tcgetpgrp(stdin.as_fd()).is_ok_and(|fg| fg.as_raw() == pgrp) {
        give_foreground(nix::unistd::getpgrp().as_raw());
    }
}

/// Whether a child stopped by `sig` was stopped by the terminal (^Z, or
/// reading or writing it from the background), not by a plain SIGSTOP.
pub fn is_terminal_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

/// Stops podinit itself, as the shell's job; returns once it is continued.
pub fn suspend_self() {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
}
