// Command profdrover is `drover` with CPU profiling driven by signals, for
// apibench -profile: the same server code (cmd/drover/cli), a different
// main. No endpoint is added to the server.
//
// SIGUSR1 starts a CPU profile into the file named in <data-dir>.profctl;
// SIGUSR2 stops it and creates <file>.done.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/droverhq/drover/cmd/drover/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir := dataDir(os.Args[1:]); dir != "" {
		go profileOnSignals(filepath.Clean(dir) + ".profctl")
	}
	root := cli.NewRoot(cli.Streams{Out: os.Stdout, Err: os.Stderr})
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func dataDir(args []string) string {
	for i, a := range args {
		if a == "--data-dir" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			return v
		}
	}
	return ""
}

func profileOnSignals(ctl string) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	var f *os.File
	for s := range ch {
		switch s {
		case syscall.SIGUSR1:
			if f != nil {
				continue
			}
			b, err := os.ReadFile(ctl)
			if err != nil {
				fmt.Fprintln(os.Stderr, "profdrover:", err)
				continue
			}
			if f, err = os.Create(strings.TrimSpace(string(b))); err != nil {
				fmt.Fprintln(os.Stderr, "profdrover:", err)
				f = nil
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "profdrover:", err)
				f.Close()
				f = nil
			}
		case syscall.SIGUSR2:
			if f == nil {
				continue
			}
			pprof.StopCPUProfile()
			f.Close()
			os.WriteFile(f.Name()+".done", nil, 0o644)
			f = nil
		}
	}
}
