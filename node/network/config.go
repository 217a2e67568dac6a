package network

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
)

// Defaults for Config's zero values.
const (
	DefaultName   = "drover"
	DefaultBridge = "drover0"
)

// DefaultPluginDirs are searched for CNI plugin binaries, in order:
// Debian's containernetworking-plugins, then the upstream location.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// cniVersion is the newest spec version Debian's plugins (1.1.1) support.
const cniVersion = "1.0.0"

// Config configures a Manager.
type Config struct {
	// Name is the CNI network name (default "drover"). It appears in the
	// libcni cache, the IPAM directory and the iptables comments and chain
	// hashes.
	Name string
	// Bridge is the Linux bridge the pods' veths attach to (default
	// "drover0"); the bridge gets the first address of PodCIDR and is the
	// pods' gateway.
	Bridge string
	// PodCIDR is this node's pod subnet (the Node's spec.podCIDR), for
	// example 10.244.1.0/24. IPv4 only.
	PodCIDR string
	// StateDir holds the netns bind mounts, the libcni cache, the host-local
	// leases and the sandboxes' state files. Required; one Manager per
	// StateDir at a time.
	StateDir string
	// PluginDirs are searched for the CNI plugin binaries (default
	// DefaultPluginDirs).
	PluginDirs []string
	// MTU of the bridge and the veths; 0 lets the plugin choose (1500).
	MTU int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// maxIfName is the longest Linux interface name (IFNAMSIZ-1).
const maxIfName = 15

// validName is what libcni accepts as a network name and a container ID;
// sandbox IDs are also file names here.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// withDefaults returns c with its zero values filled in.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if len(c.PluginDirs) == 0 {
		c.PluginDirs = append([]string(nil), DefaultPluginDirs...)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first problem with a Config whose defaults have
// been applied.
func (c Config) Validate() error {
	if !validName.MatchString(c.Name) || len(c.Name) > 64 {
		return fmt.Errorf("%w: Name %q must be 1-64 of [a-zA-Z0-9_.-], starting with a letter or digit", ErrInvalid, c.Name)
	}
	if c.Bridge == "" || len(c.Bridge) > maxIfName || strings.ContainsAny(c.Bridge, "/ \t\n:") {
		return fmt.Errorf("%w: Bridge %q must be a Linux interface name of 1-%d characters", ErrInvalid, c.Bridge, maxIfName)
	}
	if c.PodCIDR == "" {
		return fmt.Errorf("%w: PodCIDR is required (the Node's spec.podCIDR)", ErrInvalid)
	}
	ip, ipn, err := net.ParseCIDR(c.PodCIDR)
	if err != nil {
		return fmt.Errorf("%w: PodCIDR %q: %v", ErrInvalid, c.PodCIDR, err)
	}
	if ip.To4() == nil {
		return fmt.Errorf("%w: PodCIDR %q: only IPv4 is supported", ErrInvalid, c.PodCIDR)
	}
	if ones, _ := ipn.Mask.Size(); ones > 30 {
		return fmt.Errorf("%w: PodCIDR %q: must be /30 or larger (a gateway and at least one pod)", ErrInvalid, c.PodCIDR)
	}
	if c.StateDir == "" {
		return fmt.Errorf("%w: StateDir is required", ErrInvalid)
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("%w: StateDir %q must be an absolute path (the plugins run in other directories)", ErrInvalid, c.StateDir)
	}
	if c.MTU < 0 || (c.MTU > 0 && c.MTU < 576) || c.MTU > 65535 {
		return fmt.Errorf("%w: MTU %d must be 0 (default) or 576-65535", ErrInvalid, c.MTU)
	}
	return nil
}

// Paths inside StateDir.
func (c Config) netnsDir() string   { return filepath.Join(c.StateDir, "netns") }
func (c Config) sandboxDir() string { return filepath.Join(c.StateDir, "sandboxes") }
func (c Config) cacheDir() string   { return filepath.Join(c.StateDir, "cni-cache") }
func (c Config) ipamDir() string    { return filepath.Join(c.StateDir, "ipam") }
func (c Config) routesFile() string { return filepath.Join(c.StateDir, "routes.json") }
func (c Config) lockFile() string   { return filepath.Join(c.StateDir, "lock") }
func (c Config) loName() string     { return c.Name + "-lo" }
func (c Config) netnsPath(id string) string {
	return filepath.Join(c.netnsDir(), id)
}

// The CNI configuration lists, as JSON. Built from structs so every value
// is quoted correctly; the shapes follow the plugins' documentation.
type (
	confList struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	loopbackConf struct {
		Type string `json:"type"`
	}
	bridgeConf struct {
		Type        string   `json:"type"`
		Bridge      string   `json:"bridge"`
		IsGateway   bool     `json:"isGateway"`
		IPMasq      bool     `json:"ipMasq"`
		HairpinMode bool     `json:"hairpinMode"`
		MTU         int      `json:"mtu,omitempty"`
		IPAM        ipamConf `json:"ipam"`
	}
	ipamConf struct {
		Type    string          `json:"type"`
		DataDir string          `json:"dataDir"`
		Ranges  [][]ipamRange   `json:"ranges"`
		Routes  []ipamRouteConf `json:"routes"`
	}
	ipamRange struct {
		Subnet string `json:"subnet"`
	}
	ipamRouteConf struct {
		Dst string `json:"dst"`
	}
	portmapConf struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		SNAT         bool            `json:"snat"`
	}
)

