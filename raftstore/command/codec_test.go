package command

import (
	"bytes"
	"errors"
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
	out := &Response{Revision: r.Revision, Succeeded: r.Succeeded}
	for _, res := range r.Results {
		w := OpResult{Count: res.Count, More: res.More, Deleted: res.Deleted}
		for _, kv := range res.KVs {
			w.KVs = append(w.KVs, KeyValue{
				Key: nonEmpty(kv.Key), Value: nonEmpty(kv.Value),
				CreateRev: kv.CreateRev, ModRev: kv.ModRev, Version: kv.Version,
			})
		}
		out.Results = append(out.Results, w)
	}
	return out
}

var (
	allTargets = []Target{TargetVersion, TargetCreateRev, TargetModRev, TargetValue}
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
					{Type: OpPut, Key: []byte("a"), End: []byte("ignored"), Value: []byte("v"), Limit: 9},
					{Type: OpDelete, Key: []byte("a"), End: []byte("b"), Value: []byte("ignored"), Limit: 9},
					{Type: OpRange, Key: []byte("a"), End: []byte("b"), Value: []byte("ignored"), Limit: 9},
				},
			},
			want: &Txn{
				Compares: []Compare{
					{Key: []byte("a"), Target: TargetVersion, Result: Equal, Int: 3},
					{Key: []byte("a"), Target: TargetValue, Result: Equal, Value: []byte("v")},
				},
				Success: []Op{
					{Type: OpPut, Key: []byte("a"), Value: []byte("v")},
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
		{"put", Put([]byte("k"), []byte("v"), true), []byte{1, 1, 0, 1, byte(OpPut), flagPrevKV, 1, 'k', 1, 'v', 0}},
		{"compare version", &Txn{Compares: []Compare{{Key: []byte("k"), Target: TargetVersion, Result: Equal, Int: -1}}},
			[]byte{1, 1, 1, 1, 'k', byte(TargetVersion), byte(Equal), 1 /* zigzag(-1) */, 0, 0}},
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

func TestDecodeUnknownType(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		typ       Type
		ignorable bool
		msg       string
	}{
		{"zero type", []byte{Version, 0}, 0, false, "unknown type 0 (ignorable=false)"},
		{"future type", []byte{Version, 2, 0xde, 0xad}, 2, false, "unknown type 2 (ignorable=false)"},
		{"ignorable", []byte{Version, byte(IgnoreUnknown | 5), 0xff, 0xff, 0xff}, IgnoreUnknown | 5, true, "unknown type 5 (ignorable=true)"},
		{"ignorable without body", []byte{Version, byte(IgnoreUnknown | 0x7f)}, 0xff, true, "unknown type 127 (ignorable=true)"},
		// The high bit is part of the type: a txn with it set is not a txn.
		{"txn with ignore bit", append([]byte{Version, byte(IgnoreUnknown | TypeTxn)}, EncodeTxn(&Txn{})[2:]...), IgnoreUnknown | TypeTxn, true, "unknown type 1 (ignorable=true)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			txn, err := Decode(tc.data)
			if txn != nil {
				t.Errorf("Decode returned a txn %+v with an error", txn)
			}
			var u *UnknownTypeError
			if !errors.As(err, &u) {
				t.Fatalf("Decode error = %v (%T), want *UnknownTypeError", err, err)
			}
			if u.Type != tc.typ || u.Ignorable != tc.ignorable {
				t.Errorf("UnknownTypeError = %+v, want Type %d Ignorable %v", *u, tc.typ, tc.ignorable)
			}
			if errors.Is(err, ErrCorrupt) {
				t.Errorf("an unknown type is not corruption: %v", err)
			}
			if got := err.Error(); !strings.Contains(got, tc.msg) {
				t.Errorf("Error() = %q, want it to contain %q", got, tc.msg)
			}
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	valid := EncodeTxn(Put([]byte("k"), []byte("v"), false))
	tests := []struct {
		name string
		data []byte
		msg  string // substring of the error
	}{
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
		{"compare target 5", []byte{1, 1, 1, 1, 'k', 5, byte(Equal), 0, 0, 0}, "compare target 5"},
		{"compare result 0", []byte{1, 1, 1, 1, 'k', byte(TargetModRev), 0, 0, 0, 0}, "compare result 0"},
		{"compare result 5", []byte{1, 1, 1, 1, 'k', byte(TargetModRev), 5, 0, 0, 0}, "compare result 5"},
		{"compare key too long", []byte{1, 1, 1, 9, 'k', byte(TargetModRev), byte(Equal), 0, 0, 0}, "length 9 exceeds"},
		{"op type 0", []byte{1, 1, 0, 1, 0, 0, 1, 'k', 0}, "op type 0"},
		{"op type 4", []byte{1, 1, 0, 1, 4, 0, 1, 'k', 0}, "op type 4"},
		{"failure op type bad", []byte{1, 1, 0, 0, 1, 9, 0, 1, 'k'}, "op type 9"},
		{"value too long", []byte{1, 1, 0, 1, byte(OpPut), 0, 1, 'k', 5, 'v', 0}, "length 5 exceeds"},
		{"range limit truncated", []byte{1, 1, 0, 1, byte(OpRange), 0, 1, 'k', 0, 0x80}, "bad varint"},
		{"varint overflow", []byte{1, 1, 1, 1, 'k', byte(TargetVersion), byte(Equal), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0}, "bad varint"},
	}
	for _, tc := range tests {
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

func TestDecodeResponseCorrupt(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"version 0", []byte{0, 0, 0, 0}},
		{"version 2", []byte{2, 0, 0, 0}},
		{"header only", []byte{Version}},
		{"missing succeeded", []byte{Version, 2}},
		{"missing count", []byte{Version, 2, 1}},
		{"results count too big", []byte{Version, 2, 1, 3, 0}},
		{"kv count too big", []byte{Version, 2, 1, 1, 0, 0, 0, 9}},
		{"key too long", []byte{Version, 2, 1, 1, 0, 0, 0, 1, 7, 'k'}},
		{"revision overflow", []byte{Version, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeResponse(tc.data)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeResponse(% x) = %+v, %v; want ErrCorrupt", tc.data, r, err)
			}
			if r != nil {
				t.Fatalf("DecodeResponse returned a response with the error %v", err)
			}
		})
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
		{Key: []byte("a"), Value: []byte("1"), CreateRev: 1, ModRev: 2, Version: 2},
		{Key: []byte{0, 0xff}, Value: bytes.Repeat([]byte{7}, 1000), CreateRev: math.MaxInt64, ModRev: math.MaxInt64, Version: math.MaxInt64},
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
