package command

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// nonEmpty returns nil for an empty slice: the codec writes nil and empty
// byte strings the same way, and decodes both as nil.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// wantDecoded is the model of what Decode(EncodeTxn(t)) yields: only the
// fields each compare target and op type encodes survive, empty byte strings
// and empty lists become nil.
func wantDecoded(t *Txn) *Txn {
	out := &Txn{}
	for _, c := range t.Compares {
		w := Compare{Key: nonEmpty(c.Key), Target: c.Target, Result: c.Result}
		if c.Target == TargetValue {
			w.Value = nonEmpty(c.Value)
		} else {
			w.Int = c.Int
		}
		out.Compares = append(out.Compares, w)
	}
	ops := func(in []Op) []Op {
		var res []Op
		for _, op := range in {
			w := Op{Type: op.Type, Key: nonEmpty(op.Key), PrevKV: op.PrevKV, CountOnly: op.CountOnly}
			switch op.Type {
			case OpPut:
				w.Value = nonEmpty(op.Value)
				w.Lease = op.Lease
			case OpDelete:
				w.End = nonEmpty(op.End)
			case OpRange:
				w.End = nonEmpty(op.End)
				w.Limit = op.Limit
			}
			res = append(res, w)
		}
		return res
	}
	out.Success = ops(t.Success)
	out.Failure = ops(t.Failure)
	return out
}

// wantDecodedResponse is the model of DecodeResponse(EncodeResponse(r)).
func wantDecodedResponse(r *Response) *Response {
	out := &Response{Revision: r.Revision, Succeeded: r.Succeeded, Err: r.Err}
	for _, res := range r.Results {
		w := OpResult{Count: res.Count, More: res.More, Deleted: res.Deleted}
		for _, kv := range res.KVs {
			w.KVs = append(w.KVs, KeyValue{
				Key: nonEmpty(kv.Key), Value: nonEmpty(kv.Value),
				CreateRev: kv.CreateRev, ModRev: kv.ModRev, Version: kv.Version, Lease: kv.Lease,
			})
		}
		out.Results = append(out.Results, w)
	}
	return out
}

var (
	allTargets = []Target{TargetVersion, TargetCreateRev, TargetModRev, TargetValue, TargetLease}
	allResults = []Result{Equal, NotEqual, Less, Greater}
)

// txnCases are valid transactions; they also seed FuzzDecode.
func txnCases() []struct {
	name string
	txn  *Txn
} {
	big := bytes.Repeat([]byte{0xab, 0x00, 0xff}, 1<<18) // 768 KiB
	bigKey := bytes.Repeat([]byte("k"), 300)             // length needs a 2-byte uvarint

	var everyCompare []Compare
	for _, tg := range allTargets {
		for _, r := range allResults {
			c := Compare{Key: []byte{byte(tg), byte(r)}, Target: tg, Result: r}
			if tg == TargetValue {
				c.Value = []byte{0x00, byte(r), 0xff}
			} else {
				c.Int = int64(tg)*100 + int64(r)
			}
			everyCompare = append(everyCompare, c)
		}
	}

	var everyOp []Op
	for _, typ := range []OpType{OpRange, OpPut, OpDelete} {
		for _, prev := range []bool{false, true} {
			for _, countOnly := range []bool{false, true} {
				op := Op{Type: typ, Key: []byte("key-" + typ.String()), PrevKV: prev, CountOnly: countOnly}
				switch typ {
				case OpRange:
					op.End = []byte("key-z")
					op.Limit = 7
				case OpPut:
					op.Value = []byte("value")
				case OpDelete:
					op.End = []byte{0}
				}
				everyOp = append(everyOp, op)
			}
		}
	}

	return []struct {
		name string
		txn  *Txn
	}{
		{"empty", &Txn{}},
		{"empty lists", &Txn{Compares: []Compare{}, Success: []Op{}, Failure: []Op{}}},
		{"put", Put([]byte("a"), []byte("1"), false)},
		{"put prevkv", Put([]byte("a"), []byte("1"), true)},
		{"put empty value", Put([]byte("a"), []byte{}, false)},
		{"put nil value", Put([]byte("a"), nil, false)},
		{"put empty key", Put(nil, []byte("v"), false)},
		{"delete key", Delete([]byte("a"), nil, false)},
		{"delete range prevkv", Delete([]byte("a"), []byte("b"), true)},
		{"delete to end", Delete([]byte{0}, []byte{0}, false)},
		{"every compare", &Txn{Compares: everyCompare}},
		{"every op in success", &Txn{Success: everyOp}},
		{"every op in failure", &Txn{Failure: everyOp}},
		{"compares and both branches", &Txn{
			Compares: everyCompare[:3],
			Success:  everyOp[:5],
			Failure:  everyOp[5:],
		}},
		{"extreme ints", &Txn{
			Compares: []Compare{
				{Key: []byte("a"), Target: TargetVersion, Result: Equal, Int: 0},
				{Key: []byte("a"), Target: TargetCreateRev, Result: Less, Int: math.MaxInt64},
				{Key: []byte("a"), Target: TargetModRev, Result: Greater, Int: math.MinInt64},
				{Key: []byte("a"), Target: TargetModRev, Result: NotEqual, Int: -1},
			},
			Success: []Op{
				{Type: OpRange, Key: []byte("a"), End: []byte{0}, Limit: math.MaxInt64},
				{Type: OpRange, Key: []byte("a"), Limit: math.MinInt64},
				{Type: OpRange, Key: []byte("a"), Limit: -1},
			},
		}},
		{"value compare with empty operand", &Txn{Compares: []Compare{
			{Key: []byte("a"), Target: TargetValue, Result: Equal, Value: []byte{}},
			{Key: []byte{}, Target: TargetValue, Result: NotEqual},
		}}},
		{"binary keys", &Txn{Success: []Op{
			{Type: OpPut, Key: []byte{0x00}, Value: []byte{0xff}},
			{Type: OpPut, Key: []byte{0xff, 0xff, 0x00}, Value: []byte{0x00, 0x00}},
			{Type: OpRange, Key: []byte{0x00}, End: []byte{0xff}},
		}}},
		{"big value and key", &Txn{
			Compares: []Compare{{Key: bigKey, Target: TargetValue, Result: Equal, Value: big}},
			Success:  []Op{{Type: OpPut, Key: bigKey, Value: big, PrevKV: true}},
		}},
		{"put with lease", &Txn{Success: []Op{{Type: OpPut, Key: []byte("a"), Value: []byte("1"), Lease: 7}}}},
		{"puts with extreme leases", &Txn{
			Success: []Op{
				{Type: OpPut, Key: []byte("a"), Value: []byte("1"), Lease: math.MaxInt64, PrevKV: true},
				{Type: OpPut, Key: []byte("b"), Lease: math.MinInt64},
				{Type: OpPut, Key: []byte("c"), Value: []byte("3"), Lease: -1},
				{Type: OpPut, Key: []byte("d"), Value: []byte("4"), Lease: 300}, // zigzag needs 2 bytes
				{Type: OpDelete, Key: []byte("e")},
			},
			Failure: []Op{
				{Type: OpRange, Key: []byte("a"), End: []byte{0}, Limit: 2},
				{Type: OpPut, Key: []byte("f"), Value: []byte("6"), Lease: 1},
			},
		}},
		{"many ops", func() *Txn {
			t := &Txn{}
			for i := 0; i < 300; i++ { // count needs a 2-byte uvarint
				t.Success = append(t.Success, Op{Type: OpPut, Key: []byte{byte(i), byte(i >> 8)}, Value: []byte{byte(i)}})
			}
			return t
		}()},
	}
}

