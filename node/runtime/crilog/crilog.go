// Package crilog writes and reads container logs in the CRI format, one
// entry per line:
//
//	2026-01-02T15:04:05.123456789Z stdout F hello world
//
// The fields are a fixed-width RFC 3339 UTC timestamp with nanoseconds,
// the stream ("stdout" or "stderr"), a tag ("F" for a full line, "P" for
// a part of a line too long for one entry; the last part is "F"), and the
// content without its newline.
//
// A Writer rotates its file by size: when the next entry would take the
// file past MaxSize, the file is renamed to Path+".1" (replacing the
// previous one) and a new file is started, so at most two files exist.
package crilog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Defaults.
const (
	// DefaultMaxSize is the size at which a log file is rotated.
	DefaultMaxSize = 10 << 20
	// MaxLineSize is the longest content of one entry; longer lines are
	// split into partial entries.
	MaxLineSize = 16 << 10
)

// TimeLayout is RFC 3339 with a fixed nine-digit fraction, so that entries
// sort as text.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// RotatedSuffix is appended to a log's path to name its previous file.
const RotatedSuffix = ".1"

// Writer appends entries to a log file, rotating it by size. It is safe for
// concurrent use (stdout and stderr copiers share one).
type Writer struct {
	path    string
	maxSize int64
	now     func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte
}

// Open opens (creating or appending to) the log at path. maxSize <= 0 means
// DefaultMaxSize. now may be nil (time.Now).
func Open(path string, maxSize int64, now func() time.Time) (*Writer, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if now == nil {
		now = time.Now
	}
	w := &Writer{path: path, maxSize: maxSize, now: now}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("crilog: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// Path is the current log file.
func (w *Writer) Path() string { return w.path }

// WriteEntry appends one entry stamped with the current time. content must
// not contain a newline.
func (w *Writer) WriteEntry(stream string, partial bool, content []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("crilog: writer closed")
	}
	w.buf = AppendEntry(w.buf[:0], w.now(), stream, partial, content)
	if w.size > 0 && w.size+int64(len(w.buf)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("crilog: %w", err)
	}
	return nil
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("crilog: rotate: %w", err)
	}
	w.f = nil
	if err := os.Rename(w.path, w.path+RotatedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("crilog: rotate: %w", err)
	}
	return w.open()
}

// Close closes the file. Later writes fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// AppendEntry appends the text of one entry, newline included, to b.
func AppendEntry(b []byte, t time.Time, stream string, partial bool, content []byte) []byte {
	b = t.UTC().AppendFormat(b, TimeLayout)
	b = append(b, ' ')
	b = append(b, stream...)
	if partial {
		b = append(b, " P "...)
	} else {
		b = append(b, " F "...)
	}
	b = append(b, content...)
	return append(b, '\n')
}

// Copy reads r until EOF or an error and writes one entry per line to w,
// splitting lines longer than MaxLineSize into partial entries. A last line
// without a newline is written as a full entry. It returns r's error, or
// nil at EOF. Write errors do not stop it: it keeps reading so the writing
// process never blocks on its output (those lines are lost).
func Copy(w *Writer, stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxLineSize)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			_ = w.WriteEntry(stream, false, line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			_ = w.WriteEntry(stream, true, line)
		default:
			if len(line) > 0 {
				_ = w.WriteEntry(stream, false, line)
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// Entry is one parsed log entry.
type Entry struct {
	Time    time.Time
	Stream  string
	Partial bool
	Content []byte // aliases the parsed line
}

// ParseEntry parses one line (with or without its newline).
func ParseEntry(line []byte) (Entry, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	var e Entry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return e, fmt.Errorf("crilog: no stream in %q", line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, fmt.Errorf("crilog: bad timestamp: %w", err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return e, fmt.Errorf("crilog: no tag in %q", line)
	}
	tag, content, _ := bytes.Cut(rest, []byte{' '})
	switch string(tag) {
	case "F":
	case "P":
		e.Partial = true
	default:
		return e, fmt.Errorf("crilog: bad tag %q", tag)
	}
	e.Time, e.Stream, e.Content = t, string(stream), content
	return e, nil
}
