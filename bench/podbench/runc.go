package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// runcPeer runs the same busybox rootfs and command under Debian's runc.
type runcPeer struct {
	bin    string
	dir    string // bundles, the rootfs, runc's output
	root   string // runc --root (tmpfs)
	rootfs string
	tmpl   []byte // config.json from `runc spec`
	out    *os.File
}

// prepare unpacks the image into a plain rootfs directory and keeps
// `runc spec`'s config.json as the template of every bundle.
func (r *runcPeer) prepare(img v1.Image) error {
	r.rootfs = filepath.Join(r.dir, "rootfs")
	if err := os.MkdirAll(r.rootfs, 0o755); err != nil {
		return err
	}
	rc := mutate.Extract(img)
	err := untar(rc, r.rootfs)
	rc.Close()
	if err != nil {
		return fmt.Errorf("unpack the image: %w", err)
	}
	tdir := filepath.Join(r.dir, "template")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command(r.bin, "spec", "--bundle", tdir).CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %v: %s", err, out)
	}
	var err2 error
	if r.tmpl, err2 = os.ReadFile(filepath.Join(tdir, "config.json")); err2 != nil {
		return err2
	}
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		return err
	}
	r.out, err = os.OpenFile(filepath.Join(r.dir, "containers.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return err
}

// bundle writes the bundle of container id: the template with the shared
// rootfs (read-write, as a pod's), no terminal, args, and a cgroup of
// its own under runcCgroup.
func (r *runcPeer) bundle(id string, args []string) (string, error) {
	var spec map[string]any
	if err := json.Unmarshal(r.tmpl, &spec); err != nil {
		return "", err
	}
	proc, _ := spec["process"].(map[string]any)
	linux, _ := spec["linux"].(map[string]any)
	if proc == nil || linux == nil {
		return "", errors.New("runc spec's config.json has no process or linux section")
	}
	proc["terminal"] = false
	proc["args"] = args
	spec["root"] = map[string]any{"path": r.rootfs, "readonly": false}
	spec["hostname"] = id
	linux["cgroupsPath"] = runcCgroup + "/" + id
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(r.dir, "bundles", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// run runs runc with its output (and a detached container's stdio) to a
// file, so nothing waits on a pipe the container holds.
func (r *runcPeer) run(args ...string) (time.Duration, error) {
	cmd := exec.Command(r.bin, append([]string{"--root", r.root}, args...)...)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("runc %s: %v (output in %s)", strings.Join(args, " "), err, r.out.Name())
	}
	return d, nil
}

// startDetached is `runc run -d`: it returns once the container's process
// has started.
func (r *runcPeer) startDetached(id, bundle string) (time.Duration, error) {
	return r.run("run", "-d", "--bundle", bundle, id)
}

// runToExit is `runc run` of a short command: create, start, wait for the
// exit, delete.
func (r *runcPeer) runToExit(id, bundle string) (time.Duration, error) {
	return r.run("run", "--bundle", bundle, id)
}

// remove kills and deletes a container and its bundle (untimed).
func (r *runcPeer) remove(id string) error {
	_, err := r.run("delete", "-f", id)
	os.RemoveAll(filepath.Join(r.dir, "bundles", id))
	return err
}

// runcSingle starts n containers one after another, each removed before
// the next, and returns each start's time in ms.
func (b *bench) runcSingle(rep, n int, gap time.Duration) ([]float64, []string) {
	var out []float64
	var errs []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("pbr%d-s%02d", rep, i)
		bundle, err := b.runc.bundle(id, podCommand)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		d, err := b.runc.startDetached(id, bundle)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			out = append(out, ms(d))
		}
		if err := b.runc.remove(id); err != nil {
			errs = append(errs, err.Error())
		}
		time.Sleep(gap)
	}
	return out, errs
}

// runcBurst starts n containers at once; it returns each start's time,
// the time until the last had started, and the CPU per container.
func (b *bench) runcBurst(rep, k, n int) ([]float64, float64, *cpuPerPod, []string) {
	ids := make([]string, n)
	bundles := make([]string, n)
	var errs []string
	for i := range ids {
		ids[i] = fmt.Sprintf("pbr%d-b%d-%02d", rep, k, i+1)
		var err error
		if bundles[i], err = b.runc.bundle(ids[i], podCommand); err != nil {
			return nil, -1, nil, []string{err.Error()}
		}
	}
	durs := make([]time.Duration, n)
	errv := make([]error, n)
	c0 := b.nodeCPU()
	go0 := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-go0
			durs[i], errv[i] = b.runc.startDetached(ids[i], bundles[i])
		}()
	}
	start := time.Now()
	close(go0)
	wg.Wait()
	all := time.Since(start)
	c1 := b.nodeCPU()
	var out []float64
	for i := range ids {
		if errv[i] != nil {
			errs = append(errs, errv[i].Error())
			continue
		}
		out = append(out, ms(durs[i]))
	}
	var cpu *cpuPerPod
	if len(out) > 0 {
		used := (c1.self - c0.self) + (c1.runcCtrs - c0.runcCtrs)
		cpu = &cpuPerPod{Pods: len(out), NodeMs: ms(used) / float64(len(out)),
			MastersMs: ms(c1.masters-c0.masters) / float64(len(out)), AgentMs: ms(c1.agent-c0.agent) / float64(len(out))}
	}
	var rwg sync.WaitGroup
	var mu sync.Mutex
	for _, id := range ids {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			if err := b.runc.remove(id); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		}()
	}
	rwg.Wait()
	allMs := -1.0
	if len(out) == n {
		allMs = ms(all)
	}
	return out, allMs, cpu, errs
}

// runcTrue is `runc run` of /bin/true to its exit, n times.
func (b *bench) runcTrue(rep, n int) ([]float64, []string) {
	var out []float64
	var errs []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("pbr%d-t%02d", rep, i)
		bundle, err := b.runc.bundle(id, []string{"true"})
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		d, err := b.runc.runToExit(id, bundle)
		if err != nil {
			errs = append(errs, err.Error())
			b.runc.remove(id)
			continue
		}
		out = append(out, ms(d))
		os.RemoveAll(bundle)
	}
	return out, errs
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// untar unpacks a flattened image filesystem into dir; every entry stays
// inside dir.
func untar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
		if name == "." || name == "" {
			continue
		}
		if d := filepath.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			if err := root.Chmod(name, tarMode(h.Mode)); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			root.Remove(name)
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		case tar.TypeLink:
			root.Remove(name)
			if err := root.Link(filepath.Clean(strings.TrimPrefix(h.Linkname, "/")), name); err != nil {
				return err
			}
		}
	}
}

// tarMode converts a tar header's mode (permission, setuid, setgid and
// sticky bits) to an os.FileMode.
func tarMode(m int64) os.FileMode {
	mode := os.FileMode(m) & 0o777
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}
