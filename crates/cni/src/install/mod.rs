//! `brindle install-cni`: what Calico's install-cni does (`cni-plugin/pkg/install/install.go`)
//! for Brindle, as a command on a plain host and as the DaemonSet's init container.
//!
//! It copies the running binary into the CNI bin directory under every plugin name it answers
//! to (`brindle`, `brindle-ipam`, `calico`, `calico-ipam`; extra plugins such as `portmap`
//! from `--extra-plugins-dir`), copies the etcd TLS assets of `TLS_ASSETS_DIR` into
//! `<conf dir>/brindle-tls/`, and renders the network configuration from a template
//! ([`template`]) into `<conf dir>/$CNI_CONF_NAME`. Calico's environment drives it
//! (`CNI_NETWORK_CONFIG`, `CNI_NETWORK_CONFIG_FILE`, `CNI_CONF_NAME`, `CNI_NET_DIR`,
//! `CNI_MTU`, `ETCD_*`, `TLS_ASSETS_DIR`, `SKIP_CNI_BINARIES`, `UPDATE_CNI_BINARIES`,
//! `CNI_OLD_CONF_NAME`, `SLEEP`).
//!
//! Unlike Calico's, it is all-or-nothing and idempotent: everything is rendered and checked
//! first, each new file is staged next to its target and every installed plugin name is made to
//! answer a CNI `VERSION` call before anything is renamed into place; a file that already holds
//! what would be written is not touched (not even its mtime). What was written is recorded
//! ([`record`]) so a re-run removes what it no longer writes and `--uninstall` removes exactly
//! that, leaving every other network's files alone.
//!
//! Module map: [`template`] (placeholders, checks; pure), [`files`] (hashing, staging,
//! renames), [`record`] (the install record), `verify` (each plugin name answers VERSION),
//! `uninstall`.

pub mod files;
pub mod record;
pub mod template;
mod uninstall;
mod verify;

use uninstall::remove_if_ours;
pub use uninstall::uninstall;
pub use verify::answers_version;

use std::path::{Path, PathBuf};

use record::{Dir, Entry, Place, Places, RECORD_NAME, Record};

/// Every name the binary answers to as a CNI plugin.
pub const PLUGIN_NAMES: [&str; 4] = ["brindle", "brindle-ipam", "calico", "calico-ipam"];
/// The CNI bin directory of Kubernetes nodes (Debian's packages use `/usr/lib/cni`).
pub const DEFAULT_BIN_DIR: &str = "/opt/cni/bin";
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// `CNI_CONF_NAME` when unset (Calico's is `10-calico.conflist`).
pub const DEFAULT_CONF_NAME: &str = "10-brindle.conflist";
/// Where the etcd TLS assets go, under the configuration directory (Calico: `calico-tls`).
pub const TLS_DIR: &str = "brindle-tls";
/// `TLS_ASSETS_DIR` when unset: where the etcd Secret is mounted in Calico's manifest.
pub const DEFAULT_TLS_ASSETS_DIR: &str = "/calico-secrets";
const TLS_ASSETS: [&str; 3] = ["etcd-ca", "etcd-cert", "etcd-key"];
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Why an install or uninstall did nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad setting (environment or flags), named.
    #[error("{0}")]
    Config(String),
    /// The template, or what it renders to.
    #[error("{0}")]
    Template(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An installed plugin name did not answer VERSION as a Brindle plugin.
    #[error("{0}")]
    Verify(String),
}

impl Error {
    pub(crate) fn io(what: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where to install, and what.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bin_dir: PathBuf,
    pub conf_dir: PathBuf,
    /// The binary installed under every plugin name (the running one).
    pub source: PathBuf,
    /// Other plugins to install alongside (every regular file in it), as Calico's image
    /// installs `portmap` and friends from its own `/opt/cni/bin`.
    pub extra_plugins_dir: Option<PathBuf>,
}

/// What happened to one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Installed,
    Unchanged,
    Removed,
    /// Left in place, and why.
    Kept(String),
    /// Not installed, and why.
    Skipped(String),
    Warning(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub action: Action,
    pub path: PathBuf,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.path.display();
        match &self.action {
            Action::Installed => write!(f, "installed {p}"),
            Action::Unchanged => write!(f, "unchanged {p}"),
            Action::Removed => write!(f, "removed {p}"),
            Action::Kept(why) => write!(f, "kept {p}: {why}"),
            Action::Skipped(why) => write!(f, "skipped {p}: {why}"),
            Action::Warning(why) => write!(f, "warning: {p}: {why}"),
        }
    }
}

