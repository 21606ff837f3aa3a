//! Everything a deleted Node leaves behind, cleaned up as Calico's client does when a Node is
//! deleted (`clientv3 nodes.Delete`): the addresses of its WorkloadEndpoints and its tunnel
//! addresses are released and its block affinities given up (empty blocks deleted, used ones
//! orphaned), then its WorkloadEndpoints, its BGPPeers and its `node.<name>`
//! FelixConfiguration and BGPConfiguration are deleted. `brindle delete node` runs it before
//! deleting the Node; the IPAM garbage collector runs it for a Node deleted some other way.

use brindle_datastore::{Client, ResourceError};
use brindle_model::{Kind, Resource};

use crate::error::Result;
use crate::ipam::Ipam;
use crate::tunnel::NodeRelease;

/// What [`Ipam::clean_up_after_node`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NodeCleanup {
    pub released: NodeRelease,
    /// WorkloadEndpoints, BGPPeers and per-node configurations deleted.
    pub deleted: Vec<String>,
}

impl Ipam {
    /// Cleans up after `node` (which is being, or has been, deleted). Safe to repeat; what is
    /// already gone is skipped.
    pub fn clean_up_after_node(&self, node: &str) -> Result<NodeCleanup> {
        let released = self.release_node(node)?;
        let client = Client::new(self.ds.clone());
        let mut deleted = Vec::new();
        let mut delete = |kind: Kind, namespace: &str, name: &str| -> Result<()> {
            match client.delete(kind, namespace, name, "") {
                Ok(r) => {
                    deleted.push(r.identifier());
                    Ok(())
                }
                Err(ResourceError::NotFound(_)) => Ok(()),
                Err(e) => Err(e.into()),
            }
        };
        for w in client.list(Kind::WorkloadEndpoint, None)?.items {
            if let Resource::WorkloadEndpoint(w) = w
                && w.spec.node == node
            {
                delete(Kind::WorkloadEndpoint, &w.metadata.namespace, &w.metadata.name)?;
            }
        }
        for p in client.list(Kind::BGPPeer, None)?.items {
            if let Resource::BGPPeer(p) = p
                && p.spec.node == node
            {
                delete(Kind::BGPPeer, "", &p.metadata.name)?;
            }
        }
        let per_node = format!("node.{node}");
        delete(Kind::FelixConfiguration, "", &per_node)?;
        delete(Kind::BGPConfiguration, "", &per_node)?;
        Ok(NodeCleanup { released, deleted })
    }
}
