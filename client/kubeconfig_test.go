package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

const kubeconfigA = `apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
- name: shared
  cluster:
    server: https://a.example:6443
users:
- name: admin
  user:
    token: token-a
    client-certificate: pki/admin.crt
contexts:
- name: dev
  context:
    cluster: dev
    user: admin
    namespace: team-a
current-context: dev
`

const kubeconfigB = `apiVersion: v1
kind: Config
clusters:
- name: shared
  cluster:
    server: https://b.example:6443
    insecure-skip-tls-verify: true
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: Y2EtcGVt
users:
- name: ops
  user:
    tokenFile: token
    exec:
      command: some-plugin
contexts:
- name: prod
  context:
    cluster: prod
    user: ops
current-context: prod
`

func TestKubeconfigPaths(t *testing.T) {
	t.Setenv("HOME", "/home/someone")
	t.Setenv("KUBECONFIG", "")
	if got := KubeconfigPaths("/x/config"); len(got) != 1 || got[0] != "/x/config" {
		t.Errorf("explicit: %v", got)
	}
	if got := KubeconfigPaths(""); len(got) != 1 || got[0] != "/home/someone/.kube/config" {
		t.Errorf("default: %v", got)
	}
	t.Setenv("KUBECONFIG", "/a"+string(os.PathListSeparator)+string(os.PathListSeparator)+"/b"+string(os.PathListSeparator)+"/a")
	if got := KubeconfigPaths(""); strings.Join(got, ",") != "/a,/b" {
		t.Errorf("KUBECONFIG list: %v", got)
	}
	if got := KubeconfigPaths("/x"); len(got) != 1 || got[0] != "/x" {
		t.Errorf("explicit beats KUBECONFIG: %v", got)
	}
}

func TestLoadKubeconfigMerge(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a", "config"), filepath.Join(dir, "b", "config")
	writeFile(t, a, kubeconfigA)
	writeFile(t, b, kubeconfigB)
	t.Setenv("KUBECONFIG", strings.Join([]string{filepath.Join(dir, "missing"), a, b}, string(os.PathListSeparator)))

	kc, err := LoadKubeconfig("")
	if err != nil {
		t.Fatal(err)
	}
	if kc.CurrentContext != "dev" || kc.CurrentContextFile != a {
		t.Errorf("current-context %q from %q; want dev from the first file that sets it", kc.CurrentContext, kc.CurrentContextFile)
	}
	if strings.Join(kc.Files, ",") != a+","+b {
		t.Errorf("files %v: a missing KUBECONFIG entry is skipped", kc.Files)
	}
	if len(kc.Clusters) != 3 {
		t.Fatalf("clusters %+v; want dev, shared, prod", kc.Clusters)
	}
	if c, _ := kc.Cluster("shared"); c.Server != "https://a.example:6443" || c.InsecureSkipTLSVerify {
		t.Errorf("shared = %+v; the first file to define a name wins", c)
	}
	if c, _ := kc.Cluster("dev"); c.CertificateAuthority != filepath.Join(dir, "a", "pki", "ca.crt") {
		t.Errorf("relative certificate-authority resolved to %q", c.CertificateAuthority)
	}
	if c, _ := kc.Cluster("prod"); string(c.CertificateAuthorityData) != "ca-pem" {
		t.Errorf("certificate-authority-data decoded to %q", c.CertificateAuthorityData)
	}
	if u, _ := kc.User("ops"); u.TokenFile != filepath.Join(dir, "b", "token") || len(u.Exec) == 0 {
		t.Errorf("ops = %+v", u)
	}
	if len(kc.Contexts) != 2 {
		t.Errorf("contexts %+v", kc.Contexts)
	}
}

func TestLoadKubeconfigErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKubeconfig(filepath.Join(dir, "nope")); err == nil {
		t.Error("a missing explicit file must be an error")
	}
	t.Setenv("KUBECONFIG", filepath.Join(dir, "nope"))
	if _, err := LoadKubeconfig(""); err == nil || !strings.Contains(err.Error(), "no kubeconfig found") {
		t.Errorf("nothing to load: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "clusters: [ {")
	if _, err := LoadKubeconfig(bad); err == nil {
		t.Error("malformed YAML must be an error")
	}
}

func TestRESTConfigFromContext(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "config")
	writeFile(t, a, kubeconfigA)
	writeFile(t, filepath.Join(dir, "pki", "ca.crt"), "ca from file")
	writeFile(t, filepath.Join(dir, "pki", "admin.crt"), "cert from file")
	kc, err := LoadKubeconfig(a)
	if err != nil {
		t.Fatal(err)
	}
	rc, ns, err := kc.RESTConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://127.0.0.1:6443" || string(rc.CAData) != "ca from file" || rc.BearerToken != "token-a" || string(rc.CertData) != "cert from file" || ns != "team-a" {
		t.Errorf("dev context: %+v ns %q", rc, ns)
	}
	if _, _, err := kc.RESTConfig("nope"); err == nil {
		t.Error("unknown context must be an error")
	}
}

func TestSaveAndSetCurrentContext(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config")
	writeFile(t, p, kubeconfigB)
	if err := SetCurrentContext(p, "other"); err != nil {
		t.Fatal(err)
	}
	kc, err := LoadKubeconfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if kc.CurrentContext != "other" {
		t.Errorf("current-context %q", kc.CurrentContext)
	}
	// Everything else survives, including fields drover does not interpret.
	if u, _ := kc.User("ops"); len(u.Exec) == 0 || u.TokenFile != "token" {
		t.Errorf("ops after save: %+v", u)
	}
	if c, _ := kc.Cluster("prod"); string(c.CertificateAuthorityData) != "ca-pem" {
		t.Errorf("prod after save: %+v", c)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; a kubeconfig holds secrets", st.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), "certificate-authority-data: Y2EtcGVt") {
		t.Errorf("data fields are written base64-encoded:\n%s", b)
	}
}

func TestMinify(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config")
	writeFile(t, p, kubeconfigB)
	kc, err := LoadKubeconfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Minify(""); err != nil {
		t.Fatal(err)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Name != "prod" || len(kc.Users) != 1 || len(kc.Contexts) != 1 {
		t.Errorf("minified: %+v", kc.Kubeconfig)
	}
}