fn line(action: Action, path: impl Into<PathBuf>) -> Line {
    Line {
        action,
        path: path.into(),
    }
}

/// Go's `strconv.ParseBool`, as Calico's envconfig reads booleans.
fn env_bool(env: &dyn Fn(&str) -> Option<String>, name: &str, default: bool) -> Result<bool, Error> {
    match env(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(Error::Config(format!("{name}={other}: expected true or false"))),
    }
}

/// `SLEEP`: keep running and re-install every few seconds (Calico's default is true, for its
/// old sidecar use; Brindle's is false, since it is a command first).
pub fn sleep_requested(env: &dyn Fn(&str) -> Option<String>) -> Result<bool, Error> {
    env_bool(env, "SLEEP", false)
}

/// The environment's settings, checked.
struct Options {
    conf_name: String,
    old_conf_name: Option<String>,
    template_source: String,
    template: String,
    tls_assets_dir: PathBuf,
    host_conf_dir: String,
    skip: Vec<String>,
    update_binaries: bool,
}

fn conf_file_name(var: &str, name: &str) -> Result<String, Error> {
    let ok_ext = [".conf", ".conflist", ".json"].iter().any(|e| name.ends_with(e));
    if name.is_empty() || name.contains('/') || name.starts_with('.') || !ok_ext {
        return Err(Error::Config(format!(
            "{var}={name}: expected a file name ending in .conflist, .conf or .json (runtimes load no other)"
        )));
    }
    Ok(name.to_string())
}

