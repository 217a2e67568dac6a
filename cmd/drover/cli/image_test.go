package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/image/imagetest"
)

// runImage runs "drover image ARGS..." and returns stdout, stderr and the
// error text main would print ("" for none).
func runImage(t *testing.T, stdin string, args ...string) (string, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(Streams{Out: &out, Err: &errOut})
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"image"}, args...))
	msg := ""
	if err := root.ExecuteContext(context.Background()); err != nil {
		msg = ErrorText(err)
	}
	return out.String(), errOut.String(), msg
}

// writeDockerSave writes a docker-save archive of img tagged as each tag.
func writeDockerSave(t *testing.T, img v1.Image, tags ...string) string {
	t.Helper()
	m := map[name.Tag]v1.Image{}
	for _, tag := range tags {
		nt, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		m[nt] = img
	}
	p := filepath.Join(t.TempDir(), "images.tar")
	if err := tarball.MultiWriteToFile(p, m); err != nil {
		t.Fatal(err)
	}
	return p
}

var spaces = regexp.MustCompile(` +`)

func TestImageImportListRemove(t *testing.T) {
	imagetest.RequireRoot(t) // unpacking sets ownership and makes whiteout devices
	bb := imagetest.Busybox(t)
	archive := writeDockerSave(t, bb, "busybox:demo", "registry.local/lab/busybox:v1")
	dir := filepath.Join(t.TempDir(), "images")

	out, errOut, msg := runImage(t, "", "import", archive, "--data-dir", dir)
	if msg != "" {
		t.Fatalf("import: %s\n%s", msg, errOut)
	}
	id, _ := bb.ConfigName()
	for _, want := range []string{
		"imported docker.io/library/busybox:demo (" + id.Hex[:12] + ", 1.98MB)",
		"imported registry.local/lab/busybox:v1 (" + id.Hex[:12] + ", 1.98MB)",
		"2 images imported from " + archive + " in ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"importing docker.io/library/busybox:demo: 1 layer", "layer 1/1 ", ": unpacked", ": already present"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("import progress lacks %q:\n%s", want, errOut)
		}
	}
	out, _, msg = runImage(t, "", "ls", "--data-dir", dir)
	if msg != "" {
		t.Fatal(msg)
	}
	want := "IMAGE DIGEST SIZE LAST USED\n" +
		"docker.io/library/busybox:demo <none> 1.98MB 0s ago\n" +
		"registry.local/lab/busybox:v1 <none> 1.98MB 0s ago\n"
	if got := spaces.ReplaceAllString(ages(out), " "); got != want {
		t.Errorf("ls:\n%s\nwant (spacing aside):\n%s", out, want)
	}
	if lines := strings.Split(out, "\n"); strings.Index(lines[0], "DIGEST") != strings.Index(lines[1], "<none>") {
		t.Errorf("ls columns are not aligned:\n%s", out)
	}
	if out, _, _ = runImage(t, "", "ls", "-q", "--data-dir", dir); out != "docker.io/library/busybox:demo\nregistry.local/lab/busybox:v1\n" {
		t.Errorf("ls -q:\n%s", out)
	}

	out, _, msg = runImage(t, "", "rm", "busybox:demo", "nothere:v1", "--data-dir", dir)
	if out != "image \"docker.io/library/busybox:demo\" deleted\n" || msg != "error: image not found: nothere:v1" {
		t.Errorf("rm: %q, %q", out, msg)
	}
	// The layer stays: the other name uses it.
	if out, _, _ = runImage(t, "", "ls", "-q", "--data-dir", dir); out != "registry.local/lab/busybox:v1\n" {
		t.Errorf("ls after rm:\n%s", out)
	}
	if _, _, msg = runImage(t, "", "rm", "registry.local/lab/busybox:v1", "--data-dir", dir); msg != "" {
		t.Fatal(msg)
	}
	if out, errOut, _ = runImage(t, "", "ls", "--data-dir", dir); out != "" || errOut != "No images found in "+dir+".\n" {
		t.Errorf("ls of an empty store: %q, %q", out, errOut)
	}
	if ls, _ := os.ReadDir(filepath.Join(dir, "layers", "sha256")); len(ls) != 0 {
		t.Errorf("%d layers left after removing every image", len(ls))
	}

	// Errors name the archive.
	if _, _, msg = runImage(t, "", "import", filepath.Join(dir, "missing.tar"), "--data-dir", dir); !strings.Contains(msg, "missing.tar: open") {
		t.Errorf("import of a missing file: %q", msg)
	}
	bad := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(bad, []byte("not a tar"), 0o600)
	if _, _, msg = runImage(t, "", "import", bad, "--data-dir", dir); !strings.Contains(msg, "not a docker-save or OCI image-layout archive") {
		t.Errorf("import of a bad file: %q", msg)
	}
}

