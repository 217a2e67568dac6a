package command

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt is returned for bytes that are not a valid encoding.
var ErrCorrupt = errors.New("command: corrupt encoding")

// UnknownTypeError is returned for a command type this code does not know.
// Ignorable reports whether the sender marked it safe to skip.
type UnknownTypeError struct {
	Type      Type
	Ignorable bool
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("command: unknown type %d (ignorable=%v)", byte(e.Type&^IgnoreUnknown), e.Ignorable)
}

// EncodeTxn encodes a transaction as a command entry.
func EncodeTxn(t *Txn) []byte {
	size := 2 + 3
	for _, c := range t.Compares {
		size += 3 + 10 + len(c.Key) + len(c.Value) + 4
	}
	for _, ops := range [][]Op{t.Success, t.Failure} {
		for _, op := range ops {
			size += 2 + 10 + len(op.Key) + len(op.End) + len(op.Value) + 6
		}
	}
	b := make([]byte, 0, size)
	b = append(b, Version, byte(TypeTxn))
	b = binary.AppendUvarint(b, uint64(len(t.Compares)))
	for _, c := range t.Compares {
		b = appendBytes(b, c.Key)
		b = append(b, byte(c.Target), byte(c.Result))
		if c.Target == TargetValue {
			b = appendBytes(b, c.Value)
		} else {
			b = binary.AppendVarint(b, c.Int)
		}
	}
	b = appendOps(b, t.Success)
	b = appendOps(b, t.Failure)
	return b
}

const (
	flagPrevKV    = 1
	flagCountOnly = 2
)

func appendOps(b []byte, ops []Op) []byte {
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, op := range ops {
		var flags byte
		if op.PrevKV {
			flags |= flagPrevKV
		}
		if op.CountOnly {
			flags |= flagCountOnly
		}
		b = append(b, byte(op.Type), flags)
		b = appendBytes(b, op.Key)
		switch op.Type {
		case OpPut:
			b = appendBytes(b, op.Value)
			b = binary.AppendVarint(b, op.Lease)
		case OpDelete:
			b = appendBytes(b, op.End)
		case OpRange:
			b = appendBytes(b, op.End)
			b = binary.AppendVarint(b, op.Limit)
		}
	}
	return b
}

// EncodeLeaseGrant encodes a lease grant.
func EncodeLeaseGrant(id, ttl int64) []byte {
	b := []byte{Version, byte(TypeLeaseGrant)}
	b = binary.AppendVarint(b, id)
	return binary.AppendVarint(b, ttl)
}

// EncodeLeaseRevoke encodes a lease revoke.
func EncodeLeaseRevoke(id int64) []byte {
	return binary.AppendVarint([]byte{Version, byte(TypeLeaseRevoke)}, id)
}

// DecodeCommand decodes any command entry.
func DecodeCommand(data []byte) (Command, error) {
	if len(data) < 2 {
		return Command{}, fmt.Errorf("%w: %d bytes is too short for a header", ErrCorrupt, len(data))
	}
	if data[0] != Version {
		return Command{}, fmt.Errorf("%w: format version %d, want %d", ErrCorrupt, data[0], Version)
	}
	typ := Type(data[1])
	switch typ {
	case TypeTxn:
		t, err := Decode(data)
		if err != nil {
			return Command{}, err
		}
		return Command{Type: typ, Txn: t}, nil
	case TypeLeaseGrant, TypeLeaseRevoke:
		d := decoder{b: data[2:]}
		l := &LeaseCmd{ID: d.varint()}
		if typ == TypeLeaseGrant {
			l.TTL = d.varint()
		}
		if d.err == nil && len(d.b) != 0 {
			d.fail("%d trailing bytes", len(d.b))
		}
		if d.err != nil {
			return Command{}, d.err
		}
		return Command{Type: typ, Lease: l}, nil
	}
	return Command{}, &UnknownTypeError{Type: typ, Ignorable: typ&IgnoreUnknown != 0}
}

// Decode decodes a transaction entry; any other type (lease commands, or
// one this code does not know) yields *UnknownTypeError. DecodeCommand
// decodes every type.
func Decode(data []byte) (*Txn, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("%w: %d bytes is too short for a header", ErrCorrupt, len(data))
	}
	if data[0] != Version {
		return nil, fmt.Errorf("%w: format version %d, want %d", ErrCorrupt, data[0], Version)
	}
	typ := Type(data[1])
	if typ != TypeTxn {
		return nil, &UnknownTypeError{Type: typ, Ignorable: typ&IgnoreUnknown != 0}
	}
	d := decoder{b: data[2:]}
	t := &Txn{}
	n := d.count()
	if n > 0 {
		t.Compares = make([]Compare, n)
	}
	for i := range t.Compares {
		c := &t.Compares[i]
		c.Key = d.bytes()
		c.Target = Target(d.byte())
		c.Result = Result(d.byte())
		if c.Target < TargetVersion || c.Target > TargetLease {
			d.fail("compare target %d", c.Target)
		}
		if c.Result < Equal || c.Result > Greater {
			d.fail("compare result %d", c.Result)
		}
		if c.Target == TargetValue {
			c.Value = d.bytes()
		} else {
			c.Int = d.varint()
		}
	}
	t.Success = d.ops()
	t.Failure = d.ops()
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return t, nil
}

