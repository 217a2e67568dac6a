// Package fsm is the bridge between Raft and the key space: it decodes
// committed entries, applies them to kv in batches and feeds the resulting
// changes to the watch hub. It is deterministic: no clocks, no randomness, no
// I/O in apply, so every member reaches the same state from the same log.
package fsm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/droverhq/drover/raftstore/command"
	"github.com/droverhq/drover/raftstore/kv"
	"github.com/droverhq/drover/raftstore/watch"
)

// FSM implements raft.BatchingFSM over a kv.Store.
type FSM struct {
	kv  *kv.Store
	hub *watch.Hub
	log *slog.Logger

	// index is the last Raft index handed to this FSM (commands and
	// configuration entries; Raft keeps no-op and barrier entries to itself).
	// Read-index waits compare against it, so it must only count entries
	// every member's FSM sees.
	index atomic.Uint64

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever index advances
}

// New returns an FSM applying to store and publishing to hub.
func New(store *kv.Store, hub *watch.Hub, logger *slog.Logger) *FSM {
	return &FSM{kv: store, hub: hub, log: logger, changed: make(chan struct{})}
}

var _ raft.BatchingFSM = (*FSM)(nil)

// Apply applies one entry.
func (f *FSM) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a batch of committed entries under one kv write lock,
// then publishes the changes. Responses are *command.Response, or nil for
// entries that are not commands.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	cmds := make([]command.Command, 0, len(logs))
	slots := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		c, err := command.DecodeCommand(l.Data)
		if err != nil {
			var unknown *command.UnknownTypeError
			if errors.As(err, &unknown) && unknown.Ignorable {
				f.log.Warn("skipping unknown ignorable command", "index", l.Index, "type", unknown.Type)
				continue
			}
			// Skipping a command we cannot read would silently diverge this
			// member from the others: stop instead.
			panic(fmt.Sprintf("raftstore: cannot apply log entry %d: %v", l.Index, err))
		}
		cmds = append(cmds, c)
		slots = append(slots, i)
	}
	if len(cmds) > 0 {
		resps, changes := f.kv.ApplyCommands(cmds)
		for j, slot := range slots {
			out[slot] = resps[j]
		}
		f.hub.Publish(changes)
	}
	if n := len(logs); n > 0 {
		f.advance(logs[n-1].Index)
	}
	return out
}

func (f *FSM) advance(index uint64) {
	f.index.Store(index)
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Index is the last Raft index applied.
func (f *FSM) Index() uint64 { return f.index.Load() }

// WaitIndex blocks until the FSM has applied index, or ctx ends.
func (f *FSM) WaitIndex(ctx context.Context, index uint64) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if f.index.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Snapshot format (version 2):
//
//	magic "DRVS", byte version, uvarint index, varint revision, uvarint count,
//	then count key-value records (uvarint length, command.AppendKeyValue),
//	in key order, then uvarint lease count and (varint ID, varint TTL) pairs.
const snapshotMagic = "DRVS"
const snapshotVersion = 2

// Snapshot captures an immutable view; Persist streams it.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	// Raft calls Snapshot on the FSM goroutine, so index and view agree.
	return &snapshot{view: f.kv.View(), index: f.index.Load()}, nil
}

