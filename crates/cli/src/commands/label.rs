//! `label <KIND> <NAME> key=value [--overwrite]` and `label <KIND> <NAME> key --remove`:
//! calicoctl's `label` command (`calicoctl/calicoctl/commands/label.go`), its flags and its
//! messages, which name the kind as the user typed it (`workloadendpoints nginx`).
//!
//! The labelled resource is read, changed and written back with its `resourceVersion`, so a
//! concurrent change makes the label fail rather than be lost. Where calicoctl only says
//! `failed to update …, label not changed`, Brindle adds the reason on the next line. A
//! namespace given to a kind that has none is refused as `get` refuses it (calicoctl reports
//! "not found").

use anyhow::{Result, bail};

use super::{namespace_for, parse_kind, refuse_kubernetes_policy};
use crate::args::{LabelArgs, NamespaceArgs};
use crate::client::Client;

/// What `label` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set {
        key: String,
        value: String,
        overwrite: bool,
    },
    Remove {
        key: String,
    },
}

impl Change {
    /// calicoctl's reading of the label argument: `key=value` (exactly one `=`), or the key.
    pub fn parse(arg: &str, remove: bool, overwrite: bool) -> Result<Change> {
        if remove {
            return Ok(Change::Remove { key: arg.to_string() });
        }
        match arg.split('=').collect::<Vec<_>>().as_slice() {
            [key, value] => Ok(Change::Set {
                key: key.to_string(),
                value: value.to_string(),
                overwrite,
            }),
            _ => bail!("invalid label {arg}"),
        }
    }
}

pub fn label(client: &Client, a: &LabelArgs) -> Result<()> {
    let change = Change::parse(&a.label, a.remove, a.overwrite)?;
    let (what, name) = (&a.kind, &a.name);
    let kind = match parse_kind(what) {
        Ok(k) => k,
        Err(e) => bail!("failed to get {what} {name}, error {e}"),
    };
    let ns_args = NamespaceArgs {
        namespace: a.namespace.clone(),
        all_namespaces: false,
    };
    let ns = namespace_for(kind, "", &ns_args)?;
    let mut r = match client.get(kind, &ns, name) {
        Ok(Some(r)) => r,
        Ok(None) => bail!("{what} {name} not found"),
        Err(e) => bail!("failed to get {what} {name}, error {e}"),
    };
    let labels = &mut r.metadata_mut().labels;
    let done = match &change {
        Change::Remove { key } => {
            if labels.remove(key).is_none() {
                bail!("cannot remove label of {what} {name}, key {key} does not exist");
            }
            format!("Successfully removed label {key} from {what} {name}")
        }
        Change::Set {
            key,
            value,
            overwrite,
        } => match labels.get(key) {
            Some(old) if *overwrite || old == value => {
                labels.insert(key.clone(), value.clone());
                format!("Successfully updated label {key} on {what} {name}")
            }
            Some(_) => bail!(
                "failed to update label of {what} {name}, key {key} is already present. please use '--overwrite' to set a new value"
            ),
            None => {
                labels.insert(key.clone(), value.clone());
                format!("Successfully set label {key} on {what} {name}")
            }
        },
    };
    let written = refuse_kubernetes_policy(kind, &ns, name, "apply or replace")
        .and_then(|()| client.update(&r).map(|_| ()).map_err(|e| e.to_string()));
    if let Err(cause) = written {
        bail!("failed to update {what} {name}, label not changed\n{cause}");
    }
    println!("{done}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_arguments_as_calicoctl_reads_them() {
        assert_eq!(
            Change::parse("app=web", false, false).unwrap(),
            Change::Set {
                key: "app".into(),
                value: "web".into(),
                overwrite: false
            }
        );
        assert_eq!(
            Change::parse("app=", false, true).unwrap(),
            Change::Set {
                key: "app".into(),
                value: String::new(),
                overwrite: true
            }
        );
        assert_eq!(
            Change::parse("app", true, false).unwrap(),
            Change::Remove { key: "app".into() }
        );
        for bad in ["app", "a=b=c", ""] {
            assert_eq!(
                Change::parse(bad, false, false).unwrap_err().to_string(),
                format!("invalid label {bad}")
            );
        }
    }
}
