package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
)

// Route sends traffic for another node's pod subnet to that node.
type Route struct {
	CIDR string // the other node's spec.podCIDR, e.g. 10.244.2.0/24
	Via  net.IP // the other node's address, on a directly connected network
}

// SetRoutes makes the host's routes to other nodes' pod subnets exactly
// routes: it adds or replaces each (ip route replace) and deletes those a
// previous call installed that are no longer wanted. Routes it did not
// install are left alone. An empty list removes every route it installed.
func (m *Manager) SetRoutes(ctx context.Context, routes []Route) error {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.closed {
		return ErrClosed
	}
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	return m.setRoutes(ctx, routes)
}

// routeEntry is a Route as recorded in routes.json.
type routeEntry struct {
	CIDR string `json:"cidr"`
	Via  string `json:"via"`
}

func (m *Manager) setRoutes(ctx context.Context, routes []Route) error {
	_, own, _ := net.ParseCIDR(m.cfg.PodCIDR)
	want := map[string]routeEntry{}
	for i, r := range routes {
		ip, ipn, err := net.ParseCIDR(r.CIDR)
		if err != nil || ip.To4() == nil {
			return fmt.Errorf("%w: routes[%d]: CIDR %q must be an IPv4 CIDR", ErrInvalid, i, r.CIDR)
		}
		if r.Via.To4() == nil {
			return fmt.Errorf("%w: routes[%d]: via %v must be an IPv4 address", ErrInvalid, i, r.Via)
		}
		if ipn.Contains(own.IP) || own.Contains(ipn.IP) {
			return fmt.Errorf("%w: routes[%d]: %s overlaps this node's PodCIDR %s", ErrInvalid, i, ipn, own)
		}
		if _, dup := want[ipn.String()]; dup {
			return fmt.Errorf("%w: routes[%d]: %s is listed twice", ErrInvalid, i, ipn)
		}
		want[ipn.String()] = routeEntry{CIDR: ipn.String(), Via: r.Via.To4().String()}
	}
	had, err := readRoutes(m.cfg.routesFile())
	if err != nil {
		return err
	}
	// Record the union first, so a crash part-way leaves no route that
	// this file does not name.
	union := map[string]routeEntry{}
	for _, e := range had {
		union[e.CIDR+" "+e.Via] = e
	}
	for _, e := range want {
		union[e.CIDR+" "+e.Via] = e
	}
	if err := writeRoutes(m.cfg.routesFile(), union); err != nil {
		return err
	}
	var errs []error
	for _, e := range want {
		if _, err := run(ctx, "ip", "route", "replace", e.CIDR, "via", e.Via); err != nil {
			errs = append(errs, err)
		}
	}
	kept := map[string]routeEntry{}
	for _, e := range want {
		kept[e.CIDR+" "+e.Via] = e
	}
	for k, e := range union {
		if _, ok := kept[k]; ok {
			continue
		}
		if w, ok := want[e.CIDR]; ok && w.Via != e.Via {
			continue // replaced above
		}
		if _, err := run(ctx, "ip", "route", "del", e.CIDR, "via", e.Via); err != nil {
			if out, serr := run(ctx, "ip", "route", "show", "exact", e.CIDR, "via", e.Via); serr == nil && len(out) == 0 {
				continue // already gone
			}
			errs = append(errs, err)
			kept[k] = e // still there: keep it on record
		}
	}
	if err := writeRoutes(m.cfg.routesFile(), kept); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func readRoutes(path string) ([]routeEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	var rs []routeEntry
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("network: %s: %w", path, err)
	}
	return rs, nil
}

func writeRoutes(path string, rs map[string]routeEntry) error {
	list := make([]routeEntry, 0, len(rs))
	for _, e := range rs {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].CIDR != list[j].CIDR {
			return list[i].CIDR < list[j].CIDR
		}
		return list[i].Via < list[j].Via
	})
	b, err := json.Marshal(list)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

// deleteLink removes a network interface if it exists.
func deleteLink(ctx context.Context, name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil // no such interface
	}
	if _, err := run(ctx, "ip", "link", "del", "dev", name); err != nil {
		if _, serr := net.InterfaceByName(name); serr != nil {
			return nil // removed meanwhile
		}
		return fmt.Errorf("network: %w", err)
	}
	return nil
}
