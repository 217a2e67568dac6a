package image_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/droverhq/drover/node/image"
	"github.com/droverhq/drover/node/image/imagetest"
)

// newStore opens a store in a temporary directory. Unpacking layers
// needs root (ownership, whiteout devices, trusted.* xattrs), so the test
// is skipped otherwise. At the end of the test it releases every root
// filesystem and fails if any mount is left under the directory.
func newStore(t *testing.T, insecure ...string) *image.Store {
	t.Helper()
	return newStoreAt(t, t.TempDir(), insecure...)
}

// mountsUnder lists the mount points below dir in this process's mount
// namespace.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// progressLog collects progress reports (calls do not overlap, but come
// from the store's goroutines).
type progressLog struct {
	mu sync.Mutex
	ps []image.Progress
}

func (l *progressLog) add(p image.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ps = append(l.ps, p)
}

func (l *progressLog) phases() []image.Phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []image.Phase
	for _, p := range l.ps {
		out = append(out, p.Phase)
	}
	return out
}

func (l *progressLog) last() image.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ps[len(l.ps)-1]
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func diffIDs(t *testing.T, img v1.Image) []string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range cf.RootFS.DiffIDs {
		out = append(out, d.String())
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: want it absent, Lstat says %v", path, err)
	}
}

// checkPulled checks a pulled busybox image and, as root, runs through a
// root filesystem made from it.
func checkPulled(t *testing.T, s *image.Store, got *image.Image, ref string, src v1.Image) {
	t.Helper()
	want, _ := image.CanonicalName(ref)
	if got.Ref != want || got.Digest != digestOf(t, src) || got.Manifest != got.Digest {
		t.Errorf("pulled %+v; want ref %s digest %s", got, want, digestOf(t, src))
	}
	if !slices.Equal(got.Layers, diffIDs(t, src)) {
		t.Errorf("layers %v, want %v", got.Layers, diffIDs(t, src))
	}
	if !slices.Equal(got.Config.Cmd, []string{"/bin/sh", "-c", "echo hello from busybox"}) || got.Config.WorkingDir != "/" || len(got.Config.Env) != 1 {
		t.Errorf("config %+v", got.Config)
	}
	if got.OS != "linux" || got.Architecture != runtime.GOARCH || got.Size < 1<<20 {
		t.Errorf("os/arch/size %s/%s/%d", got.OS, got.Architecture, got.Size)
	}
	again, err := s.Get(ref)
	if err != nil || again.ID != got.ID {
		t.Fatalf("Get(%s) = %+v, %v", ref, again, err)
	}
	fs := filepath.Join(s.LayerDir(got.Layers[0]), "fs")
	if l, err := os.Readlink(filepath.Join(fs, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(fs, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(fs, "bin/busybox")); err != nil || !fi.ModTime().Equal(time.Unix(0, 0)) {
		t.Errorf("bin/busybox mtime: %v, %v", fi, err)
	}
}

func TestPullInProcessRegistry(t *testing.T) {
	reg := imagetest.InProcess(t)
	src := imagetest.Busybox(t)
	ref := reg.Push(t, "test/busybox:v1", src)
	s := newStore(t, reg.Host)

	var log progressLog
	start := time.Now()
	img, err := s.Pull(context.Background(), ref, nil, log.add)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("pull + unpack of the busybox image (%d bytes unpacked) from the in-process registry: %v", img.Size, took)
	checkPulled(t, s, img, ref, src)

	ph := log.phases()
	if ph[0] != image.PhaseResolved || !slices.Contains(ph, image.PhaseDownloading) || !slices.Contains(ph, image.PhaseUnpacked) || ph[len(ph)-1] != image.PhaseDone {
		t.Errorf("progress phases %v", ph)
	}
	var lastDownload image.Progress
	for _, p := range log.ps {
		if p.Phase == image.PhaseDownloading {
			lastDownload = p
		}
	}
	if lastDownload.Total == 0 || lastDownload.Done != lastDownload.Total || lastDownload.Index != 1 || lastDownload.Count != 1 {
		t.Errorf("last download progress %+v", lastDownload)
	}

	rootfs, err := s.PrepareRootFS(context.Background(), img, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(rootfs, "var/www/index.html")); got != "hello from drover\n" {
		t.Errorf("index.html: %q", got)
	}
	if err := s.ReleaseRootFS("c1"); err != nil {
		t.Fatal(err)
	}
}

func TestPullDockerRegistry(t *testing.T) {
	reg := imagetest.DockerRegistry(t)
	src := imagetest.Busybox(t)
	ref := reg.Push(t, "test/busybox:v1", src)
	s := newStore(t, reg.Host)
	start := time.Now()
	img, err := s.Pull(context.Background(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pull + unpack of the busybox image from Debian's docker-registry: %v", time.Since(start))
	checkPulled(t, s, img, ref, src)

	// A second image sharing the busybox layer downloads only its own.
	two := imagetest.Append(t, src, imagetest.Layer(t, imagetest.File("etc/motd", "two\n")))
	ref2 := reg.Push(t, "test/two:v1", two)
	var log progressLog
	img2, err := s.Pull(context.Background(), ref2, nil, log.add)
	if err != nil {
		t.Fatal(err)
	}
	if len(img2.Layers) != 2 || img2.Layers[0] != img.Layers[0] {
		t.Fatalf("layers %v", img2.Layers)
	}
	exists := 0
	for _, p := range log.ps {
		if p.Phase == image.PhaseExists {
			exists++
			if p.Index != 1 {
				t.Errorf("exists reported for layer %d", p.Index)
			}
		}
	}
	if exists != 1 {
		t.Errorf("want the shared layer reported as present once, got %v", log.phases())
	}
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	reg := imagetest.InProcess(t)
	host := imagetest.Busybox(t)
	other := imagetest.Platform(t, imagetest.Busybox(t), "linux", "s390x")
	ii := imagetest.Index(t, map[string]v1.Image{"linux/" + runtime.GOARCH: host, "linux/s390x": other})
	ref := reg.PushIndex(t, "test/multi:v1", ii)
	s := newStore(t, reg.Host)
	img, err := s.Pull(context.Background(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := ii.Digest()
	if img.Digest != idxDigest.String() || img.Manifest != digestOf(t, host) || img.Architecture != runtime.GOARCH {
		t.Errorf("got digest %s manifest %s arch %s; want %s, %s, %s", img.Digest, img.Manifest, img.Architecture, idxDigest, digestOf(t, host), runtime.GOARCH)
	}
	// A digest reference finds the image pulled by tag.
	dref := reg.Ref("test/multi@" + idxDigest.String())
	if got, err := s.Ensure(context.Background(), dref, image.PullNever, nil); err != nil || got.Ref != img.Ref {
		t.Fatalf("Never by digest: %v, %v", got, err)
	}
	if _, err := s.Get(reg.Ref("test/other@" + idxDigest.String())); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("a digest of another repository matched: %v", err)
	}
	// Pulling by digest into a fresh store files it under the digest.
	s2 := newStore(t, reg.Host)
	if _, err := s2.Pull(context.Background(), dref, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get(dref); err != nil || got.Ref != dref || got.ID != img.ID {
		t.Fatalf("Get(%s) = %+v, %v", dref, got, err)
	}
}

func TestPullPolicies(t *testing.T) {
	var count imagetest.Counter
	reg := imagetest.InProcess(t, count.Middleware)
	src := imagetest.Busybox(t)
	ref := reg.Push(t, "test/busybox:v1", src)
	s := newStore(t, reg.Host)
	ctx := context.Background()
	manifestPath := "/v2/test/busybox/manifests/v1"
	layerDigest := func(img v1.Image) string {
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		d, err := ls[len(ls)-1].Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	blobPath := func(d string) string { return "GET /v2/test/busybox/blobs/" + d }
	count.Reset()

	// Never, absent.
	if _, err := s.Ensure(ctx, ref, image.PullNever, nil); !errors.Is(err, image.ErrImageNeverPull) {
		t.Fatalf("Never on an absent image: %v", err)
	}
	// IfNotPresent pulls once, then uses the store.
	if _, err := s.Ensure(ctx, ref, image.PullIfNotPresent, nil); err != nil {
		t.Fatal(err)
	}
	if n := count.Count(blobPath(layerDigest(src))); n != 1 {
		t.Errorf("layer fetched %d times", n)
	}
	count.Reset()
	if _, err := s.Ensure(ctx, ref, image.PullIfNotPresent, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ensure(ctx, ref, image.PullNever, nil); err != nil {
		t.Fatal(err)
	}
	if n := count.Count("GET "+manifestPath) + count.Count("HEAD "+manifestPath); n != 0 {
		t.Errorf("IfNotPresent/Never on a present image asked the registry %d times", n)
	}
	// Always asks the registry, and downloads nothing when unchanged.
	img, err := s.Ensure(ctx, ref, image.PullAlways, nil)
	if err != nil {
		t.Fatal(err)
	}
	if count.Count("GET "+manifestPath) != 1 || count.Count(blobPath(layerDigest(src))) != 0 {
		t.Errorf("Always on an unchanged image: manifest %d, layer %d requests", count.Count("GET "+manifestPath), count.Count(blobPath(layerDigest(src))))
	}
	// Always picks up a new digest, downloading only the new layer.
	v2 := imagetest.Append(t, src, imagetest.Layer(t, imagetest.File("etc/version", "2\n")))
	reg.Push(t, "test/busybox:v1", v2)
	count.Reset()
	img2, err := s.Ensure(ctx, ref, image.PullAlways, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img2.Digest == img.Digest || img2.Digest != digestOf(t, v2) {
		t.Errorf("Always did not pick up the new digest: %s", img2.Digest)
	}
	if count.Count(blobPath(layerDigest(src))) != 0 || count.Count(blobPath(layerDigest(v2))) != 1 {
		t.Errorf("Always with a new layer: old layer %d, new layer %d requests", count.Count(blobPath(layerDigest(src))), count.Count(blobPath(layerDigest(v2))))
	}
	// "" is Kubernetes's default: IfNotPresent for a non-latest tag.
	count.Reset()
	if _, err := s.Ensure(ctx, ref, "", nil); err != nil || count.Count("GET "+manifestPath) != 0 {
		t.Errorf("default policy for :v1: %v, %d manifest requests", err, count.Count("GET "+manifestPath))
	}
	if image.DefaultPullPolicy("busybox") != image.PullAlways || image.DefaultPullPolicy("busybox:1.36") != image.PullIfNotPresent {
		t.Error("DefaultPullPolicy")
	}

	// Failures are typed.
	if _, err := s.Ensure(ctx, reg.Ref("test/missing:v1"), image.PullIfNotPresent, nil); !errors.Is(err, image.ErrPull) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := s.Ensure(ctx, "UPPER/case:v1", image.PullIfNotPresent, nil); !errors.Is(err, image.ErrInvalidName) {
		t.Errorf("invalid name: %v", err)
	}
	if _, err := s.Ensure(ctx, ref, "Sometimes", nil); err == nil {
		t.Error("unknown policy accepted")
	}
	// A registry not listed as insecure is reached only over HTTPS.
	strict := newStore(t)
	if _, err := strict.Ensure(ctx, ref, image.PullIfNotPresent, nil); !errors.Is(err, image.ErrPull) {
		t.Errorf("plain-HTTP registry not listed as insecure: %v", err)
	}
}

func TestPullWithCredentials(t *testing.T) {
	reg := imagetest.InProcess(t, imagetest.BasicAuth("alice", "s3cret"))
	reg.Auth = basic("alice", "s3cret")
	src := imagetest.Busybox(t)
	ref := reg.Push(t, "team/busybox:v1", src)
	s := newStore(t, reg.Host)
	ctx := context.Background()

	secret := func(key, user, pass string) []image.Credential {
		t.Helper()
		creds, err := image.CredentialsFromDockerConfigJSON([]byte(`{"auths":{"` + key + `":{"auth":"` + b64(user+":"+pass) + `"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return creds
	}
	for _, tc := range []struct {
		name  string
		creds []image.Credential
	}{
		{"anonymous", nil},
		{"wrong password", secret(reg.Host, "alice", "nope")},
		{"another registry's login", secret("registry.example.com", "alice", "s3cret")},
		{"another port's login", secret("127.0.0.1:1", "alice", "s3cret")},
		{"another path's login", secret(reg.Host+"/other", "alice", "s3cret")},
	} {
		if _, err := s.Pull(ctx, ref, tc.creds, nil); !errors.Is(err, image.ErrPull) {
			t.Errorf("%s: want ErrPull, got %v", tc.name, err)
		}
	}
	if _, err := s.Get(ref); !errors.Is(err, image.ErrNotFound) {
		t.Fatalf("an unauthorized pull stored the image: %v", err)
	}

	// The right login, under a path prefix, after a more specific wrong one
	// (every matching credential is tried, most specific first).
	creds := append(secret("http://"+reg.Host+"/team", "alice", "s3cret"), secret(reg.Host+"/team/busybox", "alice", "wrong")...)
	img, err := s.Pull(ctx, ref, creds, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != digestOf(t, src) {
		t.Errorf("digest %s", img.Digest)
	}
}

func TestConcurrentPullsDownloadOnce(t *testing.T) {
	var count imagetest.Counter
	gate := make(chan struct{})
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
				<-gate
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := imagetest.InProcess(t, count.Middleware, hold)
	src := imagetest.Busybox(t)
	ref := reg.Push(t, "test/busybox:v1", src)
	count.Reset()
	s := newStore(t, reg.Host)

	const n = 5
	var wg sync.WaitGroup
	imgs := make([]*image.Image, n)
	errs := make([]error, n)
	logs := make([]progressLog, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgs[i], errs[i] = s.Pull(context.Background(), ref, nil, logs[i].add)
		}()
	}
	waitFor(t, 10*time.Second, func() bool { return s.PullWaiters(ref) == n }, "all pulls to join one download")
	close(gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("pull %d: %v", i, errs[i])
		}
		if imgs[i].ID != imgs[0].ID {
			t.Errorf("pull %d got %s", i, imgs[i].ID)
		}
		if logs[i].last().Phase != image.PhaseDone {
			t.Errorf("pull %d: progress %v", i, logs[i].phases())
		}
	}
	ls, _ := src.Layers()
	ld, _ := ls[0].Digest()
	cd, _ := src.ConfigName()
	if got := count.Count("GET /v2/test/busybox/blobs/" + ld.String()); got != 1 {
		t.Errorf("layer downloaded %d times by %d concurrent pulls", got, n)
	}
	if got := count.Count("GET /v2/test/busybox/blobs/" + cd.String()); got != 1 {
		t.Errorf("config downloaded %d times", got)
	}
}

func TestPullCancelledByEveryCallerStops(t *testing.T) {
	gate := make(chan struct{})
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := imagetest.InProcess(t, hold)
	ref := reg.Push(t, "test/busybox:v1", imagetest.Busybox(t))
	defer close(gate)
	s := newStore(t, reg.Host)
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { _, err := s.Pull(ctx1, ref, nil, nil); done <- err }()
	go func() { _, err := s.Pull(ctx2, ref, nil, nil); done <- err }()
	waitFor(t, 10*time.Second, func() bool { return s.PullWaiters(ref) == 2 }, "both pulls to wait")
	cancel1()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	if s.PullWaiters(ref) != 1 {
		t.Fatalf("the shared pull lost its other caller")
	}
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("second caller: %v", err)
	}
	// Close waits for the abandoned download to stop.
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the abandoned pull still runs")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func basic(user, pass string) authn.Authenticator {
	return &authn.Basic{Username: user, Password: pass}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestGCDuringPullDefersLayerRemoval(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/slow/blobs/") && r.Method == http.MethodGet {
				<-gate
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := imagetest.InProcess(t, hold)
	s := newStore(t, reg.Host)
	ctx := context.Background()
	old := pullImage(t, s, reg, "test/old:v1", imagetest.Append(t, imagetest.Busybox(t), imagetest.Layer(t, imagetest.File("old", "old"))))
	slow := reg.Push(t, "test/slow:v1", imagetest.Append(t, imagetest.Busybox(t), imagetest.Layer(t, imagetest.File("slow", "slow"))))
	done := make(chan error, 1)
	go func() { _, err := s.Pull(ctx, slow, nil, nil); done <- err }()
	waitFor(t, 10*time.Second, func() bool { return s.PullWaiters(slow) == 1 }, "the pull to start")

	// The pull holds the GC lock shared from before its first blob; wait
	// until it is blocked on the layer download. GC removes the unused
	// image from the index but leaves its layers for later.
	keepAll := func(string) bool { return true }
	waitFor(t, 10*time.Second, func() bool {
		res, err := s.GC(ctx, keepAll)
		if err != nil {
			t.Fatal(err)
		}
		return res.Deferred
	}, "the pull to hold the GC lock")
	res, err := s.GC(ctx, nil)
	if err != nil || !res.Deferred || !slices.Equal(res.Images, []string{old.Ref}) || res.Layers != 0 {
		t.Fatalf("GC during a pull: %+v, %v", res, err)
	}
	if _, err := s.Get(old.Ref); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("GC kept the unused image: %v", err)
	}
	if _, err := os.Stat(s.LayerDir(old.Layers[1])); err != nil {
		t.Errorf("GC removed a layer while a pull ran: %v", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res, err = s.GC(ctx, keepAll)
	if err != nil || res.Deferred || res.Layers != 1 {
		t.Errorf("GC after the pull: %+v, %v", res, err)
	}
	if _, err := s.Get(slow); err != nil {
		t.Errorf("the pulled image: %v", err)
	}
}
