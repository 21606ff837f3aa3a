//! A transaction on one table: messages encoded as they are added, each remembered with a
//! description so a refusal names the rule, chain or set it was about. [`super::Nft::commit`]
//! wraps them in `NFNL_MSG_BATCH_BEGIN`/`END` and the kernel applies all or nothing.

use super::attr::AttrWriter;
use super::elements::Elem;
use super::object::{ChainSpec, SetSpec, TableFamily};
use super::rule::Rule;
use super::sys::*;

/// Bytes of elements per `NEWSETELEM` message (nested attributes carry a 16-bit length).
const ELEMS_BYTES: usize = 48 * 1024;

pub(crate) struct Msg {
    pub start: usize,
    pub desc: String,
}

/// The messages of one transaction. Messages go to the current table ([`Batch::new`],
/// [`Batch::use_table`]); one transaction may span tables and families (`ip` and `ip6`).
pub struct Batch {
    family: TableFamily,
    table: String,
    pub(crate) buf: Vec<u8>,
    pub(crate) msgs: Vec<Msg>,
    next_set_id: u32,
}

impl Batch {
    pub fn new(family: TableFamily, table: &str) -> Batch {
        Batch {
            family,
            table: table.to_string(),
            buf: Vec::with_capacity(64 * 1024),
            msgs: Vec::new(),
            next_set_id: 1,
        }
    }

    /// Makes `family table` the table of the messages added from now on.
    pub fn use_table(&mut self, family: TableFamily, table: &str) {
        self.family = family;
        self.table = table.to_string();
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Encoded bytes so far.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The encoded messages (sequence numbers not yet filled in).
    pub fn buf_bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }

    /// The description of every message, in order (tests, logs).
    pub fn descriptions(&self) -> impl Iterator<Item = &str> {
        self.msgs.iter().map(|m| m.desc.as_str())
    }

