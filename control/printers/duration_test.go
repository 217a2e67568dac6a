package printers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

func TestHumanDuration(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-1500 * time.Millisecond, "0s"}, // within a second of clock skew
		{0, "0s"},
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{2 * time.Minute, "2m"},
		{3*time.Minute + 20*time.Second, "3m20s"},
		{10 * time.Minute, "10m"},
		{179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"},
		{5*time.Hour + 12*time.Minute, "5h12m"},
		{8 * time.Hour, "8h"},
		{47 * time.Hour, "47h"},
		{2*day + 3*time.Hour, "2d3h"},
		{7 * day, "7d"},
		{45 * day, "45d"},
		{729 * day, "729d"},
		{2*365*day + 10*day, "2y10d"},
		{3 * 365 * day, "3y"},
		{10 * 365 * day, "10y"},
	} {
		if got := HumanDuration(tc.d); got != tc.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// The apimachinery helper is what kube-apiserver uses for AGE; sweep a
// wide range and require identical output.
func TestHumanDurationMatchesAPIMachinery(t *testing.T) {
	check := func(d time.Duration) {
		t.Helper()
		if got, want := HumanDuration(d), duration.HumanDuration(d); got != want {
			t.Fatalf("HumanDuration(%v) = %q, apimachinery says %q", d, got, want)
		}
	}
	for d := -3 * time.Second; d <= 0; d += 100 * time.Millisecond {
		check(d)
	}
	for d := time.Duration(0); d < 9*365*24*time.Hour; d = d*11/10 + 997*time.Millisecond {
		check(d)
	}
}
