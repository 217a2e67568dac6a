package crilog

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fixedClock() func() time.Time {
	t := time.Date(2026, 1, 2, 15, 4, 5, 120, time.UTC)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

func readEntries(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		e, err := ParseEntry(append([]byte(nil), sc.Bytes()...))
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestAppendEntryFormat(t *testing.T) {
	ts := time.Date(2026, 1, 2, 15, 4, 5, 0, time.FixedZone("x", 3600))
	got := string(AppendEntry(nil, ts, Stdout, false, []byte("hello world")))
	want := "2026-01-02T14:04:05.000000000Z stdout F hello world\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = string(AppendEntry(nil, ts, Stderr, true, nil))
	if want := "2026-01-02T14:04:05.000000000Z stderr P \n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct {
		in      string
		stream  string
		partial bool
		content string
		bad     bool
	}{
		{in: "2026-01-02T15:04:05.000000001Z stdout F a b  c\n", stream: "stdout", content: "a b  c"},
		{in: "2026-01-02T15:04:05.5Z stderr P x", stream: "stderr", partial: true, content: "x"},
		{in: "2026-01-02T15:04:05Z stdout F", stream: "stdout", content: ""},
		{in: "2026-01-02T15:04:05Z stdout X y", bad: true},
		{in: "yesterday stdout F y", bad: true},
		{in: "2026-01-02T15:04:05Z", bad: true},
		{in: "", bad: true},
	} {
		e, err := ParseEntry([]byte(tc.in))
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if e.Stream != tc.stream || e.Partial != tc.partial || string(e.Content) != tc.content {
			t.Errorf("%q: got %+v", tc.in, e)
		}
	}
}

func TestCopySplitsLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := Open(path, 0, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxLineSize+10)
	in := "one\n\ntwo words\n" + long + "\nlast-no-newline"
	if err := Copy(w, Stdout, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	es := readEntries(t, path)
	type ent struct {
		p bool
		c string
	}
	var got []ent
	for _, e := range es {
		got = append(got, ent{e.Partial, string(e.Content)})
	}
	want := []ent{{false, "one"}, {false, ""}, {false, "two words"}, {true, long[:MaxLineSize]}, {false, long[MaxLineSize:]}, {false, "last-no-newline"}}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %v/%d bytes, want %v/%d bytes", i, got[i].p, len(got[i].c), want[i].p, len(want[i].c))
		}
	}
	for i := 1; i < len(es); i++ {
		if !es[i].Time.After(es[i-1].Time) {
			t.Errorf("entry %d not after entry %d", i, i-1)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	entry := len(AppendEntry(nil, time.Now(), Stdout, false, []byte("0123456789")))
	max := int64(entry * 3) // three entries per file
	w, err := Open(path, max, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if err := w.WriteEntry(Stdout, false, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// 8 entries: files of 3, 3, 2; the first is gone.
	if n := len(readEntries(t, path)); n != 2 {
		t.Errorf("current file has %d entries, want 2", n)
	}
	if n := len(readEntries(t, path+RotatedSuffix)); n != 3 {
		t.Errorf("previous file has %d entries, want 3", n)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d files in the log dir, want 2", len(ents))
	}
	for _, p := range []string{path, path + RotatedSuffix} {
		fi, _ := os.Stat(p)
		if fi.Size() > max {
			t.Errorf("%s is %d bytes, over the %d limit", p, fi.Size(), max)
		}
	}
	// Reopening appends and counts the existing size.
	w, err = Open(path, max, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	w.WriteEntry(Stderr, false, []byte("0123456789"))
	w.WriteEntry(Stderr, false, []byte("0123456789"))
	w.Close()
	if n := len(readEntries(t, path)); n != 1 {
		t.Errorf("after reopen the current file has %d entries, want 1", n)
	}
	if es := readEntries(t, path+RotatedSuffix); len(es) != 3 || es[2].Stream != Stderr {
		t.Errorf("after reopen the previous file has %d entries", len(es))
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, err := Open(filepath.Join(t.TempDir(), "c.log"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.WriteEntry(Stdout, false, []byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
