package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kubeconfig is the file kubectl reads (~/.kube/config), as plain structs.
// Fields drover does not use (exec, auth-provider, extensions) are kept as raw
// JSON so that loading and saving a file does not lose them.
type Kubeconfig struct {
	APIVersion     string         `json:"apiVersion,omitempty"`
	Kind           string         `json:"kind,omitempty"`
	Preferences    Preferences    `json:"preferences"`
	Clusters       []NamedCluster `json:"clusters"`
	Users          []NamedUser    `json:"users"`
	Contexts       []NamedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`

	Extensions json.RawMessage `json:"extensions,omitempty"`
}

// Preferences is carried through unchanged.
type Preferences struct {
	Colors     bool            `json:"colors,omitempty"`
	Extensions json.RawMessage `json:"extensions,omitempty"`
}

// NamedCluster is one entry of clusters:.
type NamedCluster struct {
	Name    string  `json:"name"`
	Cluster Cluster `json:"cluster"`
}

// Cluster says where an API server is and how to trust it. The *Data fields
// hold raw PEM; the file stores them base64-encoded, which is what
// encoding/json does with []byte.
type Cluster struct {
	Server                   string          `json:"server"`
	TLSServerName            string          `json:"tls-server-name,omitempty"`
	InsecureSkipTLSVerify    bool            `json:"insecure-skip-tls-verify,omitempty"`
	CertificateAuthority     string          `json:"certificate-authority,omitempty"`
	CertificateAuthorityData []byte          `json:"certificate-authority-data,omitempty"`
	ProxyURL                 string          `json:"proxy-url,omitempty"`
	Extensions               json.RawMessage `json:"extensions,omitempty"`
}

// NamedUser is one entry of users:.
type NamedUser struct {
	Name string `json:"name"`
	User User   `json:"user"`
}

// User holds credentials: a bearer token, a client certificate, or basic auth.
type User struct {
	ClientCertificate     string          `json:"client-certificate,omitempty"`
	ClientCertificateData []byte          `json:"client-certificate-data,omitempty"`
	ClientKey             string          `json:"client-key,omitempty"`
	ClientKeyData         []byte          `json:"client-key-data,omitempty"`
	Token                 string          `json:"token,omitempty"`
	TokenFile             string          `json:"tokenFile,omitempty"`
	Username              string          `json:"username,omitempty"`
	Password              string          `json:"password,omitempty"`
	Exec                  json.RawMessage `json:"exec,omitempty"`
	AuthProvider          json.RawMessage `json:"auth-provider,omitempty"`
	Extensions            json.RawMessage `json:"extensions,omitempty"`
}

// NamedContext is one entry of contexts:.
type NamedContext struct {
	Name    string  `json:"name"`
	Context Context `json:"context"`
}

// Context ties a cluster to a user and a default namespace.
type Context struct {
	Cluster    string          `json:"cluster"`
	User       string          `json:"user"`
	Namespace  string          `json:"namespace,omitempty"`
	Extensions json.RawMessage `json:"extensions,omitempty"`
}

// ErrNoKubeconfig is returned by LoadKubeconfig when no file was found.
var ErrNoKubeconfig = errors.New("no kubeconfig found")

// KubeconfigPaths lists the files kubectl would read, in priority order:
// explicit (the --kubeconfig flag) alone if set, else the entries of
// $KUBECONFIG, else ~/.kube/config.
func KubeconfigPaths(explicit string) []string {
	if explicit != "" {
		return []string{explicit}
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		var paths []string
		seen := map[string]bool{}
		for _, p := range filepath.SplitList(env) {
			if p != "" && !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
		return paths
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	return []string{filepath.Join(home, ".kube", "config")}
}

// LoadedKubeconfig is a merged kubeconfig and the files it came from.
type LoadedKubeconfig struct {
	Kubeconfig
	// Files are the files that existed and were merged, in priority order.
	Files []string
	// CurrentContextFile is the file a changed current-context is written
	// to: the first file that sets one, else the first file (kubectl's rule).
	CurrentContextFile string
}

// LoadKubeconfig reads and merges the files KubeconfigPaths(explicit) names.
// An explicit file must exist; missing $KUBECONFIG entries are skipped, as
// kubectl does. Merging: the first file to define a cluster, user or context
// name wins, and the first non-empty current-context wins. Relative file
// references are resolved against the directory of the file that holds them.
func LoadKubeconfig(explicit string) (*LoadedKubeconfig, error) {
	paths := KubeconfigPaths(explicit)
	out := &LoadedKubeconfig{}
	out.APIVersion, out.Kind = "v1", "Config"
	haveCluster, haveUser, haveContext := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range paths {
		kc, err := LoadKubeconfigFile(p)
		if errors.Is(err, os.ErrNotExist) && explicit == "" {
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Files = append(out.Files, p)
		if out.CurrentContext == "" && kc.CurrentContext != "" {
			out.CurrentContext = kc.CurrentContext
			out.CurrentContextFile = p
		}
		kc.resolvePaths(filepath.Dir(p))
		for _, c := range kc.Clusters {
			if !haveCluster[c.Name] {
				haveCluster[c.Name] = true
				out.Clusters = append(out.Clusters, c)
			}
		}
		for _, u := range kc.Users {
			if !haveUser[u.Name] {
				haveUser[u.Name] = true
				out.Users = append(out.Users, u)
			}
		}
		for _, c := range kc.Contexts {
			if !haveContext[c.Name] {
				haveContext[c.Name] = true
				out.Contexts = append(out.Contexts, c)
			}
		}
	}
	if len(out.Files) == 0 {
		return nil, fmt.Errorf("%w (looked in %s)", ErrNoKubeconfig, strings.Join(paths, ", "))
	}
	if out.CurrentContextFile == "" {
		out.CurrentContextFile = out.Files[0]
	}
	return out, nil
}

// LoadKubeconfigFile reads one kubeconfig file as written, without resolving
// relative paths.
func LoadKubeconfigFile(path string) (*Kubeconfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kc := &Kubeconfig{}
	if err := yaml.Unmarshal(b, kc); err != nil {
		return nil, fmt.Errorf("error loading config file %q: %w", path, err)
	}
	return kc, nil
}

// SaveKubeconfig writes kc to path as YAML (mode 0600: it may hold keys),
// replacing the file atomically.
func SaveKubeconfig(path string, kc *Kubeconfig) error {
	b, err := yaml.Marshal(kc)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SetCurrentContext changes current-context in one file, keeping the rest of
// it as it was (by reading and writing that file alone, not the merged view).
func SetCurrentContext(path, name string) error {
	kc, err := LoadKubeconfigFile(path)
	if errors.Is(err, os.ErrNotExist) {
		kc, err = &Kubeconfig{APIVersion: "v1", Kind: "Config"}, nil
	}
	if err != nil {
		return err
	}
	kc.CurrentContext = name
	return SaveKubeconfig(path, kc)
}

func (kc *Kubeconfig) resolvePaths(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	for i := range kc.Clusters {
		c := &kc.Clusters[i].Cluster
		c.CertificateAuthority = abs(c.CertificateAuthority)
	}
	for i := range kc.Users {
		u := &kc.Users[i].User
		u.ClientCertificate = abs(u.ClientCertificate)
		u.ClientKey = abs(u.ClientKey)
		u.TokenFile = abs(u.TokenFile)
	}
}

// Context returns the named context, or the current one when name is "".
func (kc *Kubeconfig) Context(name string) (string, *Context, error) {
	if name == "" {
		name = kc.CurrentContext
	}
	if name == "" {
		return "", nil, errors.New("no context chosen: current-context is not set and --context was not given")
	}
	for i := range kc.Contexts {
		if kc.Contexts[i].Name == name {
			return name, &kc.Contexts[i].Context, nil
		}
	}
	return "", nil, fmt.Errorf("context %q does not exist", name)
}

// Cluster returns the named cluster.
func (kc *Kubeconfig) Cluster(name string) (*Cluster, bool) {
	for i := range kc.Clusters {
		if kc.Clusters[i].Name == name {
			return &kc.Clusters[i].Cluster, true
		}
	}
	return nil, false
}

// User returns the named user.
func (kc *Kubeconfig) User(name string) (*User, bool) {
	for i := range kc.Users {
		if kc.Users[i].Name == name {
			return &kc.Users[i].User, true
		}
	}
	return nil, false
}

// Minify keeps only the chosen context and the cluster and user it uses
// (kubectl config view --minify).
func (kc *Kubeconfig) Minify(contextName string) error {
	name, ctx, err := kc.Context(contextName)
	if err != nil {
		return err
	}
	out := Kubeconfig{APIVersion: kc.APIVersion, Kind: kc.Kind, Preferences: kc.Preferences, CurrentContext: name}
	out.Contexts = []NamedContext{{Name: name, Context: *ctx}}
	if c, ok := kc.Cluster(ctx.Cluster); ok {
		out.Clusters = []NamedCluster{{Name: ctx.Cluster, Cluster: *c}}
	}
	if u, ok := kc.User(ctx.User); ok {
		out.Users = []NamedUser{{Name: ctx.User, User: *u}}
	}
	*kc = out
	return nil
}

// RESTConfig resolves a context (current when name is "") to what a Client
// needs, reading referenced files, and returns the context's namespace.
func (kc *Kubeconfig) RESTConfig(contextName string) (*RESTConfig, string, error) {
	name, ctx, err := kc.Context(contextName)
	if err != nil {
		return nil, "", err
	}
	cl, ok := kc.Cluster(ctx.Cluster)
	if !ok {
		return nil, "", fmt.Errorf("context %q: cluster %q does not exist", name, ctx.Cluster)
	}
	if cl.Server == "" {
		return nil, "", fmt.Errorf("cluster %q: no server", ctx.Cluster)
	}
	rc := &RESTConfig{
		Host:       cl.Server,
		Insecure:   cl.InsecureSkipTLSVerify,
		ServerName: cl.TLSServerName,
		CAData:     cl.CertificateAuthorityData,
	}
	if len(rc.CAData) == 0 && cl.CertificateAuthority != "" {
		if rc.CAData, err = os.ReadFile(cl.CertificateAuthority); err != nil {
			return nil, "", fmt.Errorf("cluster %q: certificate-authority: %w", ctx.Cluster, err)
		}
	}
	if ctx.User != "" {
		u, ok := kc.User(ctx.User)
		if !ok {
			return nil, "", fmt.Errorf("context %q: user %q does not exist", name, ctx.User)
		}
		if len(u.Exec) > 0 || len(u.AuthProvider) > 0 {
			return nil, "", fmt.Errorf("user %q: exec and auth-provider credentials are not supported by drover", ctx.User)
		}
		rc.BearerToken, rc.BearerTokenFile = u.Token, u.TokenFile
		rc.Username, rc.Password = u.Username, u.Password
		rc.CertData, rc.KeyData = u.ClientCertificateData, u.ClientKeyData
		if len(rc.CertData) == 0 && u.ClientCertificate != "" {
			if rc.CertData, err = os.ReadFile(u.ClientCertificate); err != nil {
				return nil, "", fmt.Errorf("user %q: client-certificate: %w", ctx.User, err)
			}
		}
		if len(rc.KeyData) == 0 && u.ClientKey != "" {
			if rc.KeyData, err = os.ReadFile(u.ClientKey); err != nil {
				return nil, "", fmt.Errorf("user %q: client-key: %w", ctx.User, err)
			}
		}
	}
	return rc, ctx.Namespace, nil
}
