package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runFsyncCheck verifies that both stores sync before acknowledging: for
// each store it attaches `strace -f -c -e trace=fsync,fdatasync` to the
// leader and to one follower, runs puts at 1 and at 64 clients (untimed:
// strace slows the servers), detaches and reports syncs per acknowledged
// put.
func runFsyncCheck(ctx context.Context, o *options) error {
	if _, err := exec.LookPath("strace"); err != nil {
		return fmt.Errorf("strace: %w", err)
	}
	value := strings.Repeat("x", o.valueSize)
	type row struct {
		store, who  string
		conc        int
		acked       int64
		fsync, fdat int64
	}
	var rows []row
	for _, kind := range []string{"drover", "etcd"} {
		if o.only != "" && o.only != kind {
			continue
		}
		dir := filepath.Join(o.workdir, "fsync", kind)
		c, _, err := startStore(ctx, o, kind, dir)
		if err != nil {
			return err
		}
		li, err := c.leader(ctx)
		if err != nil {
			c.stop()
			return err
		}
		fi := (li + 1) % 3
		for _, conc := range []int{1, 64} {
			clis, err := c.clients(min(conc, 8))
			if err != nil {
				c.stop()
				return err
			}
			var straces []*exec.Cmd
			var outs []string
			for _, who := range []int{li, fi} {
				out := filepath.Join(dir, fmt.Sprintf("strace-%s-c%d.txt", c.members[who].name, conc))
				cmd := exec.Command("strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", out, "-p", strconv.Itoa(c.members[who].pid()))
				if err := cmd.Start(); err != nil {
					c.stop()
					return err
				}
				straces = append(straces, cmd)
				outs = append(outs, out)
			}
			time.Sleep(time.Second) // attach to every thread
			var acked atomic.Int64
			var stop atomic.Bool
			var wg sync.WaitGroup
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					rnd := rand.New(rand.NewPCG(uint64(w), 7))
					for !stop.Load() {
						rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						_, err := clis[w%len(clis)].Put(rctx, keyOf(rnd.IntN(o.keys)), value)
						cancel()
						if err == nil {
							acked.Add(1)
						}
					}
				}(w)
			}
			time.Sleep(o.fsyncDur)
			stop.Store(true)
			wg.Wait()
			time.Sleep(300 * time.Millisecond) // followers' last appends
			for _, s := range straces {
				s.Process.Signal(syscall.SIGINT)
				s.Wait()
			}
			closeAll(clis)
			for i, who := range []string{"leader", "follower"} {
				fs, fd := parseStrace(outs[i])
				rows = append(rows, row{kind, who + " " + c.members[[]int{li, fi}[i]].name, conc, acked.Load(), fs, fd})
			}
		}
		c.stop()
	}
	fmt.Printf("\n## fsync parity (strace -f -c -e trace=fsync,fdatasync), %s\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Printf("| store | member | clients | acknowledged puts | fsync | fdatasync | syncs per put |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		per := 0.0
		if r.acked > 0 {
			per = float64(r.fsync+r.fdat) / float64(r.acked)
		}
		fmt.Printf("| %s | %s | %d | %d | %d | %d | %.2f |\n", r.store, r.who, r.conc, r.acked, r.fsync, r.fdat, per)
	}
	fmt.Println()
	return nil
}

// parseStrace reads the calls column of strace -c's summary.
func parseStrace(path string) (fsync, fdatasync int64) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 5 {
			continue
		}
		n, err := strconv.ParseInt(fl[3], 10, 64)
		if err != nil {
			continue
		}
		switch fl[len(fl)-1] {
		case "fsync":
			fsync = n
		case "fdatasync":
			fdatasync = n
		}
	}
	return fsync, fdatasync
}
