//! Local endpoints' output: per direction the tiers that apply, in order, each with its
//! policies in order, then the profiles (`felix/calc/policy_sorter.go` `TierLess`,
//! `PolKVLess`; `event_sequencer.go` `tierInfoToProtoTierInfo`).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::calc::PolicyCalculator;
use crate::calc::inputs::{ItemKey, builtin_tier};
use crate::calc::owners::PolicyMeta;
use crate::ir::{Direction, Endpoint, EndpointDirection, EndpointKey, TierDefault, TierPolicies};

/// A tier's place: valid tiers (ones that exist) first, then by order (none last), then name.
#[derive(Debug, Clone, PartialEq)]
struct TierRank<'a> {
    valid: bool,
    order: Option<f64>,
    name: &'a str,
}

fn cmp_order(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn cmp_tiers(a: &TierRank<'_>, b: &TierRank<'_>) -> Ordering {
    b.valid
        .cmp(&a.valid)
        .then_with(|| cmp_order(a.order, b.order))
        .then_with(|| a.name.cmp(b.name))
}

/// Policies in a tier: by order (none last), ties by the text `<name>/<namespace>/<kind>`
/// (v3.32), compared without building it.
fn cmp_policies(a: &PolicyMeta, b: &PolicyMeta) -> Ordering {
    fn tie(m: &PolicyMeta) -> impl Iterator<Item = u8> + '_ {
        let id = &m.id;
        id.name
            .bytes()
            .chain([b'/'])
            .chain(id.namespace.bytes())
            .chain([b'/'])
            .chain(id.kind.name().bytes())
    }
    cmp_order(a.order, b.order).then_with(|| tie(a).cmp(tie(b)))
}

impl PolicyCalculator {
    /// Notes that a local endpoint's output may have changed.
    pub(crate) fn touch_endpoint(&mut self, item: u32) {
        self.pending.endpoint_items.insert(item);
    }

    /// Notes the key of an endpoint that is going away (its handle may be reused).
    pub(crate) fn touch_removed_endpoint(&mut self, item: u32) {
        if let Some(ItemKey::Endpoint(key)) = self.items.key(item) {
            self.pending.endpoints.insert(key.clone());
        }
    }

    /// The endpoints touched since the last flush.
    pub(crate) fn pending_endpoint_keys(&self) -> BTreeSet<EndpointKey> {
        let mut keys = self.pending.endpoints.clone();
        for item in &self.pending.endpoint_items {
            if let Some(ItemKey::Endpoint(key)) = self.items.key(*item) {
                keys.insert(key.clone());
            }
        }
        keys
    }

    pub(crate) fn touch_all_local_endpoints(&mut self) {
        let items: Vec<u32> = self.local_items.iter().copied().collect();
        for i in items {
            self.touch_endpoint(i);
        }
    }

    fn tier_rank<'a>(&'a self, name: &'a str) -> (TierRank<'a>, TierDefault) {
        if let Some(t) = self.tiers.get(name) {
            return (
                TierRank {
                    valid: true,
                    order: t.order,
                    name,
                },
                t.default_action,
            );
        }
        match builtin_tier(name) {
            Some((order, default)) => (
                TierRank {
                    valid: true,
                    order,
                    name,
                },
                default,
            ),
            // A policy naming a tier that does not exist is still enforced: the tier goes
            // after all others and denies at its end.
            None => (
                TierRank {
                    valid: false,
                    order: None,
                    name,
                },
                TierDefault::Deny,
            ),
        }
    }

    fn direction_output(&self, item: u32, direction: Direction, profiles: &[String]) -> EndpointDirection {
        let mut policies: Vec<&PolicyMeta> = self
            .local_index
            .item_matches(item)
            .filter_map(|p| self.policies.get(p))
            .map(|p| &p.meta)
            .filter(|m| match direction {
                Direction::Ingress => m.ingress,
                Direction::Egress => m.egress,
            })
            .collect();
        policies.sort_by(|a, b| {
            let (ta, _) = self.tier_rank(&a.tier);
            let (tb, _) = self.tier_rank(&b.tier);
            cmp_tiers(&ta, &tb).then_with(|| cmp_policies(a, b))
        });
        let mut tiers: Vec<TierPolicies> = Vec::new();
        for m in policies {
            match tiers.last_mut() {
                Some(t) if t.name == m.tier => t.policies.push(m.id.clone()),
                _ => tiers.push(TierPolicies {
                    name: m.tier.clone(),
                    default_action: self.tier_rank(&m.tier).1,
                    policies: vec![m.id.clone()],
                }),
            }
        }
        EndpointDirection {
            tiers,
            profiles: profiles.to_vec(),
        }
    }

    /// A local endpoint's output now; `None` when there is no such local endpoint.
    pub(crate) fn endpoint_output(&self, key: &EndpointKey) -> Option<Endpoint> {
        let idx = self.items.id(&ItemKey::Endpoint(key.clone()))?;
        let data = self.items.get(idx)?;
        let local = data.local.as_ref()?;
        Some(Endpoint {
            key: key.clone(),
            interface: local.interface.clone(),
            addrs: data.nets.clone(),
            allow_spoofed_sources: local.allow_spoofed_sources.clone(),
            ingress: self.direction_output(idx, Direction::Ingress, &data.profiles),
            egress: self.direction_output(idx, Direction::Egress, &data.profiles),
        })
    }

    /// The endpoint part of a delta; brings the endpoint outputs up to date.
    pub(crate) fn flush_endpoints(&mut self, delta: &mut crate::ir::Delta) {
        let pending = self.pending_endpoint_keys();
        self.pending.endpoints.clear();
        self.pending.endpoint_items.clear();
        for key in pending {
            match self.endpoint_output(&key) {
                Some(now) => {
                    if self.out_endpoints.get(&key).is_some_and(|old| **old == now) {
                        continue;
                    }
                    let now = Arc::new(now);
                    self.out_endpoints.insert(key, now.clone());
                    delta.endpoints_updated.push(now);
                }
                None => {
                    if self.out_endpoints.remove(&key).is_some() {
                        delta.endpoints_removed.push(key);
                    }
                }
            }
        }
    }
}
