//! Typed reads and compare-and-swap writes of the IPAM objects over the [`Datastore`] trait.
//! Every write names the revision it was based on; a conflict comes back as an error the
//! retry loops recognise ([`IpamError::is_conflict`]).

use brindle_datastore::{Datastore, Revision};
use ipnet::IpNet;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::block::{AllocationBlock, BlockOps};
use crate::cidr::Family;
use crate::config::IpamConfig;
use crate::error::{IpamError, Result};
use crate::handle::IpamHandle;
use crate::keys::{self, parse_affinity};
use brindle_model::ipam::BlockAffinity;

/// A value and the revision it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub rev: Revision,
}

/// Typed IPAM access to a datastore.
#[derive(Clone, Copy)]
pub(crate) struct Kv<'a> {
    pub ds: &'a dyn Datastore,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| IpamError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("IPAM objects always serialise")
}

impl<'a> Kv<'a> {
    pub fn new(ds: &'a dyn Datastore) -> Self {
        Kv { ds }
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Versioned<T>>> {
        match self.ds.get(key)? {
            None => Ok(None),
            Some(kv) => Ok(Some(Versioned {
                value: decode(key, &kv.value)?,
                rev: kv.revision,
            })),
        }
    }

    // --- blocks ---

    pub fn get_block(&self, cidr: &IpNet) -> Result<Option<Versioned<AllocationBlock>>> {
        let key = keys::block_key(cidr);
        let got: Option<Versioned<AllocationBlock>> = self.get(&key)?;
        if let Some(b) = &got
            && b.value.cidr != *cidr
        {
            return Err(IpamError::Corrupt {
                key,
                detail: format!("block holds cidr {}", b.value.cidr),
            });
        }
        Ok(got)
    }

    pub fn create_block(&self, b: &AllocationBlock) -> Result<Revision> {
        Ok(self.ds.create(&keys::block_key(&b.cidr), &encode(b))?)
    }

    /// Writes a block read at `rev`. Bumps its sequence number first, as every block write
    /// must.
    pub fn update_block(&self, b: &mut AllocationBlock, rev: Revision) -> Result<Revision> {
        b.bump_sequence();
        Ok(self.ds.update(&keys::block_key(&b.cidr), &encode(b), rev)?)
    }

    pub fn delete_block(&self, cidr: &IpNet, rev: Revision) -> Result<()> {
        self.ds.delete(&keys::block_key(cidr), Some(rev))?;
        Ok(())
    }

    /// Every block of a family, sorted by key.
    pub fn list_blocks(&self, family: Family) -> Result<Vec<Versioned<AllocationBlock>>> {
        let listing = self.ds.list(&keys::block_prefix(family.version()))?;
        listing
            .items
            .into_iter()
            .map(|kv| {
                Ok(Versioned {
                    value: decode(&kv.key, &kv.value)?,
                    rev: kv.revision,
                })
            })
            .collect()
    }

    /// Every block of both families.
    pub fn list_all_blocks(&self) -> Result<Vec<Versioned<AllocationBlock>>> {
        let mut v = self.list_blocks(Family::V4)?;
        v.extend(self.list_blocks(Family::V6)?);
        Ok(v)
    }

    // --- affinities ---

    pub fn get_affinity(&self, host: &str, cidr: &IpNet) -> Result<Option<Versioned<BlockAffinity>>> {
        let key = keys::affinity_key(host, cidr);
        match self.ds.get(&key)? {
            None => Ok(None),
            Some(kv) => Ok(Some(Versioned {
                value: BlockAffinity::from_stored(&kv.value).map_err(|e| IpamError::Corrupt {
                    key,
                    detail: e.to_string(),
                })?,
                rev: kv.revision,
            })),
        }
    }

    pub fn create_affinity(&self, host: &str, cidr: &IpNet, a: &BlockAffinity) -> Result<Revision> {
        Ok(self.ds.create(&keys::affinity_key(host, cidr), &encode(a))?)
    }

    pub fn update_affinity(
        &self,
        host: &str,
        cidr: &IpNet,
        a: &BlockAffinity,
        rev: Revision,
    ) -> Result<Revision> {
        Ok(self.ds.update(&keys::affinity_key(host, cidr), &encode(a), rev)?)
    }

    pub fn delete_affinity(&self, host: &str, cidr: &IpNet, rev: Revision) -> Result<()> {
        self.ds.delete(&keys::affinity_key(host, cidr), Some(rev))?;
        Ok(())
    }

    /// The blocks a node holds affinities for (any state), sorted by key.
    pub fn list_affinities(
        &self,
        host: &str,
        family: Family,
    ) -> Result<Vec<(IpNet, Versioned<BlockAffinity>)>> {
        let listing = self.ds.list(&keys::affinity_prefix(host, family.version()))?;
        affinities_from(listing.items)
    }

    /// Every affinity of every node: (node, block, affinity).
    pub fn list_all_affinities(&self) -> Result<Vec<(String, IpNet, Versioned<BlockAffinity>)>> {
        let listing = self.ds.list(keys::all_affinities_prefix())?;
        let mut out = Vec::with_capacity(listing.items.len());
        for kv in listing.items {
            let Some((host, cidr)) = parse_affinity(&kv.key) else {
                continue; // not a block affinity (Calico keeps nothing else there today)
            };
            let value = BlockAffinity::from_stored(&kv.value).map_err(|e| IpamError::Corrupt {
                key: kv.key.clone(),
                detail: e.to_string(),
            })?;
            out.push((
                host,
                cidr,
                Versioned {
                    value,
                    rev: kv.revision,
                },
            ));
        }
        Ok(out)
    }

    // --- handles ---

    pub fn get_handle(&self, id: &str) -> Result<Option<Versioned<IpamHandle>>> {
        self.get(&keys::handle_key(id))
    }

    pub fn create_handle(&self, id: &str, h: &IpamHandle) -> Result<Revision> {
        Ok(self.ds.create(&keys::handle_key(id), &encode(h))?)
    }

    pub fn update_handle(&self, id: &str, h: &IpamHandle, rev: Revision) -> Result<Revision> {
        Ok(self.ds.update(&keys::handle_key(id), &encode(h), rev)?)
    }

    pub fn delete_handle(&self, id: &str, rev: Revision) -> Result<()> {
        self.ds.delete(&keys::handle_key(id), Some(rev))?;
        Ok(())
    }

    /// Every handle: (id, value, revision).
    pub fn list_handles(&self) -> Result<Vec<(String, Versioned<IpamHandle>)>> {
        let prefix = keys::HANDLE_PREFIX;
        let listing = self.ds.list(prefix)?;
        listing
            .items
            .into_iter()
            .map(|kv| {
                let id = kv.key[prefix.len()..].to_string();
                Ok((
                    id,
                    Versioned {
                        value: decode(&kv.key, &kv.value)?,
                        rev: kv.revision,
                    },
                ))
            })
            .collect()
    }

    // --- config ---

    /// The IPAM configuration, created with Calico's defaults if there is none yet.
    pub fn get_or_create_config(&self) -> Result<Versioned<IpamConfig>> {
        for _ in 0..5 {
            if let Some(c) = self.get(keys::IPAM_CONFIG_KEY)? {
                return Ok(c);
            }
            let def = IpamConfig::default();
            match self.ds.create(keys::IPAM_CONFIG_KEY, &encode(&def)) {
                Ok(rev) => return Ok(Versioned { value: def, rev }),
                Err(e) if e.is_conflict() => continue, // another node created it first
                Err(e) => return Err(e.into()),
            }
        }
        Err(IpamError::MaxRetries {
            what: "creating the IPAM configuration".into(),
        })
    }

    pub fn update_config(&self, c: &IpamConfig, rev: Revision) -> Result<Revision> {
        Ok(self.ds.update(keys::IPAM_CONFIG_KEY, &encode(c), rev)?)
    }
}

/// The IPAM configuration from its stored row.
pub(crate) fn decode_config(kv: &brindle_datastore::KeyValue) -> Result<IpamConfig> {
    decode(&kv.key, &kv.value)
}

/// A node's affinities from their listed rows (see [`Kv::list_affinities`]).
pub(crate) fn affinities_from(
    items: Vec<brindle_datastore::KeyValue>,
) -> Result<Vec<(IpNet, Versioned<BlockAffinity>)>> {
    let mut out = Vec::with_capacity(items.len());
    for kv in items {
        let Some((_, cidr)) = parse_affinity(&kv.key) else {
            return Err(IpamError::Corrupt {
                key: kv.key,
                detail: "not an affinity key".into(),
            });
        };
        let value = BlockAffinity::from_stored(&kv.value).map_err(|e| IpamError::Corrupt {
            key: kv.key.clone(),
            detail: e.to_string(),
        })?;
        out.push((
            cidr,
            Versioned {
                value,
                rev: kv.revision,
            },
        ));
    }
    Ok(out)
}
