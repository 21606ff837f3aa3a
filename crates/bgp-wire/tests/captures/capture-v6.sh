#!/bin/bash
# Captures what BIRD 2 sends on an eBGP session over IPv6 carrying IPv6 unicast with communities
# and large communities (as Calico's prefix advertisements make them), its MP_UNREACH_NLRI
# withdrawal, and an IPv4 UPDATE with communities on an IPv4 session: two namespaces, BIRD 2 in
# each, tcpdump on the sender's side, messages split at BGP header lengths (the Python below).
# Output: bird2-*-communities.bin and bird2-withdraw-ipv6.bin in the current directory.
set -e
S=bcv6$$
D=$(mktemp -d /tmp/bgpcap6.XXXXXX); chmod 755 $D
A=${S}a; B=${S}b
ip netns add $A; ip netns add $B
trap 'for p in $(cat $D/pids 2>/dev/null); do kill $p 2>/dev/null || true; done; ip netns del $A; ip netns del $B; rm -rf $D' EXIT
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A link add ea type veth peer name eb netns $B
ip -n $A addr add 10.78.0.1/24 dev ea; ip -n $A addr add fd78::1/64 dev ea nodad; ip -n $A link set ea up
ip -n $B addr add 10.78.0.2/24 dev eb; ip -n $B addr add fd78::2/64 dev eb nodad; ip -n $B link set eb up
cat > $D/a.conf <<B
router id 10.78.0.1;
protocol device { scan time 10; }
protocol direct { ipv4; ipv6; interface "ea"; }
protocol static own4 { ipv4; route 10.233.94.0/24 blackhole; }
protocol static own6 { ipv6; route fd00:94::/122 blackhole; route fd00:95::/122 blackhole; }
filter out4 { if proto != "own4" then reject; bgp_community.add((65000,100)); bgp_large_community.add((65000,100,7)); accept; }
filter out6 { if proto != "own6" then reject; bgp_community.add((65000,600)); bgp_community.add((64512,1));
  bgp_large_community.add((64512,6,6)); bgp_large_community.add((4200000000,1,2)); accept; }
protocol bgp v4 { local 10.78.0.1 as 64512; neighbor 10.78.0.2 as 65001; hold time 9; connect delay time 1;
  ipv4 { import none; export filter out4; }; }
protocol bgp v6 { local fd78::1 as 64512; neighbor fd78::2 as 65001; hold time 9; connect delay time 1;
  ipv6 { import none; export filter out6; }; }
B
cat > $D/b.conf <<B
router id 10.78.0.2;
protocol device { scan time 10; }
protocol bgp v4 { local 10.78.0.2 as 65001; neighbor 10.78.0.1 as 64512; hold time 9; passive on; ipv4 { import all; export none; }; }
protocol bgp v6 { local fd78::2 as 65001; neighbor fd78::1 as 64512; hold time 9; passive on; ipv6 { import all; export none; }; }
B
ip netns exec $A tcpdump -i ea -U -w $D/cap.pcap 'tcp port 179' >$D/tcpdump.log 2>&1 & echo $! > $D/pids
sleep 1
ip netns exec $B bird -f -c $D/b.conf -s $D/b.ctl -P $D/b.pid >$D/b.log 2>&1 & echo $! >> $D/pids
ip netns exec $A bird -f -c $D/a.conf -s $D/a.ctl -P $D/a.pid >$D/a.log 2>&1 & echo $! >> $D/pids
sleep 5
birdc -s $D/a.ctl disable own6 >/dev/null
sleep 2
birdc -s $D/b.ctl show route all > $D/routes.txt
kill $(head -1 $D/pids); sleep 1
python3 - "$D/cap.pcap" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
streams = {}
off = 24
while off < len(data):
    _, _, incl, _ = struct.unpack('<IIII', data[off:off+16]); off += 16
    pkt = data[off:off+incl]; off += incl
    eth = struct.unpack('!H', pkt[12:14])[0]; ip = pkt[14:]
    if eth == 0x0800:
        ihl = (ip[0] & 15) * 4; src, dst = ip[12:16], ip[16:20]; l4 = ip[ihl:]
    elif eth == 0x86dd:
        src, dst = ip[8:24], ip[24:40]; l4 = ip[40:]
    else:
        continue
    sport, dport, seq = struct.unpack('!HHI', l4[:8]); doff = (l4[12] >> 4) * 4
    payload = l4[doff:]
    if sport == 179 or not payload:
        continue  # what the sender (the active side, from its ephemeral port) sent
    streams.setdefault((src, dst), {})[seq] = payload
for key, segs in streams.items():
    fam = 'ipv6' if len(key[0]) == 16 else 'ipv4'
    buf = b''.join(segs[s] for s in sorted(segs))
    i = 0
    while i + 19 <= len(buf):
        n = struct.unpack('!H', buf[i+16:i+18])[0]; msg = buf[i:i+n]; i += n
        if msg[18] != 2:
            continue
        wlen = struct.unpack('!H', msg[19:21])[0]; alen = struct.unpack('!H', msg[21+wlen:23+wlen])[0]
        attrs = msg[23+wlen:23+wlen+alen]
        codes = []; j = 0
        while j < len(attrs):
            fl, code = attrs[j], attrs[j+1]
            ln = struct.unpack('!H', attrs[j+2:j+4])[0] if fl & 0x10 else attrs[j+2]
            codes.append((code, ln)); j += (4 if fl & 0x10 else 3) + ln
        if fam == 'ipv6' and any(c == 15 and l > 3 for c, l in codes):
            name = 'bird2-withdraw-ipv6.bin'
        elif any(c == 8 for c, _ in codes):
            name = f'bird2-update-{fam}-communities.bin'
        else:
            continue
        open(name, 'wb').write(msg); print(name, len(msg))
PY
