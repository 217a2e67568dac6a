// Package command defines the write commands the store replicates through
// Raft and their compact, versioned binary encoding.
//
// Key writes are transactions: compares, then the success or failure ops,
// applied at one revision. A plain Put is a transaction with no compares and
// one op. Lease grants and revokes are the other commands; a revoke deletes
// the lease's keys at one revision.
//
// Encoding (version 1):
//
//	byte    format version (1)
//	byte    type; the high bit (IgnoreUnknown) lets an older member skip a
//	        type it does not know instead of halting, for rolling upgrades
//	...     the type's body: uvarints and length-prefixed byte strings
package command

import "fmt"

// Version is the encoding format version written by this code.
const Version byte = 1

// Type identifies the kind of command in an entry.
type Type byte

const (
	// TypeTxn is a transaction: compares, then success or failure ops.
	TypeTxn Type = 1
	// TypeLeaseGrant creates a lease with an ID and a TTL in seconds.
	TypeLeaseGrant Type = 2
	// TypeLeaseRevoke deletes a lease and every key attached to it.
	TypeLeaseRevoke Type = 3

	// IgnoreUnknown marks a type an older member may skip when it does not
	// know it. Types without the bit halt the apply loop if unknown, because
	// skipping them would diverge the state machines.
	IgnoreUnknown Type = 0x80
)

// OpType is the kind of one operation inside a transaction.
type OpType byte

const (
	OpRange  OpType = 1 // read keys at the transaction's revision
	OpPut    OpType = 2 // set one key
	OpDelete OpType = 3 // delete one key, or [Key, End)
)

func (t OpType) String() string {
	switch t {
	case OpRange:
		return "range"
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", byte(t))
}

// Op is one operation of a transaction.
//
// For OpRange and OpDelete, an empty End selects the single key Key, and a
// non-empty End selects [Key, End). End "\x00" means every key >= Key, as in
// etcd.
type Op struct {
	Type      OpType
	Key       []byte
	End       []byte
	Value     []byte // OpPut
	Lease     int64  // OpPut: attach the key to this lease (0: none)
	PrevKV    bool   // OpPut, OpDelete: return the previous key-value(s)
	Limit     int64  // OpRange: at most this many keys; 0 means no limit
	CountOnly bool   // OpRange: return only the count
}

// Target is what a Compare looks at.
type Target byte

const (
	TargetVersion   Target = 1 // number of writes since creation; 0 means absent
	TargetCreateRev Target = 2
	TargetModRev    Target = 3
	TargetValue     Target = 4
	TargetLease     Target = 5 // the key's lease ID; 0 when none or absent
)

// Result is how a Compare relates the key's target to the given operand.
type Result byte

const (
	Equal    Result = 1
	NotEqual Result = 2
	Less     Result = 3
	Greater  Result = 4
)

// Compare is one guard of a transaction. An absent key has version,
// create and mod revision 0 and an empty value; comparisons against Value on
// an absent key are false whatever the result, as in etcd.
type Compare struct {
	Key    []byte
	Target Target
	Result Result
	Int    int64  // operand for version and revisions
	Value  []byte // operand for TargetValue
}

// Txn is the one write command: if every compare holds, Success runs,
// otherwise Failure. All ops apply atomically at one revision.
type Txn struct {
	Compares []Compare
	Success  []Op
	Failure  []Op
}

// KeyValue is a key with its value and revision metadata.
type KeyValue struct {
	Key       []byte
	Value     []byte
	CreateRev int64
	ModRev    int64
	Version   int64
	Lease     int64 // the lease the key is attached to; 0: none
}

// OpResult is the outcome of one Op.
type OpResult struct {
	// KVs holds the keys read by OpRange, or the previous key-values of a
	// put or delete when PrevKV was asked for.
	KVs     []KeyValue
	Count   int64 // OpRange: keys in range (before limit); OpDelete: keys deleted
	More    bool  // OpRange: the limit cut the result short
	Deleted int64
}

// ErrCode is a business error of an applied command: it was committed
// but changed nothing, for a reason every member agrees on.
type ErrCode byte

const (
	ErrNone          ErrCode = 0
	ErrLeaseNotFound ErrCode = 1
	ErrLeaseExists   ErrCode = 2
)

// Response is the result of applying a command.
type Response struct {
	// Revision is the store revision after the command: the new revision
	// when it wrote something, or the current one when it did not.
	Revision  int64
	Succeeded bool
	Results   []OpResult
	Err       ErrCode
}

// LeaseCmd grants or revokes a lease.
type LeaseCmd struct {
	ID  int64
	TTL int64 // seconds; grant only
}

// Command is one decoded log entry: exactly one of Txn and Lease is set.
type Command struct {
	Type  Type
	Txn   *Txn
	Lease *LeaseCmd
}

// Put builds a single-op transaction that sets key to value.
func Put(key, value []byte, prevKV bool) *Txn {
	return &Txn{Success: []Op{{Type: OpPut, Key: key, Value: value, PrevKV: prevKV}}}
}

// Delete builds a single-op transaction deleting key, or [key, end) when end
// is non-empty.
func Delete(key, end []byte, prevKV bool) *Txn {
	return &Txn{Success: []Op{{Type: OpDelete, Key: key, End: end, PrevKV: prevKV}}}
}

// PrefixEnd returns the smallest key greater than every key with the given
// prefix, so [prefix, PrefixEnd(prefix)) is the prefix range. A prefix of only
// 0xff bytes (or empty) has no upper bound: it returns "\x00", the "to the
// end" marker.
func PrefixEnd(prefix []byte) []byte {
	end := make([]byte, len(prefix))
	copy(end, prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

// IsWrite reports whether the transaction can change the store.
func (t *Txn) IsWrite() bool {
	for _, ops := range [][]Op{t.Success, t.Failure} {
		for _, op := range ops {
			if op.Type == OpPut || op.Type == OpDelete {
				return true
			}
		}
	}
	return false
}
