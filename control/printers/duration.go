package printers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HumanDuration formats an age the way kubectl's AGE column does: precise
// while short ("90s", "3m20s", "5h12m"), coarser as it grows ("45d", "3y").
// A duration slightly in the future (up to one second of clock skew between
// the machine that stamped the object and the one printing it) counts as
// "0s"; anything further in the future is "<invalid>", as kubectl shows it.
func HumanDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	switch {
	case secs < -1:
		return "<invalid>"
	case secs < 0:
		return "0s"
	case secs < 2*60:
		return fmt.Sprintf("%ds", secs)
	}

	mins := int64(d / time.Minute)
	switch {
	case mins < 10:
		return withRemainder(mins, "m", secs%60, "s")
	case mins < 3*60:
		return fmt.Sprintf("%dm", mins)
	}

	hours := int64(d / time.Hour)
	days := hours / 24
	years := days / 365
	switch {
	case hours < 8:
		return withRemainder(hours, "h", mins%60, "m")
	case hours < 48:
		return fmt.Sprintf("%dh", hours)
	case hours < 8*24:
		return withRemainder(days, "d", hours%24, "h")
	case hours < 2*365*24:
		return fmt.Sprintf("%dd", days)
	case hours < 8*365*24:
		return withRemainder(years, "y", days%365, "d")
	}
	return fmt.Sprintf("%dy", years)
}

// withRemainder prints "<major><unit>" and appends the minor unit only when
// it is non-zero, so "3m" rather than "3m0s".
func withRemainder(major int64, majorUnit string, minor int64, minorUnit string) string {
	if minor == 0 {
		return fmt.Sprintf("%d%s", major, majorUnit)
	}
	return fmt.Sprintf("%d%s%d%s", major, majorUnit, minor, minorUnit)
}

// age renders a timestamp as kubectl's AGE cell: "<unknown>" when unset.
func age(ts metav1.Time, now time.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return HumanDuration(now.Sub(ts.Time))
}

// microAge is age for MicroTime fields (Event.eventTime, series times).
func microAge(ts metav1.MicroTime, now time.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return HumanDuration(now.Sub(ts.Time))
}
