// Package network gives pods their network sandboxes: a named network
// namespace per pod, wired to a node-local bridge through CNI (libcni and
// the standard plugins: loopback, bridge, host-local, portmap).
//
// This is the Kubernetes sandbox model. The agent calls Setup before it
// starts a pod's containers and puts the returned NetNS path in each
// container's spec; every container of the pod joins that namespace. The
// agent calls Teardown once every container of the pod is gone.
//
// # Sandbox lifecycle
//
//	            Setup                         Teardown
//	(none) ──────────────► ready ─────────────────────────► (none)
//	  │  state file           ▲   CNI DEL (pod, lo), iptables sweep,
//	  │  netns                │   unmount + remove netns, state file
//	  │  CNI ADD lo, pod      │
//	  ▼                       │ Setup again (no-op: returns the cached result)
//	partial ──── Setup ───────┘
//	(agent died mid-setup: CNI DEL first, then ADD again)
//
// Setup of a sandbox that is set up returns it without checking it; Check
// does (netns, lo, eth0 and its address, the host veth) and reports
// ErrBroken, which Teardown followed by Setup repairs.
//
// Every step is idempotent. The state file is written before anything else
// is created and removed after everything else is gone, so List reports
// every sandbox that may own anything on the host, and an agent restarted at
// any point finds its sandboxes and can finish either direction.
//
// # What a sandbox owns, and what is shared
//
// A sandbox owns its netns (a bind mount of an nsfs file), its veth pair
// (the kernel removes it with the netns), its host-local lease file, its
// libcni cache files, the bridge plugin's masquerade chain and the portmap
// plugin's DNAT chain with the rules jumping to them. Teardown removes all
// of them, including when the netns is already gone (the bridge plugin then
// cannot find the pod's addresses and leaves its masquerade chain behind;
// Teardown's own sweep of the nat table removes every rule whose comment
// names the sandbox).
//
// Shared and left alone by Teardown: the bridge (Cleanup removes it once no
// sandbox remains), portmap's CNI-HOSTPORT-* chains, net.ipv4.ip_forward
// (the bridge plugin turns it on) and route_localnet on the bridge.
//
// # On disk (StateDir)
//
//	lock                    flock: one Manager per StateDir
//	netns/<id>              the sandbox's network namespace (bind mount)
//	sandboxes/<id>.json     the sandbox's state: netns path, ports, IP
//	cni-cache/              libcni's result cache
//	ipam/<network name>/    host-local leases, one file per IP
//	routes.json             routes installed by SetRoutes
//
// # Several agents on one machine
//
// Give each its own Bridge, PodCIDR and StateDir, and its own host ports.
// CNI chain names are derived from the network Name and the sandbox ID, so
// sandbox IDs must be unique on the machine (pod UIDs are) or each agent
// needs its own Name.
package network
