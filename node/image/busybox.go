package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultBusybox is where Debian's busybox-static package puts its binary.
const DefaultBusybox = "/bin/busybox"

// BusyboxApplets are the commands the busybox image links to
// /bin/busybox.
func BusyboxApplets() []string { return slices.Clone(busyboxApplets) }

var busyboxApplets = []string{
	"[", "awk", "base64", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "dd", "df",
	"dirname", "du", "echo", "env", "expr", "false", "find", "free", "grep", "gunzip", "gzip",
	"head", "hostname", "httpd", "id", "ip", "kill", "ln", "ls", "md5sum", "mkdir", "mktemp",
	"mount", "mv", "nc", "nproc", "nslookup", "ping", "printf", "ps", "pwd", "readlink", "rm",
	"rmdir", "sed", "seq", "sh", "sha256sum", "sleep", "sort", "stat", "sync", "tail", "tar",
	"tee", "test", "timeout", "top", "touch", "tr", "true", "umount", "uname", "uniq", "uptime",
	"vi", "wc", "wget", "which", "whoami", "xargs", "yes",
}

// BuildBusybox builds a one-layer OCI image from a static busybox binary
// (Debian's busybox-static: DefaultBusybox), with a symlink in /bin for
// each of BusyboxApplets(), /etc/passwd and /etc/group (root and nobody),
// and /var/www/index.html for httpd. cmd is the image's Cmd (nil:
// /bin/sh). Every entry is owned by root with mtime 0, so the same binary
// always gives the same digest: it works offline, for tests and demos.
func BuildBusybox(busyboxPath string, cmd []string) (v1.Image, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	layer, err := busyboxLayer(bin)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	if cmd == nil {
		cmd = []string{"/bin/sh"}
	}
	cf.Config.Cmd = cmd
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cf)
}

func busyboxLayer(bin []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	add := func(h *tar.Header, body []byte) error {
		h.ModTime, h.Uid, h.Gid = epoch, 0, 0
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	dirs := []struct {
		name string
		mode int64
	}{
		{"bin/", 0o755}, {"dev/", 0o755}, {"etc/", 0o755}, {"home/", 0o755}, {"proc/", 0o755},
		{"root/", 0o700}, {"sys/", 0o755}, {"tmp/", 0o1777}, {"usr/", 0o755}, {"usr/bin/", 0o755},
		{"var/", 0o755}, {"var/www/", 0o755},
	}
	for _, d := range dirs {
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}, nil); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		body []byte
	}{
		{"bin/busybox", 0o755, bin},
		{"etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\n")},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{"var/www/index.html", 0o644, []byte("hello from drover\n")},
	}
	for _, f := range files {
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode}, f.body); err != nil {
			return nil, err
		}
	}
	for _, a := range busyboxApplets {
		if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
