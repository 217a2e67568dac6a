package jointoken

import (
	"bytes"
	"strings"
	"testing"
)

func TestJoinAndNodeTokens(t *testing.T) {
	gk := bytes.Repeat([]byte{7}, 32)
	js := JoinSecret([]byte("token key"))
	ca := []byte("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
	tok := New(gk, js, ca)
	got, err := Parse(tok)
	if err != nil || !bytes.Equal(got.GossipKey, gk) || !bytes.Equal(got.JoinSecret, js) || got.CAHash != CAHashOf(ca) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"", "nope", "drover-join.a.b", "drover-join.!!.b.c", strings.Replace(tok, ".", "x", 2)} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	nt := NodeToken(got.JoinSecret, "n1")
	if node, ok := CheckNodeToken(js, nt); !ok || node != "n1" {
		t.Fatalf("node token: %q %v", node, ok)
	}
	if _, ok := CheckNodeToken(JoinSecret([]byte("other key")), nt); ok {
		t.Fatal("a node token checked under another key")
	}
	forged := strings.Replace(nt, "drover-node.n1.", "drover-node.n2.", 1)
	if _, ok := CheckNodeToken(js, forged); ok {
		t.Fatal("a node token for n1 passed as n2")
	}
}