func TestImageImportFromStdin(t *testing.T) {
	imagetest.RequireRoot(t)
	archive := writeDockerSave(t, imagetest.Busybox(t), "lab/stdin:v1")
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// "-" reads os.Stdin; swap it for the test.
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	out, _, msg := runImage(t, "", "import", "-", "--data-dir", dir)
	if msg != "" || !strings.Contains(out, "imported docker.io/lab/stdin:v1") {
		t.Errorf("import -: %q, %q", out, msg)
	}
}

func TestImagePull(t *testing.T) {
	imagetest.RequireRoot(t)
	reg := imagetest.InProcess(t, imagetest.BasicAuth("alice", "s3cret"))
	reg.Auth = &authn.Basic{Username: "alice", Password: "s3cret"}
	src := imagetest.Busybox(t)
	ref := reg.Push(t, "lab/busybox:v1", src)
	dir := t.TempDir()

	// Plain HTTP needs --insecure-registry; the login needs --auth-file.
	if _, _, msg := runImage(t, "", "pull", ref, "--data-dir", dir); !strings.Contains(msg, "error: failed to pull image") || !strings.Contains(msg, "list "+reg.Host+" as an insecure registry") {
		t.Errorf("pull without --insecure-registry: %q", msg)
	}
	if _, _, msg := runImage(t, "", "pull", ref, "--insecure-registry", reg.Host, "--data-dir", dir); !strings.Contains(msg, "UNAUTHORIZED") {
		t.Errorf("pull without credentials: %q", msg)
	}
	auth := filepath.Join(t.TempDir(), "config.json")
	cfg := `{"auths":{"` + reg.Host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) + `"}}}`
	if err := os.WriteFile(auth, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, msg := runImage(t, "", "pull", ref, "--insecure-registry", reg.Host, "--auth-file", auth, "--data-dir", dir)
	if msg != "" {
		t.Fatalf("pull: %s", msg)
	}
	digest, _ := src.Digest()
	if !strings.HasPrefix(out, "pulled "+ref+" ("+digest.Hex[:12]+", 1.98MB) in ") {
		t.Errorf("pull output: %q", out)
	}
	for _, want := range []string{"pulling " + ref + ": 1 layer\n", "layer 1/1 ", ": unpacked ("} {
		if !strings.Contains(errOut, want) {
			t.Errorf("pull progress lacks %q:\n%s", want, errOut)
		}
	}
	out, _, _ = runImage(t, "", "ls", "--data-dir", dir)
	if !strings.Contains(spaces.ReplaceAllString(out, " "), ref+" "+digest.Hex[:12]+" 1.98MB") {
		t.Errorf("ls after pull:\n%s", out)
	}
	// Pulling again downloads nothing.
	_, errOut, msg = runImage(t, "", "pull", ref, "--insecure-registry", reg.Host, "--auth-file", auth, "--data-dir", dir)
	if msg != "" || strings.Contains(errOut, "unpacked") {
		t.Errorf("second pull: %q\n%s", msg, errOut)
	}
}

func TestImageDefaultDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	if got := defaultImageDir(); got != "/var/lib/drover/images" {
		t.Errorf("without ./drover-data: %s", got)
	}
	if err := os.Mkdir("drover-data", 0o700); err != nil {
		t.Fatal(err)
	}
	if got := defaultImageDir(); got != filepath.Join("drover-data", "images") {
		t.Errorf("with ./drover-data: %s", got)
	}
}

func TestProgressPrinterLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressPrinter(&buf, "pulling")
	l := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, pr := range []image.Progress{
		{Ref: "r", Phase: image.PhaseResolved, Count: 2},
		{Ref: "r", Phase: image.PhaseExists, Layer: l, Index: 1, Count: 2},
		{Ref: "r", Phase: image.PhaseDownloading, Layer: l, Index: 2, Count: 2, Done: 1 << 20, Total: 8 << 20},
		{Ref: "r", Phase: image.PhaseDownloading, Layer: l, Index: 2, Count: 2, Done: 3 << 20, Total: 8 << 20},
		{Ref: "r", Phase: image.PhaseDownloading, Layer: l, Index: 2, Count: 2, Done: 7 << 20, Total: 8 << 20},
		{Ref: "r", Phase: image.PhaseDownloading, Layer: l, Index: 2, Count: 2, Done: 8 << 20, Total: 8 << 20},
		{Ref: "r", Phase: image.PhaseUnpacked, Layer: l, Index: 2, Count: 2},
		{Ref: "r", Phase: image.PhaseDone, Count: 2},
	} {
		p.update(pr)
	}
	want := `pulling r: 2 layers
layer 1/2 0123456789ab: already present
layer 2/2 0123456789ab: 25% of 8.39MB
layer 2/2 0123456789ab: 75% of 8.39MB
layer 2/2 0123456789ab: unpacked (8.39MB)
`
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1kB", 1982382: "1.98MB", 5 << 30: "5.37GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %s, want %s", n, got, want)
		}
	}
}