fn options(env: &dyn Fn(&str) -> Option<String>, s: &Settings) -> Result<Options, Error> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let conf_name = conf_file_name(
        "CNI_CONF_NAME",
        &set("CNI_CONF_NAME").unwrap_or_else(|| DEFAULT_CONF_NAME.into()),
    )?;
    let old_conf_name = set("CNI_OLD_CONF_NAME")
        .map(|n| conf_file_name("CNI_OLD_CONF_NAME", &n))
        .transpose()?;
    let (template_source, template) = if let Some(f) = set("CNI_NETWORK_CONFIG_FILE") {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| Error::io("read CNI_NETWORK_CONFIG_FILE", Path::new(&f), e))?;
        (format!("CNI_NETWORK_CONFIG_FILE={f}"), text)
    } else if let Some(t) = set("CNI_NETWORK_CONFIG") {
        ("CNI_NETWORK_CONFIG".to_string(), t)
    } else {
        (
            "the default template".to_string(),
            template::DEFAULT_TEMPLATE.to_string(),
        )
    };
    Ok(Options {
        conf_name,
        old_conf_name,
        template_source,
        template,
        tls_assets_dir: set("TLS_ASSETS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| DEFAULT_TLS_ASSETS_DIR.into()),
        host_conf_dir: set("CNI_NET_DIR").unwrap_or_else(|| s.conf_dir.display().to_string()),
        skip: set("SKIP_CNI_BINARIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
        update_binaries: env_bool(env, "UPDATE_CNI_BINARIES", true)?,
    })
}

enum Content {
    /// A copy of a file (the binary, an extra plugin).
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One file to have in place.
struct Want {
    place: Place,
    name: String,
    content: Content,
    mode: u32,
    sha256: String,
    size: u64,
    /// A plugin name that must answer VERSION.
    verify_as: Option<&'static str>,
}

impl Want {
    fn entry(&self) -> Entry {
        Entry {
            place: self.place,
            name: self.name.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
        .to_lowercase()
}

/// Installs (or brings up to date) the plugins, TLS assets and network configuration.
/// Returns one line per path considered; on error nothing was changed.
pub fn install(s: &Settings, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Line>, Error> {
    let opt = options(env, s)?;
    let places = Places {
        bin: s.bin_dir.clone(),
        conf: s.conf_dir.clone(),
    };
    let old = Record::load(&s.conf_dir)?.unwrap_or_default();
    let mut lines = Vec::new();
    let mut wants = Vec::new();

    // The binary under every plugin name, then the extra plugins.
    let mut hashes = files::Hashes::default();
    let source_md = std::fs::metadata(&s.source).map_err(|e| Error::io("inspect", &s.source, e))?;
    let source_sha = hashes.of(&s.source, &source_md)?;
    for name in PLUGIN_NAMES {
        if opt.skip.iter().any(|n| n == name) {
            lines.push(line(
                Action::Skipped("in SKIP_CNI_BINARIES".into()),
                places.path(Place::Bin, name),
            ));
            continue;
        }
        wants.push(Want {
            place: Place::Bin,
            name: name.into(),
            content: Content::File(s.source.clone()),
            mode: 0o755,
            sha256: source_sha.clone(),
            size: source_md.len(),
            verify_as: Some(name),
        });
    }
    if let Some(dir) = &s.extra_plugins_dir {
        wants.extend(extra_plugins(dir, &opt, &places, &mut lines, &mut hashes)?);
    }

    // The etcd TLS assets, and the paths the configuration names them by.
    let mut copied = template::TlsPaths::default();
    if opt.tls_assets_dir.is_dir() {
        for asset in TLS_ASSETS {
            let src = opt.tls_assets_dir.join(asset);
            if !src.is_file() {
                lines.push(line(Action::Warning("missing, not installed".into()), src));
                continue;
            }
            let bytes = std::fs::read(&src).map_err(|e| Error::io("read", &src, e))?;
            let mode = std::fs::metadata(&src)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
                .unwrap_or(0o600);
            let host_path = Some(format!("{}/{TLS_DIR}/{asset}", opt.host_conf_dir));
            match asset {
                "etcd-ca" => copied.ca = host_path,
                "etcd-cert" => copied.cert = host_path,
                _ => copied.key = host_path,
            }
            wants.push(Want {
                place: Place::Conf,
                name: format!("{TLS_DIR}/{asset}"),
                sha256: files::sha256_bytes(&bytes),
                size: bytes.len() as u64,
                content: Content::Bytes(bytes),
                mode,
                verify_as: None,
            });
        }
    }

    // The network configuration, rendered and checked before anything is written.
    let token = if opt.template.contains("__SERVICEACCOUNT_TOKEN__") {
        std::fs::read_to_string(SERVICE_ACCOUNT_TOKEN).unwrap_or_default()
    } else {
        String::new()
    };
    let inputs = template::Inputs {
        host_conf_dir: opt.host_conf_dir.clone(),
        hostname: hostname(),
        copied_tls: copied,
        service_account_token: token,
    };
    let rendered = template::render(&opt.template, &template::Values::new(env, &inputs));
    let checked = template::check(&rendered, &opt.template_source)?;
    wants.push(Want {
        place: Place::Conf,
        name: opt.conf_name.clone(),
        sha256: files::sha256_bytes(rendered.as_bytes()),
        size: rendered.len() as u64,
        content: Content::Bytes(rendered.into_bytes()),
        mode: 0o644,
        verify_as: None,
    });

    // UPDATE_CNI_BINARIES=false: binaries already there stay as they are.
    let mut carried = Vec::new();
    if !opt.update_binaries {
        let mut kept = Vec::new();
        for w in wants {
            let target = places.path(w.place, &w.name);
            if w.place == Place::Bin && std::fs::symlink_metadata(&target).is_ok() {
                lines.push(line(
                    Action::Skipped("exists and UPDATE_CNI_BINARIES=false".into()),
                    target,
                ));
                carried.extend(old.entry(Place::Bin, &w.name).cloned());
            } else {
                kept.push(w);
            }
        }
        wants = kept;
    }

    // Directories, staging, verification: undone on any failure.
    let mut created = Vec::new();
    let mut staged: Vec<(usize, PathBuf)> = Vec::new();
    let result = stage_all(
        &places,
        s,
        &wants,
        &checked.cni_version,
        &mut hashes,
        &mut created,
        &mut staged,
    );
    if let Err(e) = result {
        for (_, tmp) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
        for d in created.iter().rev() {
            let _ = std::fs::remove_dir(places.path(d.place, &d.name));
        }
        return Err(e);
    }

    // Commit: rename every staged file over its target.
    let mut touched_dirs = Vec::new();
    for (i, w) in wants.iter().enumerate() {
        let target = places.path(w.place, &w.name);
        match staged.iter().find(|(j, _)| *j == i) {
            Some((_, tmp)) => {
                files::commit(tmp, &target)?;
                if let Some(d) = target.parent() {
                    touched_dirs.push(d.to_path_buf());
                }
                lines.push(line(Action::Installed, target));
            }
            None => lines.push(line(Action::Unchanged, target)),
        }
    }

    // What an earlier install wrote and this one does not: removed if still as written.
    let mut entries: Vec<Entry> = wants.iter().map(Want::entry).collect();
    entries.extend(carried);
    for e in &old.files {
        if !entries.iter().any(|n| n.place == e.place && n.name == e.name) {
            lines.extend(remove_if_ours(&places, e, &mut hashes)?);
        }
    }
    if let Some(old_name) = &opt.old_conf_name
        && *old_name != opt.conf_name
    {
        // Calico removes CNI_OLD_CONF_NAME unconditionally; here only when asked for by name.
        let p = places.path(Place::Conf, old_name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io("remove CNI_OLD_CONF_NAME", &p, e))?;
            lines.push(line(Action::Removed, p));
        }
    }
    touched_dirs.sort();
    touched_dirs.dedup();
    for d in &touched_dirs {
        files::sync_dir(d);
    }

    // The record, written only when it changed.
    let mut dirs = old.created_dirs.clone();
    dirs.extend(created);
    let record = Record {
        files: entries,
        created_dirs: dirs,
    };
    let bytes = record.to_bytes();
    let rec_path = places.path(Place::Conf, RECORD_NAME);
    if std::fs::read(&rec_path).ok().as_deref() != Some(&bytes[..]) {
        let tmp = files::stage_bytes(&rec_path, &bytes, 0o644)?;
        files::commit(&tmp, &rec_path)?;
        files::sync_dir(&s.conf_dir);
    }
    Ok(lines)
}

fn extra_plugins(
    dir: &Path,
    opt: &Options,
    places: &Places,
    lines: &mut Vec<Line>,
    hashes: &mut files::Hashes,
) -> Result<Vec<Want>, Error> {
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("read --extra-plugins-dir", dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    let mut wants = Vec::new();
    for (name, path) in names {
        let target = places.path(Place::Bin, &name);
        if opt.skip.contains(&name) {
            lines.push(line(Action::Skipped("in SKIP_CNI_BINARIES".into()), target));
            continue;
        }
        if PLUGIN_NAMES.contains(&name.as_str()) || name.starts_with('.') {
            lines.push(line(
                Action::Skipped(format!(
                    "{} would replace a name Brindle installs",
                    path.display()
                )),
                target,
            ));
            continue;
        }
        let md = std::fs::metadata(&path).map_err(|e| Error::io("inspect", &path, e))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777;
        wants.push(Want {
            place: Place::Bin,
            name,
            sha256: hashes.of(&path, &md)?,
            size: md.len(),
            content: Content::File(path),
            mode,
            verify_as: None,
        });
    }
    Ok(wants)
}

/// Creates missing directories, stages every changed file, and makes every plugin name answer
/// VERSION (from its staged copy, or its installed one when unchanged).
fn stage_all(
    places: &Places,
    s: &Settings,
    wants: &[Want],
    cni_version: &str,
    hashes: &mut files::Hashes,
    created: &mut Vec<Dir>,
    staged: &mut Vec<(usize, PathBuf)>,
) -> Result<(), Error> {
    for place in [Place::Bin, Place::Conf] {
        if !files::create_dirs(places.dir(place), 0o755)?.is_empty() {
            created.push(Dir {
                place,
                name: String::new(),
            });
        }
    }
    if wants.iter().any(|w| w.name.starts_with(&format!("{TLS_DIR}/"))) {
        let tls = places.path(Place::Conf, TLS_DIR);
        if !files::create_dirs(&tls, 0o700)?.is_empty() {
            created.push(Dir {
                place: Place::Conf,
                name: TLS_DIR.into(),
            });
        }
    }
    let mut binary_copy: Option<PathBuf> = None;
    for (i, w) in wants.iter().enumerate() {
        let target = places.path(w.place, &w.name);
        if let files::Current::File { sha256, mode } = files::current(&target, Some(w.size), hashes)?
            && sha256 == w.sha256
            && mode == w.mode
        {
            continue;
        }
        let tmp = match &w.content {
            Content::File(src) if *src == s.source => match &binary_copy {
                Some(first) => files::stage_link(first, &target, w.mode)?,
                None => {
                    let t = files::stage_copy(src, &target, w.mode)?;
                    binary_copy = Some(t.clone());
                    t
                }
            },
            Content::File(src) => files::stage_copy(src, &target, w.mode)?,
            Content::Bytes(b) => files::stage_bytes(&target, b, w.mode)?,
        };
        staged.push((i, tmp));
    }
    for (i, w) in wants.iter().enumerate() {
        let Some(name) = w.verify_as else { continue };
        let path = staged
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| places.path(w.place, &w.name));
        answers_version(&path, name, cni_version)?;
    }
    Ok(())
}
