package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Row is one line of the results.
type Row struct {
	Name    string `json:"name"`
	Op      string `json:"op"`
	Clients int    `json:"clients"`
	Objects int    `json:"namespace_pods,omitempty"`

	Ops       int     `json:"ops"`
	Seconds   float64 `json:"window_seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Maxms     float64 `json:"max_ms"`
	// Watch only: from the PUT being sent rather than acknowledged.
	P50FromSendms float64 `json:"p50_from_send_ms,omitempty"`
	P99FromSendms float64 `json:"p99_from_send_ms,omitempty"`

	ErrorCount int            `json:"errors"`
	Errors     map[string]int `json:"error_kinds,omitempty"`
	Conflicts  int            `json:"conflicts_409,omitempty"`

	BytesPerOp   float64 `json:"response_bytes_per_op,omitempty"`
	ObjectsPerOp float64 `json:"objects_per_op,omitempty"`

	// Server CPU: utime+stime of the three masters over the window.
	ServerCPUPerOpUs float64 `json:"server_cpu_us_per_op"`
	CPUPerWhat       string  `json:"server_cpu_per,omitempty"` // "" = per op
	ServerCores      float64 `json:"server_cores"`
	ClientCores      float64 `json:"client_cores"`
	OtherCores       float64 `json:"other_cores"`

	ByMaster []MasterLat `json:"by_master,omitempty"`

	SLOms   float64 `json:"slo_p99_ms,omitempty"`
	Verdict string  `json:"verdict"`

	watchRate float64
}

func (r *Row) verdict() {
	switch {
	case r.Ops == 0:
		r.Verdict = "FAIL (no successful operation)"
	case r.SLOms == 0 && r.ErrorCount == 0:
		r.Verdict = "PASS (every event delivered)"
	case r.SLOms == 0:
		r.Verdict = "FAIL (events lost or wrong)"
	case r.P99ms > r.SLOms:
		r.Verdict = "FAIL"
	case r.ErrorCount > 0:
		r.Verdict = "FAIL (errors)"
	default:
		r.Verdict = "PASS"
	}
}

func (r *Row) short() string {
	return fmt.Sprintf("%d ops, %.1f ops/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, errors %d, 409s %d, server CPU %.0f µs/%s, other %.2f cores -> %s",
		r.Ops, r.OpsPerSec, r.P50ms, r.P99ms, r.Maxms, r.ErrorCount, r.Conflicts, r.ServerCPUPerOpUs, r.cpuUnit(), r.OtherCores, r.Verdict)
}

func (r *Row) cpuUnit() string {
	if r.CPUPerWhat != "" {
		return r.CPUPerWhat
	}
	return "op"
}

// MasterLat is a row's latency for the requests sent to one master.
type MasterLat struct {
	ID     string  `json:"id"`
	Leader bool    `json:"leader"`
	N      int     `json:"n"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
}

