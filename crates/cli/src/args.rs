//! The command line (clap), calicoctl's commands and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Where calicoctl looks for its connection settings.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/calico/calicoctl.cfg";

#[derive(Debug, Parser)]
#[command(
    name = "brindle",
    version,
    about = "Calico-style pod networking in one binary: calicoctl-compatible CLI, node agent, CNI plugin, lab",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub datastore: DatastoreArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Datastore selection. Flags win over the connection file, which wins over the environment
/// (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`,
/// `BRINDLE_DATASTORE_TYPE`, `BRINDLE_DATASTORE_PATH`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Datastore options (every command)")]
pub struct DatastoreArgs {
    /// Datastore type [env: BRINDLE_DATASTORE_TYPE, DATASTORE_TYPE] [default: sqlite, or
    /// etcdv3 when etcd endpoints are set]
    #[arg(long, global = true, value_name = "TYPE", value_parser = ["sqlite", "etcdv3"])]
    pub datastore_type: Option<String>,
    /// SQLite database file [env: BRINDLE_DATASTORE_PATH] [default: /var/lib/brindle/brindle.db]
    #[arg(long, global = true, value_name = "PATH")]
    pub datastore_path: Option<PathBuf>,
    /// Comma-separated etcd endpoints, http[s]://host:port [env: ETCD_ENDPOINTS]
    #[arg(long, global = true, value_name = "URLS")]
    pub etcd_endpoints: Option<String>,
    /// CA certificate (PEM) for etcd TLS [env: ETCD_CA_CERT_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate (PEM) for etcd TLS [env: ETCD_CERT_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub etcd_certfile: Option<PathBuf>,
    /// Client key (PEM) for etcd TLS [env: ETCD_KEY_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub etcd_keyfile: Option<PathBuf>,
    /// calicoctl's connection file (kind CalicoAPIConfig) [env: BRINDLE_CONFIG] [default:
    /// /etc/calico/calicoctl.cfg, when it exists]
    #[arg(short = 'c', long, global = true, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get resources by kind and name, or from a file.
    #[command(after_help = GET_EXAMPLES)]
    Get(GetArgs),
    /// Create resources, or replace them if they exist.
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(FileArgs),
    /// Create resources.
    #[command(after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
    /// Replace existing resources.
    #[command(after_help = REPLACE_EXAMPLES)]
    Replace(FileArgs),
    /// Delete resources by kind and name, or from a file.
    #[command(after_help = DELETE_EXAMPLES)]
    Delete(DeleteArgs),
    /// Patch a resource in place (JSON merge patch).
    #[command(after_help = PATCH_EXAMPLES)]
    Patch(PatchArgs),
    /// Add, change or remove a label of a resource.
    #[command(after_help = LABEL_EXAMPLES)]
    Label(LabelArgs),
    /// Check resources in a file without writing anything.
    Validate(FileArgs),
    /// Show the client and cluster versions.
    Version(VersionArgs),
    /// Run the node agent, or show its BGP status.
    #[command(subcommand)]
    Node(crate::commands::node::NodeCommand),
    /// Clusters of nodes in network namespaces on this machine (`brindle lab up`).
    #[command(subcommand)]
    Lab(crate::commands::lab::LabCommand),
    /// IP address management: show, check, release, configure.
    Ipam(crate::ipam::IpamArgs),
    /// Install the CNI plugin and its network configuration (Calico's install-cni).
    InstallCni(crate::commands::install_cni::InstallCniArgs),
    /// Print a shell completion script (bash, zsh, fish), e.g. `brindle completion bash >
    /// /etc/bash_completion.d/brindle`.
    Completion(crate::commands::completion::CompletionArgs),
    /// Write the man pages (brindle.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    GenerateMan(crate::commands::completion::GenerateManArgs),
}

/// A resource kind argument: any spelling (`IPPools`, `ipp`; checked by the command, which
/// names the kinds it takes), with the kinds' names as the possible values that `--help` and the
/// shell completions offer.
#[derive(Debug, Clone, Copy)]
pub struct KindParser;

fn kind_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        brindle_model::Kind::ALL
            .iter()
            .map(|k| &*k.name().to_ascii_lowercase().leak())
            .collect()
    })
}

impl clap::builder::TypedValueParser for KindParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            kind_names().iter().map(|n| clap::builder::PossibleValue::new(*n)),
        ))
    }
}

/// `-o` formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Ps,
    Wide,
    Yaml,
    Json,
    /// `kind/name` lines (kubectl's `-o name`).
    Name,
    CustomColumns(String),
}

