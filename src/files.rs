//! Replacing a file atomically: a reader (Salt, starting) sees the old file or the new one,
//! never a part of either. The minion drop-in and the master's key pair are written so.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Temporary names already tried by this process; with the PID this keeps concurrent writers
/// (the beacon's thread, a `phoenix minion-config` run) off each other's temporary files.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many fresh temporary names to try when one already exists (left by a crash of a
/// process that had the same PID).
const TEMP_NAME_ATTEMPTS: u32 = 16;

/// Replaces `path` with `contents`, creating its directory if missing: writes a temporary
/// file in the same directory, flushes it to disk, renames it over `path`, then flushes the
/// directory so the rename survives a power loss. The file gets `mode` whatever the umask,
/// from its creation on (a private key is never readable by others, not even half written).
///
/// The temporary file is hidden and does not end in `.conf` or `.pem`
/// (`.<name>.tmp-<pid>-<n>`), so Salt's `minion.d/*.conf` include never loads one. On failure it is removed and `path` is
/// left as it was; the error is [`Error::Io`] naming `path`, its message saying which step
/// failed. A failure to flush the directory after the rename is only logged: the new file is
/// already complete and in place, and the worst a power loss can then do is bring back the
/// old, equally complete, file.
pub fn write_atomically(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let io_error = |step: &str, source: io::Error| Error::Io {
        path: path.to_path_buf(),
        source: io::Error::new(source.kind(), format!("{step}: {source}")),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_error(
            "choosing a temporary file",
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        )
    })?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };

    // A fresh host may have no minion.d yet (Salt's packages create it, a pip install does
    // not); Salt includes it as soon as it exists.
    fs::create_dir_all(directory).map_err(|err| {
        io_error(
            &format!("creating the directory {}", directory.display()),
            err,
        )
    })?;
    let (temp_path, file) = create_temp(directory, file_name, mode)
        .map_err(|err| io_error("creating a temporary file", err))?;
    let written = fill(file, contents, mode)
        .map_err(|err| io_error(&format!("writing {}", temp_path.display()), err))
        .and_then(|()| {
            fs::rename(&temp_path, path)
                .map_err(|err| io_error(&format!("renaming {} over it", temp_path.display()), err))
        });
    if let Err(err) = written {
        // Best effort: the error that matters is the one above.
        let _ = fs::remove_file(&temp_path);
        return Err(err);
    }
    if let Err(err) = sync_directory(directory) {
        log::warn!(
            "{} was replaced, but flushing {} failed: {err}; a power loss now may bring back \
             the previous version",
            path.display(),
            directory.display()
        );
    }
    Ok(())
}

fn create_temp(directory: &Path, file_name: &OsStr, mode: u32) -> io::Result<(PathBuf, File)> {
    let mut last_error = None;
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".tmp-{}-{n}", std::process::id()));
        let temp_path = directory.join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        match options.open(&temp_path) {
            Ok(file) => return Ok((temp_path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no temporary name was free")))
}

fn fill(mut file: File, contents: &str, mode: u32) -> io::Result<()> {
    file.write_all(contents.as_bytes())?;
    // The umask may have narrowed the mode given at creation.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    file.sync_all()
}

#[cfg(unix)]
fn sync_directory(directory: &Path) -> io::Result<()> {
    File::open(directory)?.sync_all()
}

/// Elsewhere a directory cannot be opened for flushing; the rename is as durable as it gets.
#[cfg(not(unix))]
fn sync_directory(_directory: &Path) -> io::Result<()> {
    Ok(())
}