// MasterMem is one master's memory and CPU at one moment of the run.
type MasterMem struct {
	When       string  `json:"when"`
	Pods       int     `json:"pods_in_store"`
	ID         string  `json:"id"`
	RSSMB      float64 `json:"rss_mb"`
	AnonMB     float64 `json:"rss_anon_mb"`
	FileMB     float64 `json:"rss_file_mb"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	CPUSeconds float64 `json:"cpu_seconds_since_start"`
	DataDirMB  float64 `json:"data_dir_mb"`
}

// Report is everything a run produced (-json).
type Report struct {
	Command      string             `json:"command"`
	Started      string             `json:"started_utc"`
	WallSeconds  float64            `json:"wall_seconds"`
	Machine      string             `json:"machine"`
	Go           string             `json:"go"`
	Commit       string             `json:"drover_commit"`
	Tree         string             `json:"working_tree"`
	Drover       string             `json:"drover_binary"`
	Setup        []string           `json:"setup"`
	Rows         []*Row             `json:"rows"`
	Watch        []*watchResult     `json:"watch,omitempty"`
	Masters      []MasterMem        `json:"masters"`
	Leader       string             `json:"leader"`
	IdleByMaster string             `json:"masters_idle_cores_by_master"`
	IdleCores    float64            `json:"masters_idle_cores"`
	FillRates    map[string]float64 `json:"fill_creates_per_sec"`
	ErrorSamples []string           `json:"error_samples,omitempty"`
	Profiles     []string           `json:"cpu_profiles,omitempty"`
}

func fmtNum(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmtNum(v, 0)
	case v >= 10:
		return fmtNum(v, 1)
	default:
		return fmtNum(v, 2)
	}
}

func errCell(r *Row) string {
	if r.ErrorCount == 0 {
		return "0"
	}
	var kinds []string
	for k, v := range r.Errors {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(kinds)
	return fmt.Sprintf("%d (%s)", r.ErrorCount, strings.Join(kinds, ", "))
}

// writeMarkdown prints the results table.
func writeMarkdown(w io.Writer, rep *Report) {
	fmt.Fprintln(w, "| row | clients | ops/s | p50 ms | p99 ms | max ms | errors | 409s retried | server CPU µs/op (3 masters) | other processes, cores | SLO p99 | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Rows {
		slo := "—"
		if r.SLOms > 0 {
			slo = "≤ " + fmtNum(r.SLOms/1000, 0) + " s"
		} else if r.Op == "watch" {
			slo = "none (WIP SLI); all delivered"
		}
		tput := fmtNum(r.OpsPerSec, 1)
		if r.OpsPerSec >= 100 {
			tput = fmtNum(r.OpsPerSec, 0)
		}
		if r.Op == "watch" {
			tput += " deliveries/s"
		}
		cpu := fmtNum(r.ServerCPUPerOpUs, 0)
		if r.CPUPerWhat != "" {
			cpu += " per " + r.CPUPerWhat
		}
		conf := "—"
		if r.Op == "update" {
			conf = strconv.Itoa(r.Conflicts)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %s |\n", r.Name, fmtNum(float64(r.Clients), 0), tput,
			fmtMs(r.P50ms), fmtMs(r.P99ms), fmtMs(r.Maxms), errCell(r), conf, cpu, r.OtherCores, slo, r.Verdict)
	}
}

func writeText(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "\n# apibench: the Kubernetes API of a 3-master drover cluster\n\n")
	fmt.Fprintf(w, "- command: `%s`\n", rep.Command)
	fmt.Fprintf(w, "- started: %s UTC, wall time %.0fs\n", rep.Started, rep.WallSeconds)
	fmt.Fprintf(w, "- machine: %s, %s\n", rep.Machine, rep.Go)
	fmt.Fprintf(w, "- drover: commit %s (%s), binary %s\n", rep.Commit, rep.Tree, rep.Drover)
	for _, s := range rep.Setup {
		fmt.Fprintf(w, "- %s\n", s)
	}
	fmt.Fprintf(w, "- idle: the three masters use %.3f cores with no client (3 s before the first row; by master: %s)\n", rep.IdleCores, rep.IdleByMaster)
	fmt.Fprintln(w)
	writeMarkdown(w, rep)
	fmt.Fprintln(w)
	for _, r := range rep.Rows {
		extra := ""
		if r.BytesPerOp > 0 {
			extra = fmt.Sprintf(", %s KB per response", fmtNum(r.BytesPerOp/1024, 0))
		}
		if r.P99FromSendms > 0 {
			extra += fmt.Sprintf(", from the PUT being sent: p50 %s ms, p99 %s ms", fmtMs(r.P50FromSendms), fmtMs(r.P99FromSendms))
		}
		if len(r.ByMaster) > 0 {
			var parts []string
			for _, m := range r.ByMaster {
				role := "follower"
				if m.Leader {
					role = "leader"
				}
				parts = append(parts, fmt.Sprintf("%s (%s) %s/%s", m.ID, role, fmtMs(m.P50ms), fmtMs(m.P99ms)))
			}
			extra += "; p50/p99 ms by master: " + strings.Join(parts, ", ")
		}
		fmt.Fprintf(w, "- %s, %d clients: %d ops in %.1fs; masters used %.2f cores, the generator %.2f, others %.2f%s\n",
			r.Name, r.Clients, r.Ops, r.Seconds, r.ServerCores, r.ClientCores, r.OtherCores, extra)
	}
	for _, wr := range rep.Watch {
		fmt.Fprintf(w, "\nWatch fan-out at %g updates/s: %d watchers (masters' CPU with the streams open and no writes: %.3f cores) (streams opened in %.1fs, %d failed), %d updates acknowledged (%d failed), %d/%d deliveries, %d missing, %d duplicated, %d out of order, %d unexpected, %d events from other writers, %d writer 409s retried, %d streams ended early, %d watchers got every event, %d deliveries read before the writer had its acknowledgement (counted as 0), drain %.1fs after the last write, p99 from ack by the master watched: %v ms, quick-parse mismatches %d\n",
			wr.RatePerSec, wr.Watchers, wr.IdleCores, wr.SetupSeconds, wr.SetupErrors, wr.Writes, wr.WriteErrors, wr.Delivered, wr.Expected, wr.Missing, wr.Duplicates,
			wr.OutOfOrder, wr.Unexpected, wr.Foreign, wr.WriteConflicts, wr.EndedEarly, wr.WatchersAllGot, wr.BeforeAck, wr.DrainSeconds, fmtList(wr.PerMasterP99ms), wr.ParseMismatch)
		if wr.EndedEarlyCause != "" {
			fmt.Fprintf(w, "  first stream that ended early: %s\n", wr.EndedEarlyCause)
		}
	}
	fmt.Fprintf(w, "\nMasters' memory and CPU (/proc/<pid>/status VmRSS and VmHWM, /proc/<pid>/stat utime+stime):\n\n")
	fmt.Fprintln(w, "| when | pods in the store | master | RSS MB | of which anonymous / file-backed MB | peak RSS MB so far | CPU s since start | data dir MB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, m := range rep.Masters {
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.0f / %.0f | %.0f | %.1f | %.1f |\n", m.When, fmtNum(float64(m.Pods), 0), m.ID, m.RSSMB, m.AnonMB, m.FileMB, m.PeakRSSMB, m.CPUSeconds, m.DataDirMB)
	}
	if len(rep.FillRates) > 0 {
		var keys []string
		for k := range rep.FillRates {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "\nUntimed fills (32 clients): ")
		for i, k := range keys {
			if i > 0 {
				fmt.Fprint(w, "; ")
			}
			fmt.Fprintf(w, "%s %.0f creates/s", k, rep.FillRates[k])
		}
		fmt.Fprintln(w)
	}
	if len(rep.ErrorSamples) > 0 {
		fmt.Fprintf(w, "\nFirst errors:\n")
		for _, e := range rep.ErrorSamples {
			fmt.Fprintf(w, "- %s\n", e)
		}
	}
	if len(rep.Profiles) > 0 {
		fmt.Fprintf(w, "\nCPU profiles (go tool pprof -top <bin> <file>):\n")
		for _, p := range rep.Profiles {
			fmt.Fprintf(w, "- %s\n", p)
		}
	}
}

func fmtList(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmtMs(x))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