func TestTxnRoundTrip(t *testing.T) {
	for _, tc := range txnCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeTxn(tc.txn)
			if enc[0] != Version || Type(enc[1]) != TypeTxn {
				t.Fatalf("header = % x, want %x %x", enc[:2], Version, TypeTxn)
			}
			got, err := Decode(enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if want := wantDecoded(tc.txn); !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode(EncodeTxn(x)):\n got %+v\nwant %+v", got, want)
			}
			// Encoding is canonical: the decoded form encodes to the same bytes.
			if again := EncodeTxn(got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs:\n got % x\nwant % x", again, enc)
			}
		})
	}
}

// TestTxnRoundTripExplicit pins the round trip of a few values without the
// model, in particular nil versus empty: decoding yields nil for empty.
func TestTxnRoundTripExplicit(t *testing.T) {
	tests := []struct {
		name string
		in   *Txn
		want *Txn
	}{
		{
			name: "empty txn has nil lists",
			in:   &Txn{Compares: []Compare{}, Success: []Op{}, Failure: []Op{}},
			want: &Txn{},
		},
		{
			name: "empty byte strings decode as nil",
			in: &Txn{
				Compares: []Compare{{Key: []byte{}, Target: TargetValue, Result: Equal, Value: []byte{}}},
				Success:  []Op{{Type: OpPut, Key: []byte{}, Value: []byte{}}},
				Failure:  []Op{{Type: OpRange, Key: []byte("a"), End: []byte{}}},
			},
			want: &Txn{
				Compares: []Compare{{Target: TargetValue, Result: Equal}},
				Success:  []Op{{Type: OpPut}},
				Failure:  []Op{{Type: OpRange, Key: []byte("a")}},
			},
		},
		{
			name: "fields a type does not use are dropped",
			in: &Txn{
				Compares: []Compare{
					{Key: []byte("a"), Target: TargetVersion, Result: Equal, Int: 3, Value: []byte("ignored")},
					{Key: []byte("a"), Target: TargetValue, Result: Equal, Int: 3, Value: []byte("v")},
				},
				Success: []Op{
					{Type: OpPut, Key: []byte("a"), End: []byte("ignored"), Value: []byte("v"), Limit: 9, Lease: 4},
					{Type: OpDelete, Key: []byte("a"), End: []byte("b"), Value: []byte("ignored"), Limit: 9, Lease: 4},
					{Type: OpRange, Key: []byte("a"), End: []byte("b"), Value: []byte("ignored"), Limit: 9, Lease: 4},
				},
			},
			want: &Txn{
				Compares: []Compare{
					{Key: []byte("a"), Target: TargetVersion, Result: Equal, Int: 3},
					{Key: []byte("a"), Target: TargetValue, Result: Equal, Value: []byte("v")},
				},
				Success: []Op{
					{Type: OpPut, Key: []byte("a"), Value: []byte("v"), Lease: 4},
					{Type: OpDelete, Key: []byte("a"), End: []byte("b")},
					{Type: OpRange, Key: []byte("a"), End: []byte("b"), Limit: 9},
				},
			},
		},
		{
			name: "flags survive on every op type",
			in: &Txn{Success: []Op{
				{Type: OpPut, Key: []byte("a"), PrevKV: true, CountOnly: true},
				{Type: OpDelete, Key: []byte("a"), PrevKV: true},
				{Type: OpRange, Key: []byte("a"), CountOnly: true},
			}},
			want: &Txn{Success: []Op{
				{Type: OpPut, Key: []byte("a"), PrevKV: true, CountOnly: true},
				{Type: OpDelete, Key: []byte("a"), PrevKV: true},
				{Type: OpRange, Key: []byte("a"), CountOnly: true},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(EncodeTxn(tc.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestEncodeTxnExactBytes(t *testing.T) {
	tests := []struct {
		name string
		in   *Txn
		want []byte
	}{
		{"empty", &Txn{}, []byte{1, 1, 0, 0, 0}},
		// A put ends with its lease (varint, 0: none), then the failure count.
		{"put", Put([]byte("k"), []byte("v"), true), []byte{1, 1, 0, 1, byte(OpPut), flagPrevKV, 1, 'k', 1, 'v', 0, 0}},
		{"put with lease", &Txn{Success: []Op{{Type: OpPut, Key: []byte("k"), Value: []byte("v"), Lease: 5}}},
			[]byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 1, 'v', 10 /* zigzag(5) */, 0}},
		{"put with negative lease", &Txn{Success: []Op{{Type: OpPut, Key: []byte("k"), Lease: -1}}},
			[]byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 0, 1 /* zigzag(-1) */, 0}},
		{"put with 2-byte lease in failure", &Txn{Failure: []Op{{Type: OpPut, Key: []byte("k"), Lease: 300}}},
			[]byte{1, 1, 0, 0, 1, byte(OpPut), 0, 1, 'k', 0, 0xd8, 0x04 /* zigzag(300) = 600 */}},
		// Only puts carry a lease.
		{"delete and range carry no lease", &Txn{Success: []Op{
			{Type: OpDelete, Key: []byte("k"), Lease: 5},
			{Type: OpRange, Key: []byte("k"), Limit: 1, Lease: 5},
		}}, []byte{1, 1, 0, 2, byte(OpDelete), 0, 1, 'k', 0, byte(OpRange), 0, 1, 'k', 0, 2, 0}},
		{"compare version", &Txn{Compares: []Compare{{Key: []byte("k"), Target: TargetVersion, Result: Equal, Int: -1}}},
			[]byte{1, 1, 1, 1, 'k', byte(TargetVersion), byte(Equal), 1 /* zigzag(-1) */, 0, 0}},
		// A lease compare has an integer operand, and no value.
		{"compare lease", &Txn{Compares: []Compare{{Key: []byte("k"), Target: TargetLease, Result: NotEqual, Int: 7, Value: []byte("x")}}},
			[]byte{1, 1, 1, 1, 'k', 5, byte(NotEqual), 14 /* zigzag(7) */, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EncodeTxn(tc.in); !bytes.Equal(got, tc.want) {
				t.Fatalf("EncodeTxn = % x, want % x", got, tc.want)
			}
		})
	}
}

func TestDecodeCopiesInput(t *testing.T) {
	enc := EncodeTxn(&Txn{
		Compares: []Compare{{Key: []byte("ck"), Target: TargetValue, Result: Equal, Value: []byte("cv")}},
		Success:  []Op{{Type: OpPut, Key: []byte("key"), Value: []byte("value")}},
	})
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 0xee
	}
	if string(got.Compares[0].Key) != "ck" || string(got.Compares[0].Value) != "cv" ||
		string(got.Success[0].Key) != "key" || string(got.Success[0].Value) != "value" {
		t.Fatalf("decoded txn aliases the input buffer: %+v", got)
	}
}

// unknownTypeCases are entries of a type no decoder knows.
var unknownTypeCases = []struct {
	name      string
	data      []byte
	typ       Type
	ignorable bool
	msg       string
}{
	{"zero type", []byte{Version, 0}, 0, false, "unknown type 0 (ignorable=false)"},
	{"future type", []byte{Version, 4, 0xde, 0xad}, 4, false, "unknown type 4 (ignorable=false)"},
	{"future type without body", []byte{Version, 0x7f}, 0x7f, false, "unknown type 127 (ignorable=false)"},
	{"ignorable", []byte{Version, byte(IgnoreUnknown | 5), 0xff, 0xff, 0xff}, IgnoreUnknown | 5, true, "unknown type 5 (ignorable=true)"},
	{"ignorable without body", []byte{Version, byte(IgnoreUnknown | 0x7f)}, 0xff, true, "unknown type 127 (ignorable=true)"},
	// The high bit is part of the type: a txn or lease command with it set
	// is not one.
	{"txn with ignore bit", append([]byte{Version, byte(IgnoreUnknown | TypeTxn)}, EncodeTxn(&Txn{})[2:]...), IgnoreUnknown | TypeTxn, true, "unknown type 1 (ignorable=true)"},
	{"grant with ignore bit", append([]byte{Version, byte(IgnoreUnknown | TypeLeaseGrant)}, EncodeLeaseGrant(1, 2)[2:]...), IgnoreUnknown | TypeLeaseGrant, true, "unknown type 2 (ignorable=true)"},
	{"revoke with ignore bit", append([]byte{Version, byte(IgnoreUnknown | TypeLeaseRevoke)}, EncodeLeaseRevoke(1)[2:]...), IgnoreUnknown | TypeLeaseRevoke, true, "unknown type 3 (ignorable=true)"},
}

func checkUnknownType(t *testing.T, err error, typ Type, ignorable bool, msg string) {
	t.Helper()
	var u *UnknownTypeError
	if !errors.As(err, &u) {
		t.Fatalf("error = %v (%T), want *UnknownTypeError", err, err)
	}
	if u.Type != typ || u.Ignorable != ignorable {
		t.Errorf("UnknownTypeError = %+v, want Type %d Ignorable %v", *u, typ, ignorable)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Errorf("an unknown type is not corruption: %v", err)
	}
	if got := err.Error(); !strings.Contains(got, msg) {
		t.Errorf("Error() = %q, want it to contain %q", got, msg)
	}
}

// TestDecodeLeaseIsNotATxn: Decode reads transactions only (clients send
// those); a lease command is a type it does not know.
func TestDecodeLeaseIsNotATxn(t *testing.T) {
	for _, data := range [][]byte{EncodeLeaseGrant(1, 10), EncodeLeaseRevoke(1)} {
		txn, err := Decode(data)
		if txn != nil {
			t.Errorf("Decode(% x) returned a txn %+v", data, txn)
		}
		checkUnknownType(t, err, Type(data[1]), false, fmt.Sprintf("unknown type %d (ignorable=false)", data[1]))
	}
}

func TestDecodeCommandUnknownType(t *testing.T) {
	for _, tc := range unknownTypeCases {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.data)
			c, err := DecodeCommand(tc.data)
			if c.Txn != nil || c.Lease != nil {
				t.Errorf("DecodeCommand returned a command %+v with an error", c)
			}
			checkUnknownType(t, err, tc.typ, tc.ignorable, tc.msg)
			if !bytes.Equal(in, tc.data) {
				t.Errorf("DecodeCommand modified its input")
			}
		})
	}
}

func TestDecodeUnknownType(t *testing.T) {
	for _, tc := range unknownTypeCases {
		t.Run(tc.name, func(t *testing.T) {
			txn, err := Decode(tc.data)
			if txn != nil {
				t.Errorf("Decode returned a txn %+v with an error", txn)
			}
			checkUnknownType(t, err, tc.typ, tc.ignorable, tc.msg)
		})
	}
}

type corruptCase struct {
	name string
	data []byte
	msg  string // substring of the error
}

// corruptTxnCases are invalid txn entries; they also seed the fuzzers.
func corruptTxnCases() []corruptCase {
	valid := EncodeTxn(Put([]byte("k"), []byte("v"), false))
	return []corruptCase{
		{"nil", nil, "too short"},
		{"one byte", []byte{Version}, "too short"},
		{"version 0", []byte{0, 1, 0, 0, 0}, "format version 0"},
		{"version 2", []byte{2, 1, 0, 0, 0}, "format version 2"},
		{"missing counts", []byte{1, 1}, "bad uvarint"},
		{"trailing byte", append(append([]byte{}, valid...), 0), "1 trailing bytes"},
		{"trailing bytes after empty", []byte{1, 1, 0, 0, 0, 9, 9}, "2 trailing bytes"},
		{"compare count too big", []byte{1, 1, 5, 0, 0}, "count 5 exceeds"},
		{"op count too big", []byte{1, 1, 0, 100, 1, 0, 0}, "count 100 exceeds"},
		{"huge count", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "exceeds"},
		{"uvarint overflow", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "bad uvarint"},
		{"compare target 0", []byte{1, 1, 1, 1, 'k', 0, byte(Equal), 0, 0, 0}, "compare target 0"},
		{"compare target 6", []byte{1, 1, 1, 1, 'k', 6, byte(Equal), 0, 0, 0}, "compare target 6"},
		{"compare target 0xff", []byte{1, 1, 1, 1, 'k', 0xff, byte(Equal), 0, 0, 0}, "compare target 255"},
		{"compare result 0", []byte{1, 1, 1, 1, 'k', byte(TargetModRev), 0, 0, 0, 0}, "compare result 0"},
		{"compare result 5", []byte{1, 1, 1, 1, 'k', byte(TargetModRev), 5, 0, 0, 0}, "compare result 5"},
		{"compare key too long", []byte{1, 1, 1, 9, 'k', byte(TargetModRev), byte(Equal), 0, 0, 0}, "length 9 exceeds"},
		{"op type 0", []byte{1, 1, 0, 1, 0, 0, 1, 'k', 0}, "op type 0"},
		{"op type 4", []byte{1, 1, 0, 1, 4, 0, 1, 'k', 0}, "op type 4"},
		{"failure op type bad", []byte{1, 1, 0, 0, 1, 9, 0, 1, 'k'}, "op type 9"},
		{"value too long", []byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 5, 'v', 0}, "length 5 exceeds"},
		{"range limit truncated", []byte{1, 1, 0, 1, byte(OpRange), 0, 1, 'k', 0, 0x80}, "bad varint"},
		{"varint overflow", []byte{1, 1, 1, 1, 'k', byte(TargetVersion), byte(Equal), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0}, "bad varint"},
		{"put lease missing", []byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 1, 'v'}, "bad varint"},
		{"put lease truncated", []byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 1, 'v', 0x80}, "bad varint"},
		{"put lease overflow", []byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}, "bad varint"},
		// The encoding of a put before leases: its last byte is now read
		// as the lease, and the failure count is missing.
		{"put without lease field", []byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 1, 'v', 0}, "bad uvarint"},
		{"put lease missing after empty value", []byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 0}, "bad varint"},
	}
}

