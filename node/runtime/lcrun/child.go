//go:build linux && cgo

package lcrun

import (
	"os"

	_ "github.com/opencontainers/cgroups/devices" // device rules on cgroup v1 and v2; without it every start fails
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // cgo: the namespace-joining C constructor of `init`
)

// MaybeRunChild runs the child processes the drover binary re-executes
// itself as, and never returns for them:
//
//   - `drover init`: libcontainer's container init (every container start
//     and every exec goes through it);
//   - `drover shim <dir>`: a container's shim (see shim.go).
//
// Both are recognised only with the environment their parent sets, so a
// user typing `drover init` gets the ordinary CLI. Call it first thing in
// main, and in TestMain of any test binary that starts containers (the
// test binary is what gets re-executed).
func MaybeRunChild() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "init":
		if os.Getenv("_LIBCONTAINER_SYNCPIPE") != "" {
			libcontainer.Init() // never returns
		}
	case shimArg:
		if step := os.Getenv(shimEnv); step != "" {
			os.Exit(shimMain(step, os.Args[2:]))
		}
	}
}