// podConfList is the pod network: a veth on the bridge (the bridge is the
// gateway; traffic leaving the node is masqueraded; hairpin lets a pod
// reach itself through its own host port or a service), an address from
// PodCIDR, and host ports (DNAT; SNAT so 127.0.0.1:<hostPort> works).
func (c Config) podConfList() []byte {
	_, ipn, _ := net.ParseCIDR(c.PodCIDR) // validated
	return mustJSON(confList{
		CNIVersion: cniVersion,
		Name:       c.Name,
		Plugins: []any{
			bridgeConf{
				Type:        "bridge",
				Bridge:      c.Bridge,
				IsGateway:   true,
				IPMasq:      true,
				HairpinMode: true,
				MTU:         c.MTU,
				IPAM: ipamConf{
					Type:    "host-local",
					DataDir: c.ipamDir(),
					Ranges:  [][]ipamRange{{{Subnet: ipn.String()}}},
					Routes:  []ipamRouteConf{{Dst: "0.0.0.0/0"}},
				},
			},
			portmapConf{
				Type:         "portmap",
				Capabilities: map[string]bool{"portMappings": true},
				SNAT:         true,
			},
		},
	})
}

// loConfList brings up lo in the sandbox: libcontainer only does that for
// a network namespace it creates itself, not for one it joins.
func (c Config) loConfList() []byte {
	return mustJSON(confList{
		CNIVersion: cniVersion,
		Name:       c.loName(),
		Plugins:    []any{loopbackConf{Type: "loopback"}},
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // static shapes of strings, bools and ints
	}
	return b
}

// cniPortMapping is the portmap plugin's runtimeConfig entry.
type cniPortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// cniPorts validates ports and converts them for the portmap plugin.
// Mappings without a host port are not forwarded (as in Kubernetes).
func cniPorts(ports []PortMapping) ([]cniPortMapping, error) {
	var out []cniPortMapping
	for i, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		if p.HostPort < 0 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return nil, fmt.Errorf("%w: ports[%d]: hostPort %d and containerPort %d must be 1-65535", ErrInvalid, i, p.HostPort, p.ContainerPort)
		}
		proto := strings.ToLower(p.Protocol)
		switch proto {
		case "":
			proto = "tcp"
		case "tcp", "udp", "sctp":
		default:
			return nil, fmt.Errorf("%w: ports[%d]: protocol %q must be TCP, UDP or SCTP", ErrInvalid, i, p.Protocol)
		}
		if p.HostIP != "" {
			ip := net.ParseIP(p.HostIP)
			if ip == nil || ip.To4() == nil {
				return nil, fmt.Errorf("%w: ports[%d]: hostIP %q must be an IPv4 address", ErrInvalid, i, p.HostIP)
			}
		}
		out = append(out, cniPortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
	}
	return out, nil
}

// validateID checks a sandbox ID: a libcni container ID and a file name.
func validateID(id string) error {
	if !validName.MatchString(id) || len(id) > 200 {
		return fmt.Errorf("%w: sandbox ID %q must be 1-200 of [a-zA-Z0-9_.-], starting with a letter or digit", ErrInvalid, id)
	}
	return nil
}