fn parse_output(s: &str) -> Result<Output, String> {
    match s {
        "ps" => Ok(Output::Ps),
        "wide" => Ok(Output::Wide),
        "yaml" => Ok(Output::Yaml),
        "json" => Ok(Output::Json),
        "name" => Ok(Output::Name),
        _ => match s.strip_prefix("custom-columns=") {
            Some(cols) if !cols.is_empty() => Ok(Output::CustomColumns(cols.to_string())),
            _ => Err(format!(
                "unrecognized output format '{s}' (one of: ps, wide, yaml, json, name, custom-columns=A,B)"
            )),
        },
    }
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Resource kind (ippool, bgppeer, node, …; case-insensitive, plurals too) when not using -f.
    #[arg(required_unless_present = "filename", value_parser = KindParser)]
    pub kind: Option<String>,
    /// Names to get (all when none).
    pub names: Vec<String>,
    /// File (or - for stdin, or a directory of .yaml/.yml/.json files) naming the resources to
    /// get.
    #[arg(short, long, conflicts_with = "kind")]
    pub filename: Option<String>,
    /// With -f DIR: also the files in its subdirectories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Output format: ps, wide, yaml, json, name, custom-columns=A,B.
    #[arg(short, long, default_value = "ps", value_parser = parse_output)]
    pub output: Output,
    /// Print nothing when there are no results (not even the table's headings).
    #[arg(long)]
    pub skip_empty: bool,
    #[command(flatten)]
    pub ns: NamespaceArgs,
    /// Strip uid, resourceVersion and creation time (with a name).
    #[arg(long)]
    pub export: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct NamespaceArgs {
    /// Namespace of namespaced resources (default: default).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// File to read, - for stdin, or a directory (its .yaml, .yml and .json files, sorted).
    #[arg(short, long, required = true)]
    pub filename: String,
    /// With -f DIR: also the files in its subdirectories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    #[command(flatten)]
    pub ns: NamespaceArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub file: FileArgs,
    /// Do not fail on resources that already exist.
    #[arg(long)]
    pub skip_exists: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Resource kind (case-insensitive, plurals too) when not using -f.
    #[arg(required_unless_present = "filename", value_parser = KindParser)]
    pub kind: Option<String>,
    /// Names to delete.
    pub names: Vec<String>,
    /// File (or - for stdin, or a directory of .yaml/.yml/.json files) naming the resources to
    /// delete.
    #[arg(short, long, conflicts_with = "kind")]
    pub filename: Option<String>,
    /// With -f DIR: also the files in its subdirectories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Do not fail on resources that do not exist.
    #[arg(long)]
    pub skip_not_exists: bool,
    #[command(flatten)]
    pub ns: NamespaceArgs,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Resource kind (case-insensitive, plurals too).
    #[arg(value_parser = KindParser)]
    pub kind: String,
    pub name: String,
    /// The patch (JSON or YAML object).
    #[arg(short, long)]
    pub patch: String,
    /// strategic (default) or json; both merge objects and replace lists.
    #[arg(short = 't', long = "type", default_value = "strategic")]
    pub patch_type: String,
    #[command(flatten)]
    pub ns: NamespaceArgs,
}

const GET_EXAMPLES: &str = "Examples:
  # List the IP pools, with every column
  brindle get ippool -o wide

  # One pool as YAML, without uid, resourceVersion and creation time
  brindle get ippool default-pool -o yaml --export

  # The policies of every namespace, as kind/name lines
  brindle get networkpolicy -A -o name

  # The resources named in the manifests of a directory (and its subdirectories)
  brindle get -f ./manifests -R

  # Print nothing (not even headings) when there are no BGP peers
  brindle get bgppeer --skip-empty";

const APPLY_EXAMPLES: &str = "Examples:
  # Create or replace the resources of a file
  brindle apply -f pool.yaml

  # Every .yaml, .yml and .json file of a directory, sorted, subdirectories too
  brindle apply -f ./manifests -R

  # From stdin
  cat pool.yaml | brindle apply -f -";

const CREATE_EXAMPLES: &str = "Examples:
  # Create the resources of a file; fail on those that exist
  brindle create -f pool.yaml

  # Create what is missing, leave what exists
  brindle create -f ./manifests --skip-exists";

const REPLACE_EXAMPLES: &str = "Examples:
  # Replace existing resources (a resourceVersion in the file must be the current one)
  brindle replace -f pool.yaml";

const DELETE_EXAMPLES: &str = "Examples:
  # Delete a pool by name (its blocks and addresses are released)
  brindle delete ippool default-pool

  # Delete the resources of a directory's manifests; missing ones are not an error
  brindle delete -f ./manifests -R --skip-not-exists";

const PATCH_EXAMPLES: &str = "Examples:
  # Disable a pool
  brindle patch ippool default-pool -p '{\"spec\":{\"disabled\":true}}'

  # The same in YAML: turn NAT outgoing on
  brindle patch ippool default-pool -p 'spec: {natOutgoing: true}'";

const LABEL_EXAMPLES: &str = "Examples:
  # Label a workload endpoint
  brindle label workloadendpoints nginx --namespace=default app=web

  # Label a node and overwrite the original value of key 'cluster'
  brindle label nodes node1 cluster=frontend --overwrite

  # Remove label with key 'cluster' of the node
  brindle label nodes node1 cluster --remove";

/// `label <KIND> <NAME> (<key>=<value> [--overwrite] | <key> --remove) [-n NS]`.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// Resource kind (workloadendpoint, node, networkpolicy, …); case-insensitive, plurals too.
    #[arg(value_parser = KindParser)]
    pub kind: String,
    /// Resource name.
    pub name: String,
    /// `key=value` to set, or the key to remove with --remove.
    #[arg(value_name = "KEY=VALUE|KEY")]
    pub label: String,
    /// Overwrite the value when the key is already present.
    #[arg(long, conflicts_with = "remove")]
    pub overwrite: bool,
    /// Remove the key (an error when it is not there).
    #[arg(long)]
    pub remove: bool,
    /// Namespace of namespaced resources (NetworkPolicy, NetworkSet, WorkloadEndpoint;
    /// default: default).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only the client version.
    #[arg(long)]
    pub client: bool,
}