// EncodeResponse encodes a Response, for forwarding it between members.
func EncodeResponse(r *Response) []byte {
	b := make([]byte, 0, 32)
	b = append(b, Version)
	b = binary.AppendVarint(b, r.Revision)
	if r.Succeeded {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = append(b, byte(r.Err))
	b = binary.AppendUvarint(b, uint64(len(r.Results)))
	for _, res := range r.Results {
		var flags byte
		if res.More {
			flags = 1
		}
		b = append(b, flags)
		b = binary.AppendVarint(b, res.Count)
		b = binary.AppendVarint(b, res.Deleted)
		b = binary.AppendUvarint(b, uint64(len(res.KVs)))
		for _, kv := range res.KVs {
			b = appendKeyValue(b, kv)
		}
	}
	return b
}

func appendKeyValue(b []byte, kv KeyValue) []byte {
	b = appendBytes(b, kv.Key)
	b = appendBytes(b, kv.Value)
	b = binary.AppendVarint(b, kv.CreateRev)
	b = binary.AppendVarint(b, kv.ModRev)
	b = binary.AppendVarint(b, kv.Version)
	return binary.AppendVarint(b, kv.Lease)
}

// DecodeResponse decodes what EncodeResponse wrote.
func DecodeResponse(data []byte) (*Response, error) {
	if len(data) < 1 || data[0] != Version {
		return nil, fmt.Errorf("%w: response header", ErrCorrupt)
	}
	d := decoder{b: data[1:]}
	r := &Response{Revision: d.varint(), Succeeded: d.bool(), Err: ErrCode(d.byte())}
	n := d.count()
	if n > 0 {
		r.Results = make([]OpResult, n)
	}
	for i := range r.Results {
		res := &r.Results[i]
		res.More = d.bool()
		res.Count = d.varint()
		res.Deleted = d.varint()
		if m := d.count(); m > 0 {
			res.KVs = make([]KeyValue, m)
			for j := range res.KVs {
				res.KVs[j] = d.keyValue()
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// AppendKeyValue and DecodeKeyValue are the record format of snapshots.
func AppendKeyValue(b []byte, kv KeyValue) []byte { return appendKeyValue(b, kv) }

// DecodeKeyValue decodes one record written by AppendKeyValue and returns the
// rest of the input.
func DecodeKeyValue(data []byte) (KeyValue, []byte, error) {
	d := decoder{b: data}
	kv := d.keyValue()
	return kv, d.b, d.err
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads fields and remembers the first error, so decoding code reads
// straight through; every length is checked against what remains, so corrupt
// input can never make it allocate more than the input's size.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool {
	switch v := d.byte(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("boolean byte %d", v)
		return false
	}
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count; every element takes at least one byte.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail("count %d exceeds remaining %d bytes", v, len(d.b))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length %d exceeds remaining %d bytes", n, len(d.b))
		return nil
	}
	if n == 0 {
		return nil
	}
	// Copy: decoded commands outlive the Raft log buffer they came from.
	v := make([]byte, n)
	copy(v, d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) ops() []Op {
	n := d.count()
	if n == 0 {
		return nil
	}
	ops := make([]Op, n)
	for i := range ops {
		op := &ops[i]
		op.Type = OpType(d.byte())
		flags := d.byte()
		op.PrevKV = flags&flagPrevKV != 0
		op.CountOnly = flags&flagCountOnly != 0
		op.Key = d.bytes()
		switch op.Type {
		case OpPut:
			op.Value = d.bytes()
			op.Lease = d.varint()
		case OpDelete:
			op.End = d.bytes()
		case OpRange:
			op.End = d.bytes()
			op.Limit = d.varint()
		default:
			d.fail("op type %d", op.Type)
			return nil
		}
	}
	return ops
}

func (d *decoder) keyValue() KeyValue {
	return KeyValue{Key: d.bytes(), Value: d.bytes(), CreateRev: d.varint(), ModRev: d.varint(), Version: d.varint(), Lease: d.varint()}
}
