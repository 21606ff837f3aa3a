// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0
//
// Brindle's BPF tunl0: standard IPIP (RFC 2003) without the kernel's ipip module.
//
// tunl0 is an IFB device carrying Calico's routes (`<block> via <node> dev tunl0 onlink`).
// - tunl_egress (tc egress on tunl0): the kernel routed a packet into tunl0; ask the FIB which
//   route did it (its gateway is the remote node, so the kernel route stays the single source of
//   truth), push an outer IPv4 header node -> gateway, protocol 4, and hand it to the underlay
//   with bpf_redirect_neigh (which resolves the next hop and keeps ARP alive).
// - eth_decap (tc ingress on the underlay): IPIP addressed to this node from a known node loses
//   its outer header and is redirected into tunl0's ingress, so it enters the stack on tunl0 as
//   with kernel ipip (strict rp_filter and `-i tunl0` rules keep working).
//
// Header fields follow the kernel's fallback tunl0 (ttl 0 = inherit, tos 0 = ECN only, DF copied
// from the inner packet, pmtudisc). Per-node values are read-only globals set by the loader.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Debian's 6.1 uapi headers predate these.
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif
#ifndef BPF_FIB_LOOKUP_SKIP_NEIGH
#define BPF_FIB_LOOKUP_SKIP_NEIGH (1U << 2)
#endif

#define AF_INET 2
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define PACKET_HOST 0

// Set by the loader (network byte order for addresses).
volatile const __u32 NODE_IP = 0;
volatile const __u32 UNDERLAY_IFINDEX = 0;
volatile const __u32 TUNL_IFINDEX = 0;
volatile const __u8 TUNL_MAC[6] = {0};

// Other nodes' addresses: IPIP is accepted only from these (Felix's all-hosts set; the outer
// packets never reach netfilter, so this check lives here).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} brindle_nodes SEC(".maps");

enum {
	STAT_ENCAP = 0,
	STAT_ENCAP_NO_ROUTE,
	STAT_ENCAP_DROP,
	STAT_DECAP,
	STAT_DECAP_DENIED,
	STAT_DECAP_DROP,
	STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} brindle_stats SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&brindle_stats, &what);
	if (v)
		*v += 1;
}

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("classifier")
int tunl_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *inner = data + sizeof(*eth);

	// IFB drops whatever is not redirected: fail closed on anything but IPv4.
	if ((void *)(inner + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(STAT_ENCAP_DROP);
		return TC_ACT_SHOT;
	}

	// Which tunl0 route brought the packet here? OUTPUT mode with oif = tunl0 matches only
	// routes through tunl0; for `via <node>` the gateway comes back in ipv4_dst.
	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.ifindex = skb->ifindex;
	fib.ipv4_src = inner->saddr;
	fib.ipv4_dst = inner->daddr;
	fib.tos = inner->tos;
	fib.l4_protocol = inner->protocol;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib),
				 BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH);
	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) ||
	    fib.ifindex != skb->ifindex || fib.ipv4_dst == inner->daddr) {
		count(STAT_ENCAP_NO_ROUTE);
		return TC_ACT_SHOT;
	}

	__u8 inner_tos = inner->tos;
	struct iphdr outer = {};
	outer.version = 4;
	outer.ihl = 5;
	// tos 0 plus the inner ECN bits, CE carried as ECT(0) (INET_ECN_encapsulate).
	outer.tos = (inner_tos & 3) == 3 ? 2 : (inner_tos & 3);
	outer.tot_len = bpf_htons(bpf_ntohs(inner->tot_len) + sizeof(struct iphdr));
	outer.id = inner->id;
	outer.frag_off = inner->frag_off & bpf_htons(IP_DF);
	outer.ttl = inner->ttl;
	outer.protocol = IPPROTO_IPIP;
	outer.saddr = NODE_IP;
	outer.daddr = fib.ipv4_dst;
	outer.check = ip_checksum(&outer);

	// ENCAP_L3_IPV4 marks the skb for IPIP GSO (without it TCP stalls); FIXED_GSO keeps
	// gso_size, the inner MTU already left room for the outer header.
	if (bpf_skb_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO)) {
		count(STAT_ENCAP_DROP);
		return TC_ACT_SHOT;
	}
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &outer, sizeof(outer), 0)) {
		count(STAT_ENCAP_DROP);
		return TC_ACT_SHOT;
	}
	count(STAT_ENCAP);
	// NULL params: the helper routes the outer destination itself and replaces tunl0's dst, so
	// an unresolved neighbour is queued and ARPed for instead of leaving without an L2 header.
	return bpf_redirect_neigh(UNDERLAY_IFINDEX, NULL, 0, 0);
}

SEC("classifier")
int eth_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = data + sizeof(*eth);

	if ((void *)(outer + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (outer->protocol != IPPROTO_IPIP || outer->daddr != NODE_IP)
		return TC_ACT_OK;
	// tc ingress sees frames before the stack drops PACKET_OTHERHOST.
	if (skb->pkt_type != PACKET_HOST)
		return TC_ACT_OK;
	// Options or fragments: leave to the stack (no ipip module: it answers protocol unreachable).
	if (outer->ihl != 5 || (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return TC_ACT_OK;
	__u32 src = outer->saddr;
	if (!bpf_map_lookup_elem(&brindle_nodes, &src)) {
		count(STAT_DECAP_DENIED);
		return TC_ACT_SHOT;
	}
	struct iphdr *inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > end || inner->version != 4) {
		count(STAT_DECAP_DROP);
		return TC_ACT_SHOT;
	}
	if (bpf_skb_adjust_room(skb, -(__s32)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV4)) {
		count(STAT_DECAP_DROP);
		return TC_ACT_SHOT;
	}
	// The redirect runs eth_type_trans(tunl0): address the frame to tunl0 or it is OTHERHOST.
	__u8 mac[6];
#pragma unroll
	for (int i = 0; i < 6; i++)
		mac[i] = TUNL_MAC[i];
	if (bpf_skb_store_bytes(skb, 0, mac, 6, 0)) {
		count(STAT_DECAP_DROP);
		return TC_ACT_SHOT;
	}
	count(STAT_DECAP);
	return bpf_redirect(TUNL_IFINDEX, BPF_F_INGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