func TestDecodeCorrupt(t *testing.T) {
	for _, tc := range corruptTxnCases() {
		t.Run(tc.name, func(t *testing.T) {
			txn, err := Decode(tc.data)
			if err == nil {
				t.Fatalf("Decode(% x) = %+v, want an error", tc.data, txn)
			}
			if txn != nil {
				t.Errorf("Decode returned a txn with the error %v", err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			// DecodeCommand rejects it the same way.
			c, cerr := DecodeCommand(tc.data)
			if cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("DecodeCommand error %v, want the same as Decode's: %v", cerr, err)
			}
			if c.Txn != nil || c.Lease != nil {
				t.Errorf("DecodeCommand returned %+v with the error %v", c, cerr)
			}
		})
	}
}

// TestDecodeTruncated cuts every valid encoding at every byte offset: each
// prefix must be rejected as corrupt, never panic and never decode.
func TestDecodeTruncated(t *testing.T) {
	for _, tc := range txnCases() {
		if tc.name == "big value and key" {
			continue // quadratic; the other cases cover every field
		}
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeTxn(tc.txn)
			for i := 0; i < len(enc); i++ {
				// A copy with no spare capacity, so reading past the
				// end cannot silently succeed.
				prefix := bytes.Clone(enc[:i])
				txn, err := Decode(prefix)
				if err == nil {
					t.Fatalf("Decode(first %d of %d bytes) = %+v, want error", i, len(enc), txn)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Decode(first %d of %d bytes): %v does not wrap ErrCorrupt", i, len(enc), err)
				}
				if txn != nil {
					t.Fatalf("Decode(first %d bytes) returned a txn with the error", i)
				}
				c, err := DecodeCommand(prefix)
				if !errors.Is(err, ErrCorrupt) || c.Txn != nil || c.Lease != nil {
					t.Fatalf("DecodeCommand(first %d of %d bytes) = %+v, %v; want ErrCorrupt", i, len(enc), c, err)
				}
			}
		})
	}
}

