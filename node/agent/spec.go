package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/node/runtime"
)

// Defaults for what a pod does not say.
const (
	defaultPidsLimit = 4096
	defaultPath      = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// containerSpec turns a pod's container into what the runtime starts.
func (a *Agent) containerSpec(ctx context.Context, pod *corev1.Pod, c *corev1.Container, img *ImageConfig, id, rootfs, netns, podIP string, attempt int) (*runtime.Spec, error) {
	env, err := a.containerEnv(ctx, pod, c, img, podIP)
	if err != nil {
		return nil, err
	}
	args := commandLine(c, img, env)
	if len(args) == 0 {
		return nil, fmt.Errorf("container %s has no command: the image sets no entrypoint or cmd and the pod gives none", c.Name)
	}
	uid, gid, err := user(pod, c, img)
	if err != nil {
		return nil, err
	}
	mounts, err := a.containerMounts(pod, c)
	if err != nil {
		return nil, err
	}
	wd := c.WorkingDir
	if wd == "" {
		wd = img.WorkingDir
	}
	logDir := filepath.Join(a.logDir(string(pod.UID)), c.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log dir: %w", err)
	}
	spec := &runtime.Spec{
		ID: id,
		Labels: map[string]string{labelPodUID: string(pod.UID), labelPodNamespace: pod.Namespace, labelPodName: pod.Name,
			labelContainer: c.Name, labelAttempt: strconv.Itoa(attempt)},
		RootFS: rootfs, Args: args, Env: envList(env), WorkingDir: wd, UID: uid, GID: gid,
		Hostname: podHostname(pod), NetNS: netns, HostNetwork: pod.Spec.HostNetwork, Mounts: mounts,
		Resources: resources(c), LogPath: filepath.Join(logDir, strconv.Itoa(attempt)+".log"),
		TTY: c.TTY, Stdin: c.Stdin,
	}
	if sc := c.SecurityContext; sc != nil {
		spec.Privileged = sc.Privileged != nil && *sc.Privileged
		spec.ReadOnlyRoot = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	}
	return spec, nil
}

func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	name := pod.Name
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// commandLine applies Kubernetes' rules for command/args over the image's
// entrypoint/cmd, with $(VAR) expansion.
func commandLine(c *corev1.Container, img *ImageConfig, env map[string]string) []string {
	var out []string
	switch {
	case len(c.Command) > 0:
		out = append(append(out, c.Command...), c.Args...)
	case len(c.Args) > 0:
		out = append(append(out, img.Entrypoint...), c.Args...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	for i := range out {
		out[i] = expand(out[i], env)
	}
	return out
}

// expand replaces $(VAR) with its value; $$ escapes; unknown references
// stay as written (Kubernetes' rules).
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// containerEnv merges the image's environment, envFrom and env (later
// wins), resolving fieldRef, resourceFieldRef, configMapKeyRef and
// secretKeyRef.
func (a *Agent) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, img *ImageConfig, podIP string) (map[string]string, error) {
	env := map[string]string{}
	order := []string{}
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	hasPath := false
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
		hasPath = hasPath || k == "PATH"
	}
	if !hasPath {
		k, v, _ := strings.Cut(defaultPath, "=")
		set(k, v)
	}
	set("HOSTNAME", podHostname(pod))
	cms := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	getCM := func(name string) (*corev1.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		cm, err := client.GetTyped[corev1.ConfigMap](ctx, a.cfg.Client.Resource(client.ConfigMaps).Namespace(pod.Namespace), name)
		if err == nil {
			cms[name] = cm
		}
		return cm, err
	}
	getSecret := func(name string) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := client.GetTyped[corev1.Secret](ctx, a.cfg.Client.Resource(client.Secrets).Namespace(pod.Namespace), name)
		if err == nil {
			secrets[name] = s
		}
		return s, err
	}
	optional := func(p *bool) bool { return p != nil && *p }
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := getCM(ef.ConfigMapRef.Name)
			if err != nil {
				if optional(ef.ConfigMapRef.Optional) && client.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("configmap %q: %w", ef.ConfigMapRef.Name, err)
			}
			for k, v := range cm.Data {
				set(ef.Prefix+k, v)
			}
		case ef.SecretRef != nil:
			s, err := getSecret(ef.SecretRef.Name)
			if err != nil {
				if optional(ef.SecretRef.Optional) && client.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("secret %q: %w", ef.SecretRef.Name, err)
			}
			for k, v := range s.Data {
				set(ef.Prefix+k, string(v))
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, env))
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			v, err := podField(pod, vf.FieldRef.FieldPath, podIP, a.cfg.Address)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			set(e.Name, v)
		case vf.ResourceFieldRef != nil:
			set(e.Name, resourceField(c, vf.ResourceFieldRef))
		case vf.ConfigMapKeyRef != nil:
			cm, err := getCM(vf.ConfigMapKeyRef.Name)
			if err != nil {
				if optional(vf.ConfigMapKeyRef.Optional) && client.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("env %s: configmap %q: %w", e.Name, vf.ConfigMapKeyRef.Name, err)
			}
			v, ok := cm.Data[vf.ConfigMapKeyRef.Key]
			if !ok && !optional(vf.ConfigMapKeyRef.Optional) {
				return nil, fmt.Errorf("env %s: key %q not in configmap %q", e.Name, vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name)
			}
			if ok {
				set(e.Name, v)
			}
		case vf.SecretKeyRef != nil:
			s, err := getSecret(vf.SecretKeyRef.Name)
			if err != nil {
				if optional(vf.SecretKeyRef.Optional) && client.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("env %s: secret %q: %w", e.Name, vf.SecretKeyRef.Name, err)
			}
			v, ok := s.Data[vf.SecretKeyRef.Key]
			if !ok && !optional(vf.SecretKeyRef.Optional) {
				return nil, fmt.Errorf("env %s: key %q not in secret %q", e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name)
			}
			if ok {
				set(e.Name, string(v))
			}
		}
	}
	env["\x00order"] = strings.Join(order, "\x00")
	return env, nil
}

