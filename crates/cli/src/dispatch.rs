//! What the binary does depending on how it is called:
//!
//! | called as | does |
//! |---|---|
//! | `brindle-ipam` or `calico-ipam` (argv[0]) | the CNI IPAM plugin |
//! | `calico` (argv[0]), or anything with `CNI_COMMAND` set | the CNI plugin (`calico -v` prints the version, as Calico's plugin does) |
//! | `brindle` or `calicoctl` | the CLI (the same commands and output either way) |

use std::ffi::OsStr;
use std::path::Path;

/// The face the binary takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// The CNI IPAM plugin (`type: brindle-ipam`).
    CniIpam,
    /// The CNI plugin (`type: brindle`).
    Cni,
    /// The CLI, also when called as `calicoctl`.
    Cli,
}

/// Decides from argv[0] and whether `CNI_COMMAND` is set.
pub fn face(argv0: Option<&OsStr>, cni_command_set: bool) -> Face {
    let base = argv0
        .and_then(|a| Path::new(a).file_name())
        .and_then(OsStr::to_str)
        .unwrap_or("brindle");
    if base == "brindle-ipam" || base == "calico-ipam" {
        Face::CniIpam
    } else if cni_command_set || base == "calico" {
        Face::Cni
    } else {
        Face::Cli
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces() {
        assert_eq!(face(Some(OsStr::new("/usr/bin/calicoctl")), false), Face::Cli);
        assert_eq!(face(Some(OsStr::new("brindle")), false), Face::Cli);
        assert_eq!(face(Some(OsStr::new("/opt/cni/bin/brindle")), true), Face::Cni);
        assert_eq!(
            face(Some(OsStr::new("/opt/cni/bin/brindle-ipam")), true),
            Face::CniIpam
        );
        assert_eq!(face(Some(OsStr::new("calico-ipam")), false), Face::CniIpam);
        assert_eq!(face(Some(OsStr::new("/opt/cni/bin/calico")), false), Face::Cni);
        assert_eq!(face(None, false), Face::Cli);
    }
}