func TestDecodeTruncatedBig(t *testing.T) {
	// The big case at a few offsets, including inside the long value.
	var txn *Txn
	for _, tc := range txnCases() {
		if tc.name == "big value and key" {
			txn = tc.txn
		}
	}
	enc := EncodeTxn(txn)
	for _, i := range []int{0, 1, 2, 3, 4, 5, 300, 304, 305, 306, 307, 1000, len(enc) / 2, len(enc) - 2, len(enc) - 1} {
		if _, err := Decode(enc[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(first %d of %d bytes) = %v, want ErrCorrupt", i, len(enc), err)
		}
		if _, err := DecodeCommand(enc[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeCommand(first %d of %d bytes) = %v, want ErrCorrupt", i, len(enc), err)
		}
	}
}

// responseCases are valid responses; they also seed FuzzDecodeResponse.
func responseCases() []struct {
	name string
	resp *Response
} {
	big := bytes.Repeat([]byte{0x00, 0xff}, 1<<17)
	return []struct {
		name string
		resp *Response
	}{
		{"zero", &Response{}},
		{"empty results", &Response{Revision: 5, Succeeded: true, Results: []OpResult{}}},
		{"failed", &Response{Revision: 9, Succeeded: false, Results: []OpResult{{}}}},
		{"extreme revisions", &Response{Revision: math.MaxInt64, Results: []OpResult{
			{Count: math.MinInt64, Deleted: math.MaxInt64},
			{Count: -1, Deleted: -1},
		}}},
		{"range with more", &Response{Revision: 12, Succeeded: true, Results: []OpResult{{
			KVs: []KeyValue{
				{Key: []byte("a"), Value: []byte("1"), CreateRev: 2, ModRev: 3, Version: 2},
				{Key: []byte("b"), Value: []byte("2"), CreateRev: 4, ModRev: 4, Version: 1},
			},
			Count: 10, More: true,
		}}}},
		{"empty key and value", &Response{Revision: 1, Succeeded: true, Results: []OpResult{{
			KVs: []KeyValue{{Key: []byte{}, Value: []byte{}, CreateRev: 1, ModRev: 1, Version: 1}, {}},
		}}}},
		{"binary", &Response{Revision: 3, Succeeded: true, Results: []OpResult{
			{KVs: []KeyValue{{Key: []byte{0x00, 0xff}, Value: []byte{0xff, 0x00}, CreateRev: 1, ModRev: 3, Version: 3}}, Count: 1},
			{Deleted: 2, Count: 2, KVs: []KeyValue{{Key: []byte{0}}, {Key: []byte{0xff}}}},
		}}},
		{"big", &Response{Revision: 2, Succeeded: true, Results: []OpResult{{
			KVs: []KeyValue{{Key: bytes.Repeat([]byte("k"), 200), Value: big, CreateRev: 1, ModRev: 2, Version: 2}}, Count: 1,
		}}}},
		{"lease not found", &Response{Revision: 4, Err: ErrLeaseNotFound}},
		{"lease exists", &Response{Revision: 4, Err: ErrLeaseExists}},
		{"unknown error code", &Response{Revision: 4, Err: 0xff}},
		{"error with results", &Response{Revision: 1, Succeeded: true, Err: ErrLeaseNotFound, Results: []OpResult{{Count: 1}}}},
		{"keys with leases", &Response{Revision: 8, Succeeded: true, Results: []OpResult{{
			KVs: []KeyValue{
				{Key: []byte("a"), Value: []byte("1"), CreateRev: 2, ModRev: 3, Version: 2, Lease: 7},
				{Key: []byte("b"), CreateRev: 4, ModRev: 4, Version: 1, Lease: math.MaxInt64},
				{Key: []byte("c"), CreateRev: 5, ModRev: 5, Version: 1, Lease: math.MinInt64},
				{Key: []byte("d"), CreateRev: 6, ModRev: 6, Version: 1, Lease: -1},
			},
			Count: 4,
		}}}},
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, tc := range responseCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeResponse(tc.resp)
			got, err := DecodeResponse(enc)
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			if want := wantDecodedResponse(tc.resp); !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
			if again := EncodeResponse(got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs:\n got % x\nwant % x", again, enc)
			}
		})
	}
}

