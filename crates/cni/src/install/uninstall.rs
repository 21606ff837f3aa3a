//! Removing what an install recorded: files still as written, then the directories it made.

use super::record::{Entry, Place, Places, RECORD_NAME, Record};
use super::{Action, Error, Line, Settings, files, line};

/// Removes a recorded file if it still holds what was written.
pub(super) fn remove_if_ours(
    places: &Places,
    e: &Entry,
    hashes: &mut files::Hashes,
) -> Result<Option<Line>, Error> {
    let path = places.path(e.place, &e.name);
    Ok(match files::current(&path, None, hashes)? {
        files::Current::Missing => None,
        files::Current::File { sha256, .. } if sha256 == e.sha256 => {
            std::fs::remove_file(&path).map_err(|err| Error::io("remove", &path, err))?;
            Some(line(Action::Removed, path))
        }
        _ => Some(line(
            Action::Kept("changed since install-cni wrote it".into()),
            path,
        )),
    })
}

/// Removes what the record in the configuration directory lists (files still as written, then
/// the directories install-cni created, if empty), then the record.
pub fn uninstall(s: &Settings) -> Result<Vec<Line>, Error> {
    let places = Places {
        bin: s.bin_dir.clone(),
        conf: s.conf_dir.clone(),
    };
    let rec_path = places.path(Place::Conf, RECORD_NAME);
    let Some(rec) = Record::load(&s.conf_dir)? else {
        return Ok(vec![line(
            Action::Warning("no install record: nothing to uninstall".into()),
            rec_path,
        )]);
    };
    let mut lines = Vec::new();
    let mut hashes = files::Hashes::default();
    for e in &rec.files {
        lines.extend(remove_if_ours(&places, e, &mut hashes)?);
    }
    std::fs::remove_file(&rec_path).map_err(|e| Error::io("remove", &rec_path, e))?;
    lines.push(line(Action::Removed, rec_path));
    // Deepest first: the TLS directory before the configuration directory itself.
    let mut dirs = rec.created_dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.name.len()));
    for d in dirs {
        let p = places.path(d.place, &d.name);
        match std::fs::remove_dir(&p) {
            Ok(()) => lines.push(line(Action::Removed, p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => lines.push(line(Action::Kept("not empty".into()), p)),
        }
    }
    for place in [Place::Bin, Place::Conf] {
        files::sync_dir(places.dir(place));
    }
    Ok(lines)
}
