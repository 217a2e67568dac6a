package network

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func validConfig() Config {
	return Config{PodCIDR: "10.244.1.0/24", StateDir: "/var/lib/drover/network"}.withDefaults()
}

func TestConfigDefaults(t *testing.T) {
	c := validConfig()
	if c.Name != "drover" || c.Bridge != "drover0" || !reflect.DeepEqual(c.PluginDirs, DefaultPluginDirs) || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*Config)
		want   string // in the error
	}{
		{"no PodCIDR", func(c *Config) { c.PodCIDR = "" }, "PodCIDR is required"},
		{"bad PodCIDR", func(c *Config) { c.PodCIDR = "10.244.1.0" }, "PodCIDR"},
		{"IPv6 PodCIDR", func(c *Config) { c.PodCIDR = "fd00::/64" }, "only IPv4"},
		{"tiny PodCIDR", func(c *Config) { c.PodCIDR = "10.244.1.0/31" }, "/30 or larger"},
		{"no StateDir", func(c *Config) { c.StateDir = "" }, "StateDir is required"},
		{"relative StateDir", func(c *Config) { c.StateDir = "state" }, "absolute"},
		{"long bridge", func(c *Config) { c.Bridge = "a-sixteen-chars!" }, "Bridge"},
		{"bridge with slash", func(c *Config) { c.Bridge = "br/0" }, "Bridge"},
		{"bad name", func(c *Config) { c.Name = "-x" }, "Name"},
		{"name with quote", func(c *Config) { c.Name = `a"b` }, "Name"},
		{"small MTU", func(c *Config) { c.MTU = 100 }, "MTU"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig()
			c.modify(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate = %v, want ErrInvalid mentioning %q", err, c.want)
			}
			if _, err := New(cfg); !errors.Is(err, ErrInvalid) {
				t.Errorf("New = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestConfLists(t *testing.T) {
	c := validConfig()
	c.MTU = 1450
	pod, err := libcni.ConfListFromBytes(c.podConfList())
	if err != nil {
		t.Fatal(err)
	}
	if pod.Name != "drover" || pod.CNIVersion != "1.0.0" || len(pod.Plugins) != 2 ||
		pod.Plugins[0].Network.Type != "bridge" || pod.Plugins[1].Network.Type != "portmap" ||
		!pod.Plugins[1].Network.Capabilities["portMappings"] {
		t.Fatalf("pod conf list: %s", pod.Bytes)
	}
	var br map[string]any
	if err := json.Unmarshal(pod.Plugins[0].Bytes, &br); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "bridge", "bridge": "drover0", "isGateway": true, "ipMasq": true, "hairpinMode": true, "mtu": 1450.0,
		"ipam": map[string]any{
			"type":    "host-local",
			"dataDir": "/var/lib/drover/network/ipam",
			"ranges":  []any{[]any{map[string]any{"subnet": "10.244.1.0/24"}}},
			"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
		},
	}
	if !reflect.DeepEqual(br, want) {
		t.Errorf("bridge plugin config:\n%v\nwant\n%v", br, want)
	}

	// The subnet is normalized; an MTU of 0 is left to the plugin.
	c.PodCIDR, c.MTU = "10.244.1.7/24", 0
	if b := string(c.podConfList()); !strings.Contains(b, `"subnet":"10.244.1.0/24"`) || strings.Contains(b, "mtu") {
		t.Errorf("pod conf list: %s", b)
	}

	lo, err := libcni.ConfListFromBytes(c.loConfList())
	if err != nil {
		t.Fatal(err)
	}
	if lo.Name != "drover-lo" || len(lo.Plugins) != 1 || lo.Plugins[0].Network.Type != "loopback" {
		t.Errorf("loopback conf list: %s", lo.Bytes)
	}
}

func TestCNIPorts(t *testing.T) {
	got, err := cniPorts([]PortMapping{
		{HostPort: 8080, ContainerPort: 80},
		{ContainerPort: 9090}, // no host port: not forwarded
		{HostPort: 53, ContainerPort: 5353, Protocol: "UDP", HostIP: "127.0.0.1"},
	})
	want := []cniPortMapping{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostPort: 53, ContainerPort: 5353, Protocol: "udp", HostIP: "127.0.0.1"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("cniPorts = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []PortMapping{
		{HostPort: 70000, ContainerPort: 80},
		{HostPort: 80},
		{HostPort: 80, ContainerPort: 80, Protocol: "icmp"},
		{HostPort: 80, ContainerPort: 80, HostIP: "::1"},
		{HostPort: 80, ContainerPort: 80, HostIP: "localhost"},
	} {
		if _, err := cniPorts([]PortMapping{bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("cniPorts(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "pod-1234_abc.0", strings.Repeat("x", 200)} {
		if err := validateID(ok); err != nil {
			t.Errorf("validateID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "../x", "a b", strings.Repeat("x", 201)} {
		if err := validateID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("validateID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestStateFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := readState(dir, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("readState of a missing file: %v", err)
	}
	st := &state{ID: "a", NetNS: "/x/netns/a", Ports: []cniPortMapping{{HostPort: 1, ContainerPort: 2, Protocol: "tcp"}}, IP: "10.0.0.2"}
	for _, s := range []*state{st, {ID: "b", NetNS: "/x/netns/b"}} {
		if err := writeState(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readState(dir, "a")
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Errorf("readState = %+v, %v; want %+v", got, err, st)
	}
	ids, err := listStates(dir)
	if err != nil || !reflect.DeepEqual(ids, []string{"a", "b"}) {
		t.Errorf("listStates = %v, %v", ids, err)
	}
	if err := removeState(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if err := removeState(dir, "a"); err != nil {
		t.Errorf("second removeState: %v", err)
	}
	if ids, _ := listStates(dir); !reflect.DeepEqual(ids, []string{"b"}) {
		t.Errorf("listStates after remove = %v", ids)
	}
}