    fn msg(&mut self, ty: u16, flags: u16, desc: String, body: impl FnOnce(&mut AttrWriter<'_>)) {
        let start = self.buf.len();
        // nlmsghdr (length and sequence number are filled in at commit) + nfgenmsg.
        self.buf.extend_from_slice(&[0; 4]);
        self.buf
            .extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | ty).to_ne_bytes());
        self.buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        self.buf.extend_from_slice(&[0; 8]);
        self.buf
            .extend_from_slice(&[self.family.code(), NFNETLINK_V0, 0, 0]);
        body(&mut AttrWriter::new(&mut self.buf));
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        self.msgs.push(Msg { start, desc });
    }

    /// A message naming one object of the table: `table_attr` = the table, `name_attr` = it.
    fn named(&mut self, ty: u16, verb: &str, table_attr: u16, name_attr: u16, name: &str) {
        let t = self.table.clone();
        let desc = format!("{verb} {} {name}", self.what());
        self.msg(ty, 0, desc, |w| {
            w.put_str(table_attr, &t);
            w.put_str(name_attr, name);
        });
    }

    fn what(&self) -> String {
        format!("{} {}", self.family, self.table)
    }

    /// `add table` (no error when it exists).
    pub fn add_table(&mut self) {
        let t = self.table.clone();
        self.msg(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            format!("add table {}", self.what()),
            |w| {
                w.put_str(NFTA_TABLE_NAME, &t);
                w.put_u32(NFTA_TABLE_FLAGS, 0);
            },
        );
    }

    /// `delete table` (refused when it does not exist: add it first in the same batch to
    /// delete it whether or not it exists).
    pub fn delete_table(&mut self) {
        let t = self.table.clone();
        self.msg(
            NFT_MSG_DELTABLE,
            0,
            format!("delete table {}", self.what()),
            |w| {
                w.put_str(NFTA_TABLE_NAME, &t);
            },
        );
    }

    /// `add chain` (no error when it exists with the same hook).
    pub fn add_chain(&mut self, c: &ChainSpec) {
        let t = self.table.clone();
        self.msg(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            format!("add chain {} {}", self.what(), c.name),
            |w| {
                w.put_str(NFTA_CHAIN_TABLE, &t);
                c.encode(w);
            },
        );
    }

    /// `flush chain`: deletes every rule of the chain.
    pub fn flush_chain(&mut self, chain: &str) {
        self.named(
            NFT_MSG_DELRULE,
            "flush chain",
            NFTA_RULE_TABLE,
            NFTA_RULE_CHAIN,
            chain,
        );
    }

    /// `delete chain` (it must hold no rules and no jumps may point at it).
    pub fn delete_chain(&mut self, chain: &str) {
        self.named(
            NFT_MSG_DELCHAIN,
            "delete chain",
            NFTA_CHAIN_TABLE,
            NFTA_CHAIN_NAME,
            chain,
        );
    }

    /// `add rule` at the end of `chain`.
    pub fn add_rule(&mut self, chain: &str, rule: &Rule) {
        let t = self.table.clone();
        let desc = format!("add rule {} {chain}: {}", self.what(), rule.text);
        self.msg(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, desc, |w| {
            w.put_str(NFTA_RULE_TABLE, &t);
            w.put_str(NFTA_RULE_CHAIN, chain);
            w.nest(NFTA_RULE_EXPRESSIONS, |w| {
                for e in &rule.exprs {
                    e.encode(w);
                }
            });
            if let Some(u) = rule.userdata() {
                w.put(NFTA_RULE_USERDATA, &u);
            }
        });
    }

    /// `delete rule … handle N`.
    pub fn delete_rule(&mut self, chain: &str, handle: u64) {
        let t = self.table.clone();
        self.msg(
            NFT_MSG_DELRULE,
            0,
            format!("delete rule {} {chain} handle {handle}", self.what()),
            |w| {
                w.put_str(NFTA_RULE_TABLE, &t);
                w.put_str(NFTA_RULE_CHAIN, chain);
                w.put_u64(NFTA_RULE_HANDLE, handle);
            },
        );
    }

    /// `add set` / `add map` (no error when it exists with the same type).
    pub fn add_set(&mut self, s: &SetSpec) {
        let t = self.table.clone();
        let id = self.next_set_id;
        self.next_set_id += 1;
        self.msg(
            NFT_MSG_NEWSET,
            NLM_F_CREATE,
            format!("add set {} {}", self.what(), s.name),
            |w| {
                w.put_str(NFTA_SET_TABLE, &t);
                s.encode(w, id);
            },
        );
    }

    /// `delete set` (no rule may refer to it).
    pub fn delete_set(&mut self, name: &str) {
        self.named(NFT_MSG_DELSET, "delete set", NFTA_SET_TABLE, NFTA_SET_NAME, name);
    }

    /// `flush set`: deletes every element.
    pub fn flush_set(&mut self, name: &str) {
        self.named(
            NFT_MSG_DELSETELEM,
            "flush set",
            NFTA_SET_ELEM_LIST_TABLE,
            NFTA_SET_ELEM_LIST_SET,
            name,
        );
    }

    /// `add element` (several messages when the list is long).
    pub fn add_elements(&mut self, set: &str, elems: &[Elem]) {
        self.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, "add element", set, elems);
    }

    /// `delete element` (each must exist).
    pub fn delete_elements(&mut self, set: &str, elems: &[Elem]) {
        self.elements(NFT_MSG_DELSETELEM, 0, "delete element", set, elems);
    }

    fn elements(&mut self, ty: u16, flags: u16, verb: &str, set: &str, elems: &[Elem]) {
        let mut i = 0;
        while i < elems.len() {
            let mut j = i;
            let mut bytes = 0;
            while j < elems.len() && (j == i || bytes + elems[j].encoded_len() < ELEMS_BYTES) {
                bytes += elems[j].encoded_len();
                j += 1;
            }
            let t = self.table.clone();
            let chunk = &elems[i..j];
            let desc = format!(
                "{verb} {} {set} ({} element{})",
                self.what(),
                chunk.len(),
                if chunk.len() == 1 { "" } else { "s" }
            );
            self.msg(ty, flags, desc, |w| {
                w.put_str(NFTA_SET_ELEM_LIST_TABLE, &t);
                w.put_str(NFTA_SET_ELEM_LIST_SET, set);
                w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                    for e in chunk {
                        e.encode(w);
                    }
                });
            });
            i = j;
        }
    }

    /// Appends every message of `other` (same table) after this batch's.
    pub fn append(&mut self, other: Batch) {
        let base = self.buf.len();
        self.buf.extend_from_slice(&other.buf);
        self.msgs.extend(other.msgs.into_iter().map(|m| Msg {
            start: m.start + base,
            desc: m.desc,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nftables::elements::interval_elems;
    use crate::nftables::object::DataType;

    #[test]
    fn long_element_lists_are_split_and_described() {
        let mut b = Batch::new(TableFamily::Inet, "brindle");
        b.add_table();
        b.add_set(&SetSpec::new("s", &[DataType::Ipv4Addr]).interval());
        let elems: Vec<Elem> = (0..10_000u32)
            .flat_map(|i| interval_elems(&(i << 8).to_be_bytes(), &((i << 8) | 1).to_be_bytes()))
            .collect();
        b.add_elements("s", &elems);
        assert!(b.len() > 3, "split into several messages");
        let d: Vec<&str> = b.descriptions().collect();
        assert_eq!(d[0], "add table inet brindle");
        assert!(d[2].starts_with("add element inet brindle s ("), "{}", d[2]);
        // Every message is well formed: its length field covers it exactly.
        let mut off = 0;
        for m in &b.msgs {
            assert_eq!(m.start, off);
            let len = u32::from_ne_bytes(b.buf[off..off + 4].try_into().unwrap()) as usize;
            assert!(len < 64 * 1024);
            off += len;
        }
        assert_eq!(off, b.buf.len());
    }
}
