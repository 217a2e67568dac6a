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
	addCommandSeeds(f)

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

// addCommandSeeds adds every kind of entry, valid or not, to a corpus.
func addCommandSeeds(f *testing.F) {
	for _, tc := range txnCases() {
		if enc := EncodeTxn(tc.txn); len(enc) <= 4096 {
			f.Add(enc) // keep the corpus small; the fuzzer grows what it needs
		}
	}
	for _, tc := range leaseCases() {
		f.Add(tc.enc)
	}
	for _, cases := range [][]corruptCase{corruptTxnCases(), corruptLeaseCases()} {
		for _, tc := range cases {
			f.Add(tc.data)
		}
	}
	for _, tc := range unknownTypeCases {
		f.Add(tc.data)
	}
	f.Add([]byte{})
	f.Add([]byte{Version, byte(IgnoreUnknown | 3), 1, 2, 3})
	f.Add([]byte{Version, byte(TypeTxn), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	// Non-canonical but accepted: an overlong uvarint and unknown flag bits.
	f.Add([]byte{Version, byte(TypeTxn), 0x80, 0x00, 1, byte(OpPut), 0xfc, 1, 'k', 0, 0x80, 0x00, 0})
	f.Add([]byte{Version, byte(TypeLeaseGrant), 0x80, 0x00, 0x81, 0x80, 0x00})
	f.Add([]byte{Version, byte(TypeLeaseRevoke), 0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})
}

// FuzzDecodeCommand: DecodeCommand never panics or modifies its input,
// fails only with ErrCorrupt or *UnknownTypeError and then returns no
// command, agrees with Decode on transactions, and whatever lease command it
// accepts survives a round trip through its encoder.
//
//	go test -run='^$' -fuzz='^FuzzDecodeCommand$' ./raftstore/command
func FuzzDecodeCommand(f *testing.F) {
	addCommandSeeds(f)

	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		c, err := DecodeCommand(data)
		if !bytes.Equal(in, data) {
			t.Fatalf("DecodeCommand modified its input")
		}
		txn, txnErr := Decode(bytes.Clone(data))
		if err != nil {
			if c.Txn != nil || c.Lease != nil {
				t.Fatalf("DecodeCommand returned both %+v and %v", c, err)
			}
			var u *UnknownTypeError
			if errors.As(err, &u) {
				if errors.Is(err, ErrCorrupt) {
					t.Fatalf("unknown type reported as corrupt: %v", err)
				}
				switch u.Type {
				case TypeTxn, TypeLeaseGrant, TypeLeaseRevoke:
					t.Fatalf("known type %d reported unknown for % x", u.Type, data)
				}
				if u.Ignorable != (u.Type&IgnoreUnknown != 0) || len(data) < 2 || Type(data[1]) != u.Type {
					t.Fatalf("bad UnknownTypeError %+v for % x", *u, data)
				}
			} else if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v (%T) wraps neither ErrCorrupt nor *UnknownTypeError", err, err)
			}
			// What is not a command is not a txn either, and a txn entry
			// fails both decoders the same way.
			if txnErr == nil {
				t.Fatalf("Decode accepted % x that DecodeCommand rejected: %v", data, err)
			}
			if len(data) >= 2 && Type(data[1]) == TypeTxn && txnErr.Error() != err.Error() {
				t.Fatalf("txn errors differ: DecodeCommand %v, Decode %v", err, txnErr)
			}
			return
		}
		if len(data) < 2 || c.Type != Type(data[1]) {
			t.Fatalf("decoded type %d from % x", c.Type, data)
		}
		switch c.Type {
		case TypeTxn:
			if c.Txn == nil || c.Lease != nil {
				t.Fatalf("txn command %+v: want exactly the Txn set", c)
			}
			if txnErr != nil || !reflect.DeepEqual(c.Txn, txn) {
				t.Fatalf("DecodeCommand and Decode disagree on % x:\n %+v\n %+v, %v", data, c.Txn, txn, txnErr)
			}
			if want := wantDecoded(c.Txn); !reflect.DeepEqual(c.Txn, want) {
				t.Fatalf("decoded txn is not in normal form:\n got %+v\nwant %+v", c.Txn, want)
			}
		case TypeLeaseGrant, TypeLeaseRevoke:
			if c.Lease == nil || c.Txn != nil {
				t.Fatalf("lease command %+v: want exactly the Lease set", c)
			}
			if txn != nil || txnErr == nil {
				t.Fatalf("Decode accepted lease command % x as txn %+v", data, txn)
			}
			var enc []byte
			if c.Type == TypeLeaseGrant {
				enc = EncodeLeaseGrant(c.Lease.ID, c.Lease.TTL)
			} else {
				if c.Lease.TTL != 0 {
					t.Fatalf("revoke decoded with TTL %d", c.Lease.TTL)
				}
				enc = EncodeLeaseRevoke(c.Lease.ID)
			}
			again, err := DecodeCommand(enc)
			if err != nil || !reflect.DeepEqual(again, c) {
				t.Fatalf("lease round trip differs: %+v (%+v), want %+v (%+v), err %v", again, again.Lease, c, c.Lease, err)
			}
			if len(enc) > len(data) {
				t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(enc))
			}
		default:
			t.Fatalf("DecodeCommand accepted unknown type %d", c.Type)
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
	for _, tc := range corruptResponseCases {
		f.Add(tc.data)
	}
	f.Add([]byte{})
	f.Add([]byte{Version, 0, 2, 0, 0}) // succeeded byte other than 0/1
	f.Add([]byte{Version, 0x80, 0x00, 1, 0xff, 1, 7, 0, 0, 0})

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
