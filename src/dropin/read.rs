//! Reading back a drop-in, and telling Phoenix's own file from the operator's.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::quote::yaml_unquoted;
use super::render::{check_masters, MASTERS_LINE_PREFIX, OWNERSHIP_MARKER};
use crate::error::{Error, Result};

/// A drop-in is a few hundred bytes; anything this large is not one Phoenix wrote, and
/// reading it whole would only cost memory.
const MAX_DROP_IN_BYTES: u64 = 1 << 20;

/// A Phoenix drop-in as found on disk.
#[derive(Debug)]
pub(crate) struct Existing {
    /// The whole text, to compare with what would be written now.
    pub text: String,
    /// The master list it carries, in order.
    pub masters: Vec<String>,
}

/// The master list of the Phoenix drop-in at `path`.
///
/// - `Ok(None)`: there is no file at `path`.
/// - `Ok(Some(masters))`: a Phoenix drop-in (first line starts with [`OWNERSHIP_MARKER`]),
///   never empty.
/// - [`Error::Conflict`]: a file is there without the Phoenix header (the operator's: Phoenix
///   never edits it), or a Phoenix drop-in that is damaged or was edited by hand (it is not
///   rewritten either: repair or delete it). A damaged file never reads as an empty list.
/// - [`Error::Io`]: the file could not be read (permissions, a directory at that path...).
///
/// Only the format that [`render`](super::render) writes is understood: the list in the
/// `# phoenix-masters:` header line must match the `master:` list Salt reads.
pub fn read_masters(path: &Path) -> Result<Option<Vec<String>>> {
    Ok(read_existing(path)?.map(|existing| existing.masters))
}

pub(crate) fn read_existing(path: &Path) -> Result<Option<Existing>> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(err)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_DROP_IN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;

    // Ownership is decided on raw bytes, before anything else, so an operator's file is
    // reported as theirs even when it is not text.
    if !bytes.starts_with(OWNERSHIP_MARKER.as_bytes()) {
        return Err(Error::Conflict(format!(
            "{} exists and is not managed by Phoenix (its first line is not the Phoenix \
             header); Phoenix never edits a file it does not own: move that file away or \
             give Phoenix another drop-in path",
            path.display()
        )));
    }
    let damaged = |reason: &str| {
        Error::Conflict(format!(
            "{} is a Phoenix drop-in but {reason}; Phoenix does not rewrite a file it cannot \
             read back: delete it and run `phoenix minion-config`",
            path.display()
        ))
    };
    if bytes.len() as u64 > MAX_DROP_IN_BYTES {
        return Err(damaged("it is larger than 1 MiB"));
    }
    let text = String::from_utf8(bytes).map_err(|_| damaged("it is not valid UTF-8"))?;
    let masters = parse(&text).map_err(|reason| damaged(&reason))?;
    Ok(Some(Existing { text, masters }))
}

/// The master list of a Phoenix drop-in's text, or why it cannot be trusted.
fn parse(text: &str) -> Result<Vec<String>, String> {
    let mut header_lists = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .filter_map(|line| line.strip_prefix(MASTERS_LINE_PREFIX));
    let header_list = header_lists
        .next()
        .ok_or("its header has no `# phoenix-masters:` line")?;
    if header_lists.next().is_some() {
        return Err("its header has more than one `# phoenix-masters:` line".to_owned());
    }
    let from_header: Vec<String> = serde_json::from_str(header_list)
        .map_err(|err| format!("its `# phoenix-masters:` line is not a JSON list ({err})"))?;

    let mut lines = text.lines().skip_while(|line| *line != "master:");
    if lines.next().is_none() {
        return Err("it has no `master:` list".to_owned());
    }
    let mut from_body = Vec::new();
    for line in lines {
        let Some(quoted) = line.strip_prefix("  - ") else {
            break;
        };
        let master = yaml_unquoted(quoted)
            .ok_or_else(|| format!("its `master:` entry {quoted} is not in Phoenix's format"))?;
        from_body.push(master);
    }
    if text.lines().filter(|line| *line == "master:").count() > 1 {
        return Err("it has more than one `master:` list".to_owned());
    }
    if from_body != from_header {
        return Err(
            "its `master:` list differs from its `# phoenix-masters:` line (edited by hand?)"
                .to_owned(),
        );
    }
    check_masters(&from_body)?;
    Ok(from_body)
}