type snapshot struct {
	view  *kv.View
	index uint64
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := WriteSnapshot(sink, s.view, s.index); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

// WriteSnapshot streams a view in the snapshot format; Restore reads it.
func WriteSnapshot(out io.Writer, view *kv.View, index uint64) error {
	w := bufio.NewWriterSize(out, 256<<10)
	hdr := append([]byte(snapshotMagic), snapshotVersion)
	hdr = binary.AppendUvarint(hdr, index)
	hdr = binary.AppendVarint(hdr, view.Revision())
	hdr = binary.AppendUvarint(hdr, uint64(view.Len()))
	_, err := w.Write(hdr)
	buf := make([]byte, 0, 1024)
	rec := make([]byte, 0, binary.MaxVarintLen64)
	view.Ascend(func(kv command.KeyValue) bool {
		if err != nil {
			return false
		}
		buf = command.AppendKeyValue(buf[:0], kv)
		if _, err = w.Write(binary.AppendUvarint(rec[:0], uint64(len(buf)))); err != nil {
			return false
		}
		_, err = w.Write(buf)
		return err == nil
	})
	if err == nil {
		leases := view.Leases()
		rec = binary.AppendUvarint(rec[:0], uint64(len(leases)))
		for _, l := range leases {
			rec = binary.AppendVarint(rec, l.ID)
			rec = binary.AppendVarint(rec, l.TTL)
		}
		_, err = w.Write(rec)
	}
	if err == nil {
		err = w.Flush()
	}
	return err
}

func (s *snapshot) Release() {}

// Restore replaces the state with a snapshot's. Watchers that cannot be
// continued across the jump are cut off with a compacted error.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	r := bufio.NewReaderSize(rc, 256<<10)
	magic := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(r, magic); err != nil {
		return fmt.Errorf("restore snapshot: read header: %w", err)
	}
	if string(magic[:4]) != snapshotMagic || magic[4] != snapshotVersion {
		return fmt.Errorf("restore snapshot: not a drover snapshot (header %q)", magic)
	}
	index, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: read index: %w", err)
	}
	rev, err := binary.ReadVarint(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: read revision: %w", err)
	}
	count, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: read count: %w", err)
	}
	b := kv.NewBuilder()
	var buf bytes.Buffer
	var last []byte
	var keyLeases []int64
	for i := uint64(0); i < count; i++ {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("restore snapshot: record %d: %w", i, err)
		}
		// Grow the buffer only as bytes actually arrive, so a corrupt length
		// cannot make a small file allocate gigabytes.
		buf.Reset()
		if _, err := io.CopyN(&buf, r, int64(min(n, 1<<40))); err != nil || uint64(buf.Len()) != n {
			return fmt.Errorf("restore snapshot: record %d: length %d is corrupt (truncated: %v)", i, n, err)
		}
		kv, rest, err := command.DecodeKeyValue(buf.Bytes())
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("restore snapshot: record %d: corrupt", i)
		}
		if i > 0 && bytes.Compare(last, kv.Key) >= 0 {
			return fmt.Errorf("restore snapshot: record %d: key %q is not after %q", i, kv.Key, last)
		}
		last = kv.Key
		if kv.Lease != 0 {
			keyLeases = append(keyLeases, kv.Lease)
		}
		b.Add(kv)
	}
	nleases, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: read lease count: %w", err)
	}
	leases := map[int64]bool{}
	for i := uint64(0); i < nleases; i++ {
		id, err1 := binary.ReadVarint(r)
		ttl, err2 := binary.ReadVarint(r)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("restore snapshot: lease %d: %w", i, err)
		}
		if id == 0 || leases[id] {
			return fmt.Errorf("restore snapshot: lease %d: ID %d is zero or repeated", i, id)
		}
		leases[id] = true
		b.AddLease(kv.LeaseInfo{ID: id, TTL: ttl})
	}
	for _, l := range keyLeases {
		if !leases[l] {
			return fmt.Errorf("restore snapshot: a key names lease %d, which the snapshot does not hold", l)
		}
	}
	// Backups may be zero-padded (to etcd's 512-byte alignment); anything
	// else after the leases is corruption.
	for {
		c, err := r.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil || c != 0 {
			return fmt.Errorf("restore snapshot: unexpected data after %d records", count)
		}
	}
	f.kv.Restore(b, rev)
	f.hub.Reset(rev)
	f.advance(index)
	return nil
}

// ResetIndex reads a snapshot stream's header and returns the stream with
// its Raft index set to 0, for restoring a backup into a new cluster, and
// by how many bytes that made it shorter.
func ResetIndex(r io.Reader) (io.Reader, int64, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, 0, fmt.Errorf("read snapshot header: %w", err)
	}
	if string(magic[:4]) != snapshotMagic || magic[4] != snapshotVersion {
		return nil, 0, fmt.Errorf("not a drover snapshot (header %q)", magic)
	}
	idx, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, 0, fmt.Errorf("read snapshot index: %w", err)
	}
	shrink := int64(len(binary.AppendUvarint(nil, idx)) - 1)
	hdr := binary.AppendUvarint(magic, 0)
	return io.MultiReader(bytes.NewReader(hdr), br), shrink, nil
}