// envList renders the environment in the order variables were first set.
func envList(env map[string]string) []string {
	order := strings.Split(env["\x00order"], "\x00")
	delete(env, "\x00order")
	out := make([]string, 0, len(order))
	for _, k := range order {
		if k != "" {
			out = append(out, k+"="+env[k])
		}
	}
	return out
}

// podField answers the downward API's fieldRef paths.
func podField(pod *corev1.Pod, path, podIP, hostIP string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return podIP, nil
	case "status.hostIP":
		return hostIP, nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) string {
	kind, name, _ := strings.Cut(ref.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "0"
	}
	div := ref.Divisor
	if div.IsZero() {
		if name == "cpu" {
			// Cores, rounded up, as Kubernetes does with the default divisor.
			return strconv.FormatInt((q.MilliValue()+999)/1000, 10)
		}
		return strconv.FormatInt(q.Value(), 10)
	}
	return strconv.FormatInt((q.MilliValue()+div.MilliValue()-1)/div.MilliValue(), 10)
}

// user picks the uid/gid: the container's security context, the pod's, or
// the image's numeric USER.
func user(pod *corev1.Pod, c *corev1.Container, img *ImageConfig) (uint32, uint32, error) {
	var uid, gid *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	u, g := uint32(0), uint32(0)
	if img.User != "" && uid == nil {
		us, gs, _ := strings.Cut(img.User, ":")
		n, err := strconv.ParseUint(us, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("the image's user %q is not numeric; set securityContext.runAsUser", img.User)
		}
		u = uint32(n)
		if gs != "" {
			if m, err := strconv.ParseUint(gs, 10, 32); err == nil {
				g = uint32(m)
			}
		}
	}
	if uid != nil {
		u = uint32(*uid)
	}
	if gid != nil {
		g = uint32(*gid)
	}
	return u, g, nil
}

// resources maps requests and limits to cgroup settings as the kubelet
// does: shares from the CPU request, a CFS quota from the CPU limit.
func resources(c *corev1.Container) runtime.Resources {
	r := runtime.Resources{PidsLimit: defaultPidsLimit, CPUPeriod: 100000}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimit = q.Value()
	}
	milli := int64(0)
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		milli = q.MilliValue()
	} else if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		milli = q.MilliValue()
	}
	r.CPUShares = uint64(max(milli*1024/1000, 2))
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		r.CPUQuota = max(q.MilliValue()*100000/1000, 1000)
	}
	return r
}