func TestResponseEmptyBytesDecodeNil(t *testing.T) {
	got, err := DecodeResponse(EncodeResponse(&Response{Results: []OpResult{{
		KVs: []KeyValue{{Key: []byte{}, Value: []byte{}}},
	}}}))
	if err != nil {
		t.Fatal(err)
	}
	kv := got.Results[0].KVs[0]
	if kv.Key != nil || kv.Value != nil {
		t.Fatalf("empty key/value decoded as %#v/%#v, want nil", kv.Key, kv.Value)
	}
	got, err = DecodeResponse(EncodeResponse(&Response{Results: []OpResult{}}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Results != nil {
		t.Fatalf("empty results decoded as %#v, want nil", got.Results)
	}
}

// corruptResponseCases are invalid responses; they also seed the fuzzer.
// Layout: version, varint revision, succeeded byte, error code byte,
// uvarint result count, then per result: more byte, varint count, varint
// deleted, uvarint kv count, then key-value records.
var corruptResponseCases = []corruptCase{
	{"nil", nil, "response header"},
	{"version 0", []byte{0, 0, 0, 0, 0}, "response header"},
	{"version 2", []byte{2, 0, 0, 0, 0}, "response header"},
	{"header only", []byte{Version}, "bad varint"},
	{"missing succeeded", []byte{Version, 2}, "truncated"},
	{"succeeded byte 2", []byte{Version, 2, 2, 0, 0}, "boolean byte 2"},
	{"missing error code", []byte{Version, 2, 1}, "truncated"},
	{"missing count", []byte{Version, 2, 1, 0}, "bad uvarint"},
	{"results count too big", []byte{Version, 2, 1, 0, 3, 0}, "count 3 exceeds"},
	{"more byte 2", []byte{Version, 2, 1, 0, 1, 2, 0, 0, 0}, "boolean byte 2"},
	{"kv count too big", []byte{Version, 2, 1, 0, 1, 0, 0, 0, 9}, "count 9 exceeds"},
	{"key too long", []byte{Version, 2, 1, 0, 1, 0, 0, 0, 1, 7, 'k'}, "length 7 exceeds"},
	{"kv lease missing", []byte{Version, 2, 1, 0, 1, 0, 0, 0, 1, 1, 'k', 1, 'v', 2, 2, 2}, "bad varint"},
	{"kv lease truncated", []byte{Version, 2, 1, 0, 1, 0, 0, 0, 1, 1, 'k', 1, 'v', 2, 2, 2, 0x80}, "bad varint"},
	// A response encoded before error codes: the result count is read as
	// the error code, and the rest no longer parses.
	{"without error code", []byte{Version, 2, 1, 1, 0, 0, 0, 0}, "3 trailing bytes"},
	{"revision overflow", []byte{Version, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 0, 0}, "bad varint"},
	{"trailing byte", []byte{Version, 2, 1, 0, 0, 0}, "1 trailing bytes"},
}

func TestDecodeResponseCorrupt(t *testing.T) {
	for _, tc := range corruptResponseCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeResponse(tc.data)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeResponse(% x) = %+v, %v; want ErrCorrupt", tc.data, r, err)
			}
			if r != nil {
				t.Fatalf("DecodeResponse returned a response with the error %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestEncodeResponseExactBytes(t *testing.T) {
	tests := []struct {
		name string
		in   *Response
		want []byte
	}{
		{"zero", &Response{}, []byte{Version, 0, 0, 0, 0}},
		{"error code after succeeded", &Response{Revision: -1, Succeeded: true, Err: ErrLeaseExists}, []byte{Version, 1, 1, 2, 0}},
		{"lease not found", &Response{Revision: 3, Err: ErrLeaseNotFound}, []byte{Version, 6, 0, 1, 0}},
		{"key-value ends with its lease", &Response{Revision: 2, Succeeded: true, Results: []OpResult{{
			More: true, Count: 1, Deleted: -1,
			KVs: []KeyValue{{Key: []byte("k"), Value: []byte("v"), CreateRev: 1, ModRev: 2, Version: 3, Lease: 300}},
		}}}, []byte{Version, 4, 1, 0, 1, 1, 2, 1, 1, 1, 'k', 1, 'v', 2, 4, 6, 0xd8, 0x04}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EncodeResponse(tc.in); !bytes.Equal(got, tc.want) {
				t.Fatalf("EncodeResponse = % x, want % x", got, tc.want)
			}
		})
	}
}

func TestResponseErrCodes(t *testing.T) {
	// The codes are part of the wire format and of the replicated state's
	// outcome: pin their values.
	if ErrNone != 0 || ErrLeaseNotFound != 1 || ErrLeaseExists != 2 {
		t.Fatalf("error codes %d %d %d, want 0 1 2", ErrNone, ErrLeaseNotFound, ErrLeaseExists)
	}
	for code := 0; code < 256; code++ {
		in := &Response{Revision: 9, Succeeded: code%2 == 0, Err: ErrCode(code)}
		got, err := DecodeResponse(EncodeResponse(in))
		if err != nil || !reflect.DeepEqual(got, in) {
			t.Fatalf("error code %d: got %+v, %v; want %+v", code, got, err, in)
		}
	}
}

func TestDecodeResponseTruncated(t *testing.T) {
	for _, tc := range responseCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeResponse(tc.resp)
			step := 1
			if len(enc) > 4096 {
				step = 997
			}
			for i := 0; i < len(enc); i += step {
				r, err := DecodeResponse(bytes.Clone(enc[:i]))
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("DecodeResponse(first %d of %d bytes) = %+v, %v; want ErrCorrupt", i, len(enc), r, err)
				}
			}
			if _, err := DecodeResponse(enc[:len(enc)-1]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeResponse without the last byte: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestDecodeResponseTrailingBytes: Decode rejects trailing bytes after a
// command; DecodeResponse should do the same for a response.
func TestDecodeResponseTrailingBytes(t *testing.T) {
	enc := append(EncodeResponse(&Response{Revision: 3, Succeeded: true}), 0xde, 0xad)
	r, err := DecodeResponse(enc)
	if err == nil {
		t.Fatalf("DecodeResponse accepted 2 trailing bytes (decoded %+v)", r)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v does not wrap ErrCorrupt", err)
	}
}

func TestKeyValueRecord(t *testing.T) {
	kvs := []KeyValue{
		{},
		{Key: []byte("a"), Value: []byte("1"), CreateRev: 1, ModRev: 2, Version: 2, Lease: 5},
		{Key: []byte{0, 0xff}, Value: bytes.Repeat([]byte{7}, 1000), CreateRev: math.MaxInt64, ModRev: math.MaxInt64, Version: math.MaxInt64, Lease: math.MaxInt64},
		{Key: []byte("l"), Lease: math.MinInt64},
		{Key: []byte("m"), Lease: -1},
	}
	// The record: key, value, create, mod and version revisions, lease.
	if got, want := AppendKeyValue(nil, kvs[1]), []byte{1, 'a', 1, '1', 2, 4, 4, 10}; !bytes.Equal(got, want) {
		t.Fatalf("AppendKeyValue = % x, want % x", got, want)
	}
	var buf []byte
	for _, kv := range kvs {
		buf = AppendKeyValue(buf, kv)
	}
	rest := buf
	for i, want := range kvs {
		var got KeyValue
		var err error
		got, rest, err = DecodeKeyValue(rest)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		want.Key, want.Value = nonEmpty(want.Key), nonEmpty(want.Value)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d = %+v, want %+v", i, got, want)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left over", len(rest))
	}
	one := AppendKeyValue(nil, kvs[1])
	for i := 0; i < len(one); i++ {
		if _, _, err := DecodeKeyValue(one[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeKeyValue(first %d of %d bytes): %v, want ErrCorrupt", i, len(one), err)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, want string
	}{
		{"", "\x00"},
		{"a", "b"},
		{"ab", "ac"},
		{"a\x00", "a\x01"},
		{"\x00", "\x01"},
		{"a\xfe", "a\xff"},
		{"a\xff", "b"},
		{"a\xff\xff", "b"},
		{"ab\xff", "ac"},
		{"\x01\xff\xff\xff", "\x02"},
		{"\xfe", "\xff"},
		{"\xff", "\x00"},
		{"\xff\xff\xff", "\x00"},
		{"\xff\x00\xff", "\xff\x01"},
	}
	for _, tc := range tests {
		in := []byte(tc.prefix)
		got := PrefixEnd(in)
		if string(got) != tc.want {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		if string(in) != tc.prefix {
			t.Errorf("PrefixEnd(%q) modified its argument to %q", tc.prefix, in)
		}
		// Every key with the prefix sorts below the end (unless the end
		// is the to-the-end marker).
		if tc.want != "\x00" {
			for _, suffix := range []string{"", "\x00", "\xff\xff\xff"} {
				if k := tc.prefix + suffix; !(k < string(got)) {
					t.Errorf("PrefixEnd(%q) = %q is not above key %q", tc.prefix, got, k)
				}
			}
		}
	}
	// The result never aliases the argument.
	in := []byte("ab")
	end := PrefixEnd(in)
	end[0] = 'z'
	if string(in) != "ab" {
		t.Fatalf("PrefixEnd result aliases its argument")
	}
}

func TestIsWrite(t *testing.T) {
	tests := []struct {
		name string
		txn  *Txn
		want bool
	}{
		{"empty", &Txn{}, false},
		{"range only", &Txn{Success: []Op{{Type: OpRange, Key: []byte("a")}}}, false},
		{"ranges in both branches", &Txn{Success: []Op{{Type: OpRange}}, Failure: []Op{{Type: OpRange}}}, false},
		{"put", Put([]byte("a"), nil, false), true},
		{"delete", Delete([]byte("a"), nil, false), true},
		{"put only on failure", &Txn{Success: []Op{{Type: OpRange}}, Failure: []Op{{Type: OpPut}}}, true},
		{"delete only on failure", &Txn{Failure: []Op{{Type: OpDelete}}}, true},
		{"compares only", &Txn{Compares: []Compare{{Key: []byte("a"), Target: TargetVersion, Result: Equal}}}, false},
	}
	for _, tc := range tests {
		if got := tc.txn.IsWrite(); got != tc.want {
			t.Errorf("%s: IsWrite = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBuilders(t *testing.T) {
	p := Put([]byte("k"), []byte("v"), true)
	want := &Txn{Success: []Op{{Type: OpPut, Key: []byte("k"), Value: []byte("v"), PrevKV: true}}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Put = %+v, want %+v", p, want)
	}
	d := Delete([]byte("a"), []byte("b"), false)
	want = &Txn{Success: []Op{{Type: OpDelete, Key: []byte("a"), End: []byte("b")}}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Delete = %+v, want %+v", d, want)
	}
}

func TestOpTypeString(t *testing.T) {
	for op, want := range map[OpType]string{OpRange: "range", OpPut: "put", OpDelete: "delete", 0: "op(0)", 200: "op(200)"} {
		if got := op.String(); got != want {
			t.Errorf("OpType(%d).String() = %q, want %q", byte(op), got, want)
		}
	}
}

// leaseCases are valid lease commands; they also seed the fuzzers.
func leaseCases() []struct {
	name string
	enc  []byte
	want Command
} {
	grant := func(id, ttl int64) Command {
		return Command{Type: TypeLeaseGrant, Lease: &LeaseCmd{ID: id, TTL: ttl}}
	}
	revoke := func(id int64) Command { return Command{Type: TypeLeaseRevoke, Lease: &LeaseCmd{ID: id}} }
	return []struct {
		name string
		enc  []byte
		want Command
	}{
		{"grant", EncodeLeaseGrant(7, 30), grant(7, 30)},
		{"grant zero", EncodeLeaseGrant(0, 0), grant(0, 0)},
		{"grant negative", EncodeLeaseGrant(-1, -5), grant(-1, -5)},
		{"grant max", EncodeLeaseGrant(math.MaxInt64, math.MaxInt64), grant(math.MaxInt64, math.MaxInt64)},
		{"grant min", EncodeLeaseGrant(math.MinInt64, math.MinInt64), grant(math.MinInt64, math.MinInt64)},
		{"grant 2-byte id", EncodeLeaseGrant(300, 1), grant(300, 1)},
		{"revoke", EncodeLeaseRevoke(7), revoke(7)},
		{"revoke zero", EncodeLeaseRevoke(0), revoke(0)},
		{"revoke negative", EncodeLeaseRevoke(-1), revoke(-1)},
		{"revoke max", EncodeLeaseRevoke(math.MaxInt64), revoke(math.MaxInt64)},
		{"revoke min", EncodeLeaseRevoke(math.MinInt64), revoke(math.MinInt64)},
	}
}

func TestLeaseCommandRoundTrip(t *testing.T) {
	for _, tc := range leaseCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.enc[0] != Version || Type(tc.enc[1]) != tc.want.Type {
				t.Fatalf("header = % x, want %x %x", tc.enc[:2], Version, tc.want.Type)
			}
			in := bytes.Clone(tc.enc)
			got, err := DecodeCommand(tc.enc)
			if err != nil {
				t.Fatalf("DecodeCommand(% x): %v", tc.enc, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("DecodeCommand(% x) = %+v (lease %+v), want %+v (lease %+v)", tc.enc, got, got.Lease, tc.want, tc.want.Lease)
			}
			if !bytes.Equal(in, tc.enc) {
				t.Fatalf("DecodeCommand modified its input")
			}
			var again []byte
			if got.Type == TypeLeaseGrant {
				again = EncodeLeaseGrant(got.Lease.ID, got.Lease.TTL)
			} else {
				again = EncodeLeaseRevoke(got.Lease.ID)
			}
			if !bytes.Equal(again, tc.enc) {
				t.Fatalf("re-encoding differs:\n got % x\nwant % x", again, tc.enc)
			}
		})
	}
}

func TestEncodeLeaseExactBytes(t *testing.T) {
	tests := []struct {
		name      string
		got, want []byte
	}{
		{"grant", EncodeLeaseGrant(5, 60), []byte{1, byte(TypeLeaseGrant), 10, 120}},
		{"grant negative", EncodeLeaseGrant(-1, 0), []byte{1, byte(TypeLeaseGrant), 1, 0}},
		{"grant 2-byte", EncodeLeaseGrant(300, 64), []byte{1, byte(TypeLeaseGrant), 0xd8, 0x04, 0x80, 0x01}},
		{"revoke", EncodeLeaseRevoke(5), []byte{1, byte(TypeLeaseRevoke), 10}},
		{"revoke 2-byte", EncodeLeaseRevoke(-300), []byte{1, byte(TypeLeaseRevoke), 0xd7, 0x04}},
		{"revoke max", EncodeLeaseRevoke(math.MaxInt64), []byte{1, byte(TypeLeaseRevoke), 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tc := range tests {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, tc.got, tc.want)
		}
	}
	if TypeTxn != 1 || TypeLeaseGrant != 2 || TypeLeaseRevoke != 3 {
		t.Fatalf("command types %d %d %d, want 1 2 3", TypeTxn, TypeLeaseGrant, TypeLeaseRevoke)
	}
}

// TestDecodeCommandTxn: DecodeCommand of a txn entry is what Decode yields.
func TestDecodeCommandTxn(t *testing.T) {
	for _, tc := range txnCases() {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeTxn(tc.txn)
			c, err := DecodeCommand(enc)
			if err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if c.Type != TypeTxn || c.Lease != nil || c.Txn == nil {
				t.Fatalf("DecodeCommand = %+v, want a txn only", c)
			}
			if want := wantDecoded(tc.txn); !reflect.DeepEqual(c.Txn, want) {
				t.Fatalf("DecodeCommand(EncodeTxn(x)).Txn:\n got %+v\nwant %+v", c.Txn, want)
			}
		})
	}
}

func TestDecodeCommandCopiesInput(t *testing.T) {
	enc := EncodeTxn(&Txn{Success: []Op{{Type: OpPut, Key: []byte("key"), Value: []byte("value"), Lease: 3}}})
	c, err := DecodeCommand(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 0xee
	}
	if op := c.Txn.Success[0]; string(op.Key) != "key" || string(op.Value) != "value" || op.Lease != 3 {
		t.Fatalf("decoded command aliases the input buffer: %+v", op)
	}
}

// corruptLeaseCases are invalid lease entries; they also seed the fuzzers.
func corruptLeaseCases() []corruptCase {
	grant, revoke := byte(TypeLeaseGrant), byte(TypeLeaseRevoke)
	overflow := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	return []corruptCase{
		{"nil", nil, "too short"},
		{"version only", []byte{Version}, "too short"},
		{"grant version 0", []byte{0, grant, 2, 2}, "format version 0"},
		{"revoke version 2", []byte{2, revoke, 2}, "format version 2"},
		{"grant without id", []byte{Version, grant}, "bad varint"},
		{"grant without ttl", []byte{Version, grant, 2}, "bad varint"},
		{"grant id truncated", []byte{Version, grant, 0x80}, "bad varint"},
		{"grant ttl truncated", []byte{Version, grant, 2, 0xff}, "bad varint"},
		{"grant id overflow", append([]byte{Version, grant}, append(overflow, 0)...), "bad varint"},
		{"grant ttl overflow", append([]byte{Version, grant, 2}, overflow...), "bad varint"},
		{"grant trailing byte", append(EncodeLeaseGrant(1, 2), 0), "1 trailing bytes"},
		{"grant trailing bytes", append(EncodeLeaseGrant(1, 2), 3, 4, 5), "3 trailing bytes"},
		{"revoke without id", []byte{Version, revoke}, "bad varint"},
		{"revoke id truncated", []byte{Version, revoke, 0x80, 0x80}, "bad varint"},
		{"revoke id overflow", append([]byte{Version, revoke}, overflow...), "bad varint"},
		// A revoke has no TTL: a grant's body in a revoke has a trailing byte.
		{"revoke with a ttl", append([]byte{Version, revoke}, EncodeLeaseGrant(1, 2)[2:]...), "1 trailing bytes"},
		{"revoke trailing byte", append(EncodeLeaseRevoke(9), 0), "1 trailing bytes"},
	}
}

func TestDecodeCommandCorrupt(t *testing.T) {
	for _, tc := range corruptLeaseCases() {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCommand(tc.data)
			if err == nil {
				t.Fatalf("DecodeCommand(% x) = %+v, want an error", tc.data, c)
			}
			if !reflect.DeepEqual(c, Command{}) {
				t.Errorf("DecodeCommand returned %+v with the error %v", c, err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			var u *UnknownTypeError
			if errors.As(err, &u) {
				t.Errorf("corruption reported as an unknown type: %v", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

// TestDecodeCommandTruncated cuts every lease command at every byte offset.
func TestDecodeCommandTruncated(t *testing.T) {
	for _, tc := range leaseCases() {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < len(tc.enc); i++ {
				prefix := bytes.Clone(tc.enc[:i])
				c, err := DecodeCommand(prefix)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("DecodeCommand(first %d of %d bytes) = %+v, %v; want ErrCorrupt", i, len(tc.enc), c, err)
				}
				if c.Txn != nil || c.Lease != nil {
					t.Fatalf("DecodeCommand(first %d bytes) returned %+v with the error", i, c)
				}
			}
		})
	}
}
