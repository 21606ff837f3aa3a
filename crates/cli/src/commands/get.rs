//! `get`: one table (or YAML/JSON document) per result, as calicoctl prints them. Listing a kind
//! gives one `…List` result; each name asked for gives one result.

use anyhow::{Result, anyhow};
use brindle_model::numorstring::AsNumber;
use brindle_model::{Kind, Resource, ResourceList};
use serde_json::Value;

use super::{Selection, load_file, namespace_for, parse_kind};
use crate::args::{GetArgs, Output};
use crate::client::Client;
use crate::columns::{self, Context};
use crate::output::{json, yaml};

/// One thing calicoctl prints: a single resource or a list.
enum Found {
    One(Box<Resource>),
    List(ResourceList),
}

impl Found {
    fn kind(&self) -> Kind {
        match self {
            Found::One(r) => r.kind(),
            Found::List(l) => l.kind,
        }
    }

    fn items(&self) -> Vec<Resource> {
        match self {
            Found::One(r) => vec![(**r).clone()],
            Found::List(l) => l.items.clone(),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Found::One(r) => r.to_value(),
            Found::List(l) => serde_json::to_value(l).expect("lists serialise"),
        }
    }
}

/// `--export`: what calicoctl strips from a named resource.
fn export(r: &mut Resource) {
    let m = r.metadata_mut();
    m.namespace.clear();
    m.uid.clear();
    m.resource_version.clear();
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
}

fn global_as(client: &Client) -> Option<AsNumber> {
    match client.get(Kind::BGPConfiguration, "", "default") {
        Ok(Some(Resource::BGPConfiguration(b))) => Some(b.spec.effective_as_number()),
        _ => None,
    }
}

/// calicoctl lists tiers by order, those without one last (a stable sort: ties stay by name).
fn sort_tiers(items: &mut [Resource]) {
    let order = |r: &Resource| match r {
        Resource::Tier(t) => t.spec.order,
        _ => None,
    };
    items.sort_by(|a, b| match (order(a), order(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

pub fn get(client: &Client, a: &GetArgs) -> Result<()> {
    super::recursive_needs_file(a.recursive, &a.filename)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let (selection, list_kind) = match (&a.filename, &a.kind) {
        (Some(f), _) => (Selection::from_resources(load_file(f, a.recursive, &a.ns)?), None),
        (None, Some(k)) if a.names.is_empty() => {
            let kind = parse_kind(k)?;
            (Selection { items: Vec::new() }, Some(kind))
        }
        (None, Some(k)) => (Selection::from_args(k, &a.names, &a.ns, true)?, None),
        (None, None) => return Err(anyhow!("no resources specified")),
    };
    if let Some(kind) = list_kind {
        let ns = namespace_for(kind, "", &a.ns)?;
        let ns = (kind.namespaced() && !ns.is_empty()).then_some(ns);
        let mut listed = client
            .list(kind, ns.as_deref())
            .map_err(|e| anyhow!("failed to get resources: {e}"))?;
        // Rows that do not decode are left out of the output and named on stderr, and the
        // command fails (calicoctl's exit code for a partial result); `delete` removes them.
        for bad in &listed.undecodable {
            errors.push(format!(
                "{}: {} (delete it with: delete {} {})",
                bad.identifier,
                bad.error,
                kind.name(),
                name_of(&bad.identifier)
            ));
        }
        if kind == Kind::Tier {
            sort_tiers(&mut listed.items);
        }
        found.push(Found::List(ResourceList {
            kind,
            resource_version: listed.revision.to_string(),
            items: listed.items,
        }));
    }
    for n in &selection.items {
        let (kind, ns, name) = (&n.kind, &n.namespace, &n.name);
        if a.ns.all_namespaces && kind.namespaced() {
            return Err(anyhow!(
                "cannot use --all-namespace flag for getting a single resource"
            ));
        }
        match client.must_get(*kind, ns, name) {
            Ok(mut r) => {
                if a.export {
                    export(&mut r);
                }
                found.push(Found::One(Box::new(r)));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    print(client, a, &found)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(errors.join("\n")))
    }
}

/// The name (with `-n NAMESPACE` for a namespaced one) in `Kind(name)` / `Kind(ns/name)`.
fn name_of(identifier: &str) -> String {
    let inner = identifier
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(identifier);
    match inner.split_once('/') {
        Some((ns, name)) => format!("{name} -n {ns}"),
        None => inner.to_string(),
    }
}

fn print(client: &Client, a: &GetArgs, found: &[Found]) -> Result<()> {
    // calicoctl's --skip-empty: no headings or empty list when nothing was found.
    if a.skip_empty && found.iter().all(|f| f.items().is_empty()) {
        return Ok(());
    }
    match &a.output {
        Output::Name => {
            let mut text = String::new();
            for r in found.iter().flat_map(Found::items) {
                let kind = r.kind().name().to_ascii_lowercase();
                text.push_str(&format!("{kind}/{}\n", r.metadata().name));
            }
            print!("{text}");
        }
        Output::Yaml | Output::Json => {
            if found.is_empty() {
                return Ok(());
            }
            let v = if found.len() == 1 {
                found[0].to_value()
            } else {
                Value::Array(found.iter().map(Found::to_value).collect())
            };
            if a.output == Output::Yaml {
                print!("{}", yaml::to_yaml(&v));
            } else {
                print!("{}", json::to_json(&v));
            }
        }
        out => {
            let mut text = String::new();
            for f in found {
                let kind = f.kind();
                let heads: Vec<String> = match out {
                    Output::CustomColumns(spec) => {
                        columns::custom_headings(kind, spec).map_err(|e| anyhow!(e))?
                    }
                    _ => columns::headings(kind, *out == Output::Wide)
                        .iter()
                        .map(|h| h.to_string())
                        .collect(),
                };
                let ctx = Context {
                    global_as: if kind == Kind::Node && heads.iter().any(|h| h == "ASN") {
                        global_as(client)
                    } else {
                        None
                    },
                };
                text.push_str(&columns::table(
                    kind,
                    &heads,
                    &f.items(),
                    a.ns.all_namespaces,
                    ctx,
                ));
            }
            print!("{text}");
        }
    }
    Ok(())
}
