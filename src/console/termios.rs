//! Terminal modes and sizes (crun's `libcrun_set_raw` and `libcrun_terminal_setup_size`).

use std::os::fd::RawFd;

use super::{check_fd, retry};
use crate::error::{Error, Result};

/// The termios of a terminal before [`set_raw`] changed it.  Dropping it restores that termios
/// (errors ignored); [`SavedTermios::restore`] does the same and reports errors.
#[derive(Debug)]
pub struct SavedTermios {
    fd: RawFd,
    termios: libc::termios,
    armed: bool,
}

impl SavedTermios {
    /// Save the current termios of `fd`.
    pub fn save(fd: RawFd) -> Result<Self> {
        check_fd(fd, "terminal")?;
        Ok(SavedTermios {
            fd,
            termios: tcgetattr(fd)?,
            armed: true,
        })
    }

    /// The terminal fd these settings belong to.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The saved settings.
    pub fn termios(&self) -> &libc::termios {
        &self.termios
    }

    /// Restore the saved termios now (`tcsetattr(TCSANOW)`).
    pub fn restore(mut self) -> Result<()> {
        self.armed = false;
        tcsetattr(self.fd, &self.termios)
    }

    /// Forget the saved settings without restoring them.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for SavedTermios {
    fn drop(&mut self) {
        if self.armed {
            let _ = tcsetattr(self.fd, &self.termios);
        }
    }
}

fn tcgetattr(fd: RawFd) -> Result<libc::termios> {
    // SAFETY: tcgetattr fills the zeroed local termios.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    retry(|| unsafe { libc::tcgetattr(fd, &mut t) })
        .map_err(|e| Error::new(e, format!("tcgetattr fd {fd}")))?;
    Ok(t)
}

fn tcsetattr(fd: RawFd, t: &libc::termios) -> Result<()> {
    // SAFETY: tcsetattr reads the termios we pass.
    retry(|| unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) })
        .map_err(|e| Error::new(e, format!("tcsetattr fd {fd}")))?;
    Ok(())
}

/// Put the terminal `fd` in raw mode and return its previous settings.
///
/// Like crun: `cfmakeraw`, then `c_iflag &= OPOST; c_oflag &= OPOST` (which leaves both zero,
/// so output post-processing is off too), applied with `TCSANOW`.
pub fn set_raw(fd: RawFd) -> Result<SavedTermios> {
    let saved = SavedTermios::save(fd)?;
    let mut raw = saved.termios;
    // SAFETY: cfmakeraw edits the termios in place.
    unsafe { libc::cfmakeraw(&mut raw) };
    raw.c_iflag &= libc::OPOST;
    raw.c_oflag &= libc::OPOST;
    if let Err(e) = tcsetattr(fd, &raw) {
        saved.disarm();
        return Err(e);
    }
    Ok(saved)
}

/// Set the window size of the terminal `fd`.  When `rows` or `cols` is 0 the caller's own
/// stdin size is copied instead (crun's behaviour); if stdin is not a terminal nothing is done.
pub fn terminal_setup_size(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    check_fd(fd, "terminal")?;
    let mut ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    if rows == 0 || cols == 0 {
        // SAFETY: TIOCGWINSZ writes one winsize.
        match retry(|| unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) }) {
            Ok(_) => {}
            // stdin is not a terminal (or not open): nothing to copy.
            Err(libc::ENOTTY) | Err(libc::EBADF) | Err(libc::EINVAL) => return Ok(()),
            Err(e) => return Err(Error::new(e, "ioctl TIOCGWINSZ on stdin")),
        }
    }
    // SAFETY: TIOCSWINSZ reads one winsize.
    retry(|| unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) })
        .map_err(|e| Error::new(e, format!("ioctl TIOCSWINSZ on fd {fd}")))?;
    Ok(())
}

/// The window size of the terminal `fd` as `(rows, cols)`.
pub fn terminal_size(fd: RawFd) -> Result<(u16, u16)> {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize.
    retry(|| unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) })
        .map_err(|e| Error::new(e, format!("ioctl TIOCGWINSZ on fd {fd}")))?;
    Ok((ws.ws_row, ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn raw_mode_set_and_restored() {
        let (m, path) = crate::console::new_terminal().unwrap();
        let s = crate::console::pty::open_fd(&path, libc::O_RDWR | libc::O_NOCTTY, "").unwrap();
        let before = tcgetattr(s.as_raw_fd()).unwrap();
        assert_ne!(before.c_lflag & libc::ICANON, 0);
        let saved = set_raw(s.as_raw_fd()).unwrap();
        let raw = tcgetattr(s.as_raw_fd()).unwrap();
        assert_eq!(raw.c_lflag & (libc::ICANON | libc::ECHO), 0);
        assert_eq!(raw.c_oflag, 0);
        assert_eq!(raw.c_iflag, 0);
        drop(saved);
        let after = tcgetattr(s.as_raw_fd()).unwrap();
        assert_eq!(after.c_lflag, before.c_lflag);
        assert_eq!(after.c_oflag, before.c_oflag);
        // restore() reports and disarms.
        let saved = set_raw(s.as_raw_fd()).unwrap();
        saved.restore().unwrap();
        assert_eq!(tcgetattr(s.as_raw_fd()).unwrap().c_lflag, before.c_lflag);
        drop(m);
    }

    #[test]
    fn size_set_and_read_back() {
        let (m, _path) = crate::console::new_terminal().unwrap();
        terminal_setup_size(m.as_raw_fd(), 33, 111).unwrap();
        assert_eq!(terminal_size(m.as_raw_fd()).unwrap(), (33, 111));
    }

    #[test]
    fn bad_fds() {
        assert_eq!(set_raw(-1).unwrap_err().errno(), libc::EBADF);
        assert_eq!(
            terminal_setup_size(-1, 1, 1).unwrap_err().errno(),
            libc::EBADF
        );
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = set_raw(f.as_raw_fd()).unwrap_err();
        assert_eq!(e.errno(), libc::ENOTTY);
        assert!(e.message().contains("tcgetattr"));
    }
}
