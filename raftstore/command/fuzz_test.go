package command

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, fails only with ErrCorrupt or
// *UnknownTypeError, and whatever it accepts survives a semantic round trip.
//
// -fuzz is a regular expression and FuzzDecode alone also matches
// FuzzDecodeResponse, which go test refuses; anchor it:
//
//	go test -run='^$' -fuzz='^FuzzDecode$' ./raftstore/command
func FuzzDecode(f *testing.F) {
	for _, tc := range txnCases() {
		enc := EncodeTxn(tc.txn)
		if len(enc) > 4096 {
			continue // keep the corpus small; the fuzzer grows what it needs
		}
		f.Add(enc)
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add([]byte{Version, byte(IgnoreUnknown | 3), 1, 2, 3})
	f.Add([]byte{Version, 2})
	f.Add([]byte{Version, byte(TypeTxn), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	// Non-canonical but accepted: an overlong uvarint and unknown flag bits.
	f.Add([]byte{Version, byte(TypeTxn), 0x80, 0x00, 1, byte(OpPut), 0xfc, 1, 'k', 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		txn, err := Decode(data)
		if !bytes.Equal(in, data) {
			t.Fatalf("Decode modified its input")
		}
		if err != nil {
			if txn != nil {
				t.Fatalf("Decode returned both %+v and %v", txn, err)
			}
			var u *UnknownTypeError
			if errors.As(err, &u) {
				if errors.Is(err, ErrCorrupt) {
					t.Fatalf("unknown type reported as corrupt: %v", err)
				}
				if u.Type == TypeTxn || u.Ignorable != (u.Type&IgnoreUnknown != 0) {
					t.Fatalf("bad UnknownTypeError %+v for % x", *u, data)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v (%T) wraps neither ErrCorrupt nor *UnknownTypeError", err, err)
			}
			return
		}
		if txn == nil {
			t.Fatalf("Decode returned nil, nil")
		}
		// What Decode yields is already in normal form: no empty non-nil
		// slices, no fields the type does not encode.
		if want := wantDecoded(txn); !reflect.DeepEqual(txn, want) {
			t.Fatalf("decoded txn is not in normal form:\n got %+v\nwant %+v", txn, want)
		}
		enc := EncodeTxn(txn)
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(EncodeTxn(Decode(% x))) failed: %v", data, err)
		}
		if !reflect.DeepEqual(txn, again) {
			t.Fatalf("semantic round trip differs:\n first %+v\nsecond %+v", txn, again)
		}
		if enc2 := EncodeTxn(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n% x\n% x", enc, enc2)
		}
		if len(enc) > len(data) {
			// Canonical encoding is never longer than an accepted one.
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(enc))
		}
	})
}

// FuzzDecodeResponse: DecodeResponse never panics, fails only with
// ErrCorrupt, and whatever it accepts survives a semantic round trip.
//
//	go test -run='^$' -fuzz='^FuzzDecodeResponse$' ./raftstore/command
func FuzzDecodeResponse(f *testing.F) {
	for _, tc := range responseCases() {
		enc := EncodeResponse(tc.resp)
		if len(enc) > 4096 {
			continue
		}
		f.Add(enc)
	}
	f.Add([]byte{})
	f.Add([]byte{Version, 0, 2, 0}) // succeeded byte other than 0/1
	f.Add([]byte{Version, 0x80, 0x00, 1, 1, 7, 0, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResponse(data)
		if err != nil {
			if r != nil {
				t.Fatalf("DecodeResponse returned both %+v and %v", r, err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if r == nil {
			t.Fatalf("DecodeResponse returned nil, nil")
		}
		if want := wantDecodedResponse(r); !reflect.DeepEqual(r, want) {
			t.Fatalf("decoded response is not in normal form:\n got %+v\nwant %+v", r, want)
		}
		enc := EncodeResponse(r)
		again, err := DecodeResponse(enc)
		if err != nil {
			t.Fatalf("DecodeResponse(EncodeResponse(DecodeResponse(% x))) failed: %v", data, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("semantic round trip differs:\n first %+v\nsecond %+v", r, again)
		}
		if enc2 := EncodeResponse(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n% x\n% x", enc, enc2)
		}
	})
}
