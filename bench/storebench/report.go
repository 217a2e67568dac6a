package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

type rowDef struct {
	id     string
	label  string
	unit   string
	higher bool // higher is better
	dec    int  // decimals
}

func rowDefs(o *options) []rowDef {
	var rows []rowDef
	loadRows := func(id, label string) {
		rows = append(rows,
			rowDef{id + "/rate", label + ", throughput", "ops/s", true, 0},
			rowDef{id + "/p50", label + ", p50", "ms", false, 2},
			rowDef{id + "/p99", label + ", p99", "ms", false, 2},
			rowDef{id + "/cpu", label + ", server CPU per op (3 members)", "µs", false, 0},
		)
	}
	plural := func(n int) string {
		if n == 1 {
			return "1 client"
		}
		return fmt.Sprintf("%d clients", n)
	}
	for _, n := range o.putConc {
		loadRows(fmt.Sprintf("put/c%d", n), "put, "+plural(n))
	}
	loadRows("putleader/c64", "put, 64 clients, leader endpoint only")
	for _, n := range o.getConc {
		loadRows(fmt.Sprintf("getlin/c%d", n), "linearizable get, "+plural(n))
	}
	for _, n := range o.getConc {
		loadRows(fmt.Sprintf("getser/c%d", n), "serializable get, "+plural(n))
	}
	loadRows("ryw/c1", "read your write: put via the leader, then linearizable get via a follower, 1 client")
	rows = append(rows,
		rowDef{"watchidle-leader/p50", "watch put->event, 1 watcher on the leader, p50", "ms", false, 2},
		rowDef{"watchidle-leader/p99", "watch put->event, 1 watcher on the leader, p99", "ms", false, 2},
		rowDef{"watchidle-follower/p50", "watch put->event, 1 watcher on a follower, p50", "ms", false, 2},
		rowDef{"watchidle-follower/p99", "watch put->event, 1 watcher on a follower, p99", "ms", false, 2},
		rowDef{"watch/p50", fmt.Sprintf("watch put->event, %d watchers on one prefix, p50", o.watchers), "ms", false, 2},
		rowDef{"watch/p99", fmt.Sprintf("watch put->event, %d watchers on one prefix, p99", o.watchers), "ms", false, 2},
		rowDef{"watch/delivered", "watch events delivered", "%", true, 2},
		rowDef{"rss", fmt.Sprintf("RSS per member after %dk keys", o.keys/1000), "MB", false, 1},
		rowDef{"disk", "data dir per member after prefill (du)", "MB", false, 1},
		rowDef{"failover", "failover: kill -9 leader -> first write ok (all trials)", "s", false, 3},
	)
	return rows
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func fmtNum(v float64, dec int) string {
	if dec == 0 {
		s := fmt.Sprintf("%.0f", v)
		// Thousands separators.
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	}
	return fmt.Sprintf("%.*f", dec, v)
}

func cell(v []float64, dec int) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s [%s–%s]", fmtNum(median(v), dec), fmtNum(slices.Min(v), dec), fmtNum(slices.Max(v), dec))
}

func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0]); len(f) >= 2 {
			var kb int64
			fmt.Sscan(f[1], &kb)
			mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := firstLine(exec.Command("uname", "-r").Output())
	return fmt.Sprintf("%d CPUs (%s)%s, Linux %s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}

func printReport(w io.Writer, o *options, stores []string, all map[string]results, notes []string, elapsed time.Duration) {
	fmt.Fprintf(w, "\n## storebench %s\n\n", o.startedAt.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- command: `%s`\n", strings.Join(os.Args, " "))
	fmt.Fprintf(w, "- machine: %s\n", machine())
	fmt.Fprintf(w, "- drover: %s (%s), 3 masters on %s, TLS (its cluster CA), --election-timeout %s (heartbeat = election = %s, hashicorp/raft; heartbeats every %s), snapshot threshold 8192 / trailing logs 10240 (defaults)\n",
		o.droverVersion, o.droverBin, strings.Join(o.droverHosts, ", "), o.droverElection, o.droverElection, o.droverElection/10)
	tlsNote := "plaintext client and peer traffic"
	if o.etcdTLS {
		tlsNote = "mutual TLS on client and peer traffic (ECDSA P-256 CA made with drover's pki package)"
	}
	fmt.Fprintf(w, "- etcd: %s, 3 members on %s, %s, --heartbeat-interval %d --election-timeout %d, --snapshot-count %d\n",
		o.etcdVe, strings.Join(o.etcdHosts, ", "), tlsNote, o.etcdHeartbeatMS, o.etcdElectionMS, o.etcdSnapshotCount)
	fmt.Fprintf(w, "- load: %d keys /bench/k/%%08d x %d B prefilled (txns of 100 puts), uniform random keys, %s warm-up + %s measured per row, clients given all endpoints (round robin) unless noted, min(clients, 8) connections; compacted (physical) to the current revision after each row\n",
		o.keys, o.valueSize, o.warm, o.dur)
	fmt.Fprintf(w, "- %d repetitions, order alternating (rep 1: %s), fresh data dirs each; cells are median [min–max] over repetitions; failover pools %d trials per store per repetition\n",
		o.reps, strings.Join(stores, " then "), o.failoverTrials)
	fmt.Fprintf(w, "- watch: %d watchers over %d connections on one prefix, %.0f puts/s; server CPU is utime+stime of all 3 members from /proc/<pid>/stat over the window, divided by acknowledged ops\n",
		o.watchers, o.watchConns, o.watchRate)
	for _, st := range stores {
		var f []float64
		for id, v := range all[st] {
			if strings.HasSuffix(id, "/foreign") {
				f = append(f, v...)
			}
		}
		if len(f) > 0 {
			fmt.Fprintf(w, "- CPU used by other processes on the machine during %s's measured windows: median %.2f, max %.2f cores (of %d)\n", st, median(f), slices.Max(f), runtime.NumCPU())
		}
	}
	fmt.Fprintf(w, "- wall time: %s\n\n", elapsed.Round(time.Second))
	two := len(stores) == 2
	if two {
		fmt.Fprintf(w, "| row | unit | drover | etcd 3.4 | drover/etcd | better |\n|---|---|---|---|---|---|\n")
	} else {
		fmt.Fprintf(w, "| row | unit | %s |\n|---|---|---|\n", stores[0])
	}
	for _, r := range rowDefs(o) {
		var have bool
		for _, s := range stores {
			have = have || len(all[s][r.id]) > 0
		}
		if !have {
			continue
		}
		if !two {
			fmt.Fprintf(w, "| %s | %s | %s |\n", r.label, r.unit, cell(all[stores[0]][r.id], r.dec))
			continue
		}
		d, e := all["drover"][r.id], all["etcd"][r.id]
		ratio := "–"
		better := ""
		if len(d) > 0 && len(e) > 0 && median(e) != 0 {
			q := median(d) / median(e)
			ratio = fmt.Sprintf("%.2f", q)
			switch {
			case (r.higher && q >= 1.05) || (!r.higher && q <= 0.95):
				better = "drover"
			case (r.higher && q <= 0.95) || (!r.higher && q >= 1.05):
				better = "etcd"
			default:
				better = "≈"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.label, r.unit, cell(d, r.dec), cell(e, r.dec), ratio, better)
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n")
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	fmt.Fprintln(w)
}
