package egress

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/skillbox-dev/skillbox/manifest"
)

// addrClass sorts the addresses the policy treats specially.
type addrClass int

const (
	classPublic    addrClass = iota
	classInternal            // loopback, RFC 1918, ULA, CGNAT, other non-global unicast
	classLinkLocal           // 169.254/16 (cloud metadata), fe80::/10
	classNever               // unspecified, multicast, broadcast
	classOwn                 // an address of this host's own interfaces, whatever its prefix
)

func (c addrClass) String() string {
	switch c {
	case classInternal:
		return "internal (loopback/private)"
	case classLinkLocal:
		return "link-local"
	case classNever:
		return "unspecified, multicast or broadcast"
	case classOwn:
		return "an address of this host"
	}
	return "public"
}

var (
	internalPrefixes = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
		netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918
		netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT
		netip.MustParsePrefix("127.0.0.0/8"),     // loopback
		netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
		netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
		netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved
		netip.MustParsePrefix("::1/128"),         // loopback
		netip.MustParsePrefix("fc00::/7"),        // ULA
		netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
		netip.MustParsePrefix("100::/64"),        // discard
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		// Addresses a relay or gateway turns into others that cannot be judged here:
		// Teredo (the client's IPv4 address obfuscated, the server's in clear) and
		// local-use NAT64 (RFC 8215, a site's own translator).
		netip.MustParsePrefix("2001::/32"),
		netip.MustParsePrefix("64:ff9b:1::/48"),
	}
	linkLocalPrefixes = []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fe80::/10"),
	}
	// IPv6 prefixes that carry an IPv4 address a gateway may forward to: NAT64 and
	// the deprecated IPv4-compatible form (both in the low 32 bits), and 6to4 (bits
	// 16–47, the relay's own address).
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	compatible = netip.MustParsePrefix("::/96")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// classify says which class a dialled address is in. IPv4-mapped, NAT64,
// IPv4-compatible and 6to4 forms are judged by the IPv4 address they carry.
func classify(a netip.Addr) addrClass {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a), compatible.Contains(a):
			a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(a):
			a = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return classNever
	}
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return classNever
	}
	for _, p := range linkLocalPrefixes {
		if p.Contains(a) {
			return classLinkLocal
		}
	}
	for _, p := range internalPrefixes {
		if p.Contains(a) {
			return classInternal
		}
	}
	return classPublic
}

// CheckAddr decides whether a connection to addr may be made for a request that
// matched origin. Public addresses are always fine. Otherwise:
//   - unspecified, multicast and broadcast: never;
//   - an origin whose host is an IP literal reaches exactly that address, whatever it is;
//   - the origin "localhost" reaches loopback addresses: the name itself says loopback;
//   - any other name resolving to a non-public address is refused, granted or not: a
//     public name that resolves inward is DNS rebinding or SSRF, and the operator who
//     means an internal host grants its address (http://10.0.0.5:8080);
//   - link-local (including 169.254.169.254, the cloud metadata service) is reached
//     only through an IP-literal origin.
//
// CheckAddr judges addr by its prefix alone; the Guard's dialler also counts the
// host's own addresses (ownAddrs) as internal.
func CheckAddr(origin manifest.Origin, addr netip.Addr) error {
	return checkAddr(origin, addr, false)
}

// checkAddr is CheckAddr; internalNames lets an exact granted name reach internal
// (loopback, private) addresses, never link-local ones (see WithInternalNamesUnsafe).
func checkAddr(origin manifest.Origin, addr netip.Addr, internalNames bool) error {
	return checkClass(origin, addr.Unmap(), classify(addr), internalNames)
}

// checkClass is checkAddr for an address already classified as c; a public address
// of the host's own is classOwn, which names reach as they reach internal addresses.
func checkClass(origin manifest.Origin, addr netip.Addr, c addrClass, internalNames bool) error {
	switch {
	case c == classPublic:
		return nil
	case c == classNever:
		return fmt.Errorf("address %s is %s", addr, c)
	}
	if ip, err := netip.ParseAddr(originHost(origin)); err == nil && !origin.Wildcard {
		if ip == addr {
			return nil
		}
		return fmt.Errorf("address %s is not the granted address %s", addr, ip)
	}
	if origin.Wildcard {
		return fmt.Errorf("address %s is %s; wildcard origins reach public addresses only", addr, c)
	}
	if originHost(origin) == "localhost" && addr.IsLoopback() {
		return nil
	}
	if internalNames && (c == classInternal || c == classOwn) {
		return nil
	}
	return fmt.Errorf("%s resolves to %s, which is %s; only an origin naming that address reaches it", originHost(origin), addr, c)
}

// ownAddrs returns the addresses of this host's interfaces. A connection to any of them
// stays on the host and reaches its services (on 0.0.0.0, or on that address), so one
// that classify calls public is judged as the host's own instead.
func ownAddrs() (map[netip.Addr]bool, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list this host's addresses: %w", err)
	}
	own := make(map[netip.Addr]bool, len(as))
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				own[ip.Unmap()] = true
			}
		}
	}
	return own, nil
}
