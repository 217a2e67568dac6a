package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// mergeReports prints, for reports of several runs (-json files), every
// row's median [min–max] over the runs and how many runs met the SLO.
func mergeReports(w io.Writer, paths []string) error {
	var reps []*Report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		reps = append(reps, &r)
	}
	if len(reps) == 0 {
		return fmt.Errorf("-merge: no reports given")
	}
	type key struct {
		name    string
		clients int
	}
	var order []key
	rows := map[key][]*Row{}
	for _, r := range reps {
		for _, row := range r.Rows {
			k := key{row.Name, row.Clients}
			if _, ok := rows[k]; !ok {
				order = append(order, k)
			}
			rows[k] = append(rows[k], row)
		}
	}
	fmt.Fprintf(w, "%d runs:\n", len(reps))
	for _, r := range reps {
		fmt.Fprintf(w, "- %s UTC, drover %s, leader %s: `%s`\n", r.Started, r.Commit, r.Leader, r.Command)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Cells: median [min–max] over the runs.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| row | clients | runs | ops/s | p50 ms | p99 ms | errors (all runs) | server CPU µs/op | other processes, cores | SLO p99 | runs meeting it |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, k := range order {
		rs := rows[k]
		col := func(f func(*Row) float64, fm func(float64) string) string {
			var v []float64
			for _, r := range rs {
				v = append(v, f(r))
			}
			slices.Sort(v)
			med := v[len(v)/2]
			if len(v)%2 == 0 {
				med = (v[len(v)/2-1] + v[len(v)/2]) / 2
			}
			if len(v) == 1 {
				return fm(med)
			}
			return fmt.Sprintf("%s [%s–%s]", fm(med), fm(v[0]), fm(v[len(v)-1]))
		}
		tput := func(x float64) string {
			if x >= 100 {
				return fmtNum(x, 0)
			}
			return fmtNum(x, 1)
		}
		errs, pass := 0, 0
		for _, r := range rs {
			errs += r.ErrorCount
			if strings.HasPrefix(r.Verdict, "PASS") {
				pass++
			}
		}
		slo := "—"
		if rs[0].SLOms > 0 {
			slo = "≤ " + fmtNum(rs[0].SLOms/1000, 0) + " s"
		} else if rs[0].Op == "watch" {
			slo = "none (WIP SLI); all delivered"
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %d | %s | %s | %s | %d of %d |\n", k.name, fmtNum(float64(k.clients), 0), len(rs),
			col(func(r *Row) float64 { return r.OpsPerSec }, tput),
			col(func(r *Row) float64 { return r.P50ms }, fmtMs),
			col(func(r *Row) float64 { return r.P99ms }, fmtMs),
			errs,
			col(func(r *Row) float64 { return r.ServerCPUPerOpUs }, func(x float64) string { return fmtNum(x, 0) })+perWrite(rs[0]),
			col(func(r *Row) float64 { return r.OtherCores }, func(x float64) string { return fmtNum(x, 2) }),
			slo, pass, len(rs))
	}
	return nil
}

// perWrite marks the fan-out rows, whose CPU is per write (all deliveries
// included), not per delivery.
func perWrite(r *Row) string {
	if r.Op == "watch" || r.Op == "update-fanout" {
		return " per write"
	}
	return ""
}
