//! `version`: calicoctl's lines (`Client Version:`, `Git commit:`, `Cluster Version:`,
//! `Cluster Type:`), the cluster ones from ClusterInformation `default`.

use anyhow::{Result, anyhow};
use brindle_model::{Kind, Resource};

use crate::args::{DatastoreArgs, VersionArgs};

/// The client version, as `v<crate version>`.
pub fn client_version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

pub fn version(ds: &DatastoreArgs, a: &VersionArgs) -> Result<()> {
    // Go's Println puts a space between its operands: "Client Version:   " + " " + version.
    println!("Client Version:    {}", client_version());
    println!("Git commit:        {}", env!("BRINDLE_GIT_COMMIT"));
    if a.client {
        return Ok(());
    }
    let client = match crate::connect::open(ds, crate::connect::Access::ReadOnly) {
        Ok(c) => c,
        Err(e) => {
            println!("Unable to detect installed Calico version");
            return Err(e);
        }
    };
    match client.get(Kind::ClusterInformation, "", "default") {
        Ok(Some(Resource::ClusterInformation(ci))) => {
            println!("Cluster Version:   {}", ci.spec.calico_version);
            println!("Cluster Type:      {}", ci.spec.cluster_type);
            Ok(())
        }
        Ok(_) => Err(anyhow!(
            "unable to retrieve Cluster Version or Type: resource does not exist: ClusterInformation(default) with error: <nil>"
        )),
        Err(e) => Err(anyhow!("unable to retrieve Cluster Version or Type: {e}")),
    }
}
