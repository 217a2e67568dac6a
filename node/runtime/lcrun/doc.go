// Package lcrun runs containers through libcontainer (runc's library),
// each under its own shim process, on Linux with cgo.
//
// The agent calls New(Config) once, then the runtime.Runtime methods
// (plus runtime.Execer and runtime.StatsReader); main calls
// MaybeRunChild() first thing, because the drover binary re-executes
// itself as libcontainer's init and as the shim.
//
// One container, and who does what:
//
//	agent                         shim (one per container)           container
//	─────                         ────────────────────────           ─────────
//	Start: write spec.json,
//	lock shim.lock, exec ───────> create + run ───────────────────>  running
//	   <── "ready" (pid or error) write status.json (pid, started)
//	                              copy stdout/stderr to the CRI log <── output
//	Stop: SIGTERM, grace,
//	SIGKILL (via libcontainer) ─────────────────────────────────────>  exits
//	   poll status.json           wait: code (128+signal), reason
//	                              (OOMKilled / Error / Completed),
//	                              finish time -> status.json; exit
//	Remove: destroy (cgroups,
//	libcontainer state), delete
//	the directory
//
// States as Status reports them:
//
//	created ──(shim reports the process started)──> running ──(exit recorded)──> exited ──Remove──> gone
//
// created is only seen while Start is in progress. The shim is not the
// agent's child (it is started through an intermediate process in a new
// session), so an agent restart leaves shims and containers alone: a new
// Runtime over the same Root adopts them (List shows them running) and
// their exits are recorded as if nothing happened. If a shim dies without
// recording an exit (killed), its container is reported running while it
// runs, and exited with code 255 and a Message saying the code is unknown
// once it stops.
//
// Cgroups are absolute paths, <CgroupParent>/<id>, in every hierarchy.
// Remove deletes a container's; Close deletes the parent when no container
// is left.
//
// Limits: cgroup v1 is what this is tested on (v2 goes through the same
// libcontainer calls, untested); no seccomp profile (that needs the
// seccomp build tag and libseccomp); no user namespaces; a privileged
// container gets all capabilities, no masked paths, a writable /sys and
// every device allowed by the device cgroup, but no host device nodes in
// its /dev; the shims run in the agent's cgroup, so an agent supervisor
// that kills its whole cgroup on stop (systemd's default KillMode) kills
// them too.
package lcrun
