package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/runtime"
)

func (a *Agent) podDir(uid string) string { return filepath.Join(a.cfg.DataDir, "pods", uid) }

func (a *Agent) volumeDir(pod *corev1.Pod, v *corev1.Volume) string {
	kind := "emptydir"
	switch {
	case v.ConfigMap != nil:
		kind = "configmap"
	case v.Secret != nil:
		kind = "secret"
	}
	return filepath.Join(a.podDir(string(pod.UID)), "volumes", kind, v.Name)
}

func (a *Agent) removePodDir(uid string) {
	// Keep nothing: volumes, logs and the hosts file go with the pod.
	os.RemoveAll(a.podDir(uid))
}

// setupVolumes prepares a pod's volumes on the node: emptyDir directories,
// configMap and secret files (kept in the pod's directory, mounted
// read-only), hostPath directories to create, and the pod's /etc/hosts.
func (a *Agent) setupVolumes(ctx context.Context, pod *corev1.Pod) error {
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		switch {
		case v.EmptyDir != nil:
			if err := os.MkdirAll(a.volumeDir(pod, v), 0o777); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			os.Chmod(a.volumeDir(pod, v), 0o777) // as Kubernetes: writable by any container user
		case v.HostPath != nil:
			t := corev1.HostPathUnset
			if v.HostPath.Type != nil {
				t = *v.HostPath.Type
			}
			switch t {
			case corev1.HostPathDirectoryOrCreate:
				if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
					return fmt.Errorf("volume %q: %w", v.Name, err)
				}
			case corev1.HostPathDirectory, corev1.HostPathFile, corev1.HostPathSocket:
				if _, err := os.Stat(v.HostPath.Path); err != nil {
					return fmt.Errorf("volume %q: hostPath %s: %w", v.Name, v.HostPath.Path, err)
				}
			}
		case v.ConfigMap != nil:
			cm, err := client.GetTyped[corev1.ConfigMap](ctx, a.cfg.Client.Resource(client.ConfigMaps).Namespace(pod.Namespace), v.ConfigMap.Name)
			if err != nil {
				if client.IsNotFound(err) && v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
					cm = &corev1.ConfigMap{}
				} else {
					return fmt.Errorf("volume %q: configmap %q: %w", v.Name, v.ConfigMap.Name, err)
				}
			}
			data := map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			for k, b := range cm.BinaryData {
				data[k] = b
			}
			if err := writeFiles(a.volumeDir(pod, v), data, v.ConfigMap.Items, v.ConfigMap.DefaultMode); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		case v.Secret != nil:
			s, err := client.GetTyped[corev1.Secret](ctx, a.cfg.Client.Resource(client.Secrets).Namespace(pod.Namespace), v.Secret.SecretName)
			if err != nil {
				if client.IsNotFound(err) && v.Secret.Optional != nil && *v.Secret.Optional {
					s = &corev1.Secret{}
				} else {
					return fmt.Errorf("volume %q: secret %q: %w", v.Name, v.Secret.SecretName, err)
				}
			}
			if err := writeFiles(a.volumeDir(pod, v), s.Data, v.Secret.Items, v.Secret.DefaultMode); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		}
	}
	return a.writeHosts(pod)
}

// writeFiles writes keys as files (all, or the items' paths), replacing
// the directory's previous contents.
func writeFiles(dir string, data map[string][]byte, items []corev1.KeyToPath, mode *int32) error {
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	perm := os.FileMode(0o644)
	if mode != nil {
		perm = os.FileMode(*mode)
	}
	write := func(path string, b []byte, p os.FileMode) error {
		clean := filepath.Clean(path)
		if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("path %q leaves the volume", path)
		}
		full := filepath.Join(tmp, clean)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, b, p)
	}
	if len(items) == 0 {
		for k, b := range data {
			if err := write(k, b, perm); err != nil {
				return err
			}
		}
	} else {
		for _, it := range items {
			b, ok := data[it.Key]
			if !ok {
				return fmt.Errorf("key %q not found", it.Key)
			}
			p := perm
			if it.Mode != nil {
				p = os.FileMode(*it.Mode)
			}
			if err := write(it.Path, b, p); err != nil {
				return err
			}
		}
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// writeHosts writes the pod's /etc/hosts: localhost and the pod's own name.
func (a *Agent) writeHosts(pod *corev1.Pod) error {
	dir := a.podDir(string(pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	return os.WriteFile(filepath.Join(dir, "etc-hosts"), []byte(hosts), 0o644)
}

// containerMounts maps a container's volumeMounts to bind mounts.
func (a *Agent) containerMounts(pod *corev1.Pod, c *corev1.Container) ([]runtime.Mount, error) {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var out []runtime.Mount
	hasHosts := false
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q names no volume of the pod", vm.Name)
		}
		src := a.volumeDir(pod, v)
		ro := vm.ReadOnly
		switch {
		case v.HostPath != nil:
			src = v.HostPath.Path
		case v.ConfigMap != nil, v.Secret != nil:
			ro = true
		}
		if vm.SubPath != "" {
			sub := filepath.Clean(vm.SubPath)
			if filepath.IsAbs(sub) || strings.HasPrefix(sub, "..") {
				return nil, fmt.Errorf("subPath %q leaves volume %q", vm.SubPath, vm.Name)
			}
			src = filepath.Join(src, sub)
			if v.EmptyDir != nil {
				os.MkdirAll(src, 0o777)
			}
		}
		hasHosts = hasHosts || vm.MountPath == "/etc/hosts"
		out = append(out, runtime.Mount{Source: src, Destination: vm.MountPath, ReadOnly: ro})
	}
	if !hasHosts && !pod.Spec.HostNetwork {
		out = append(out, runtime.Mount{Source: filepath.Join(a.podDir(string(pod.UID)), "etc-hosts"), Destination: "/etc/hosts", ReadOnly: true})
	}
	return out, nil
}
