package image

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Credential is one registry login, as a Kubernetes imagePullSecret holds
// it.
type Credential struct {
	// Registry is the secret's key: host[:port] with an optional path
	// prefix ("registry.example.com:5000/team"), possibly with a scheme
	// ("https://index.docker.io/v1/") or glob labels ("*.example.com").
	Registry      string
	Username      string
	Password      string
	IdentityToken string // an OAuth refresh token, used instead of a password
	RegistryToken string // a bearer token sent as is
}

// dockerConfigEntry is one entry of a .dockerconfigjson or .dockercfg.
type dockerConfigEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// CredentialsFromDockerConfigJSON reads the data of an imagePullSecret:
// the .dockerconfigjson key of a kubernetes.io/dockerconfigjson secret
// ({"auths": {...}}) or the .dockercfg key of a kubernetes.io/dockercfg
// secret (the same entries without the "auths" wrapper). An entry's
// "auth" (base64 of user:password) fills in a missing username and
// password.
func CredentialsFromDockerConfigJSON(data []byte) ([]Credential, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("image pull secret: %w", err)
	}
	entries := map[string]dockerConfigEntry{}
	if raw, ok := probe["auths"]; ok {
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, fmt.Errorf("image pull secret: auths: %w", err)
		}
	} else {
		for k, raw := range probe {
			var e dockerConfigEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fmt.Errorf("image pull secret: %s: %w", k, err)
			}
			entries[k] = e
		}
	}
	creds := make([]Credential, 0, len(entries))
	for k, e := range entries {
		c := Credential{Registry: k, Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" && c.Username == "" && c.Password == "" {
			b, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("image pull secret: %s: auth is not base64: %w", k, err)
			}
			user, pass, ok := strings.Cut(string(b), ":")
			if !ok {
				return nil, fmt.Errorf("image pull secret: %s: auth is not user:password", k)
			}
			c.Username, c.Password = user, pass
		}
		creds = append(creds, c)
	}
	sort.Slice(creds, func(i, j int) bool { return creds[i].Registry < creds[j].Registry })
	return creds, nil
}

func (c Credential) authenticator() authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{
		Username: c.Username, Password: c.Password,
		IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken,
	})
}

// credentialKey is a Credential's Registry taken apart for matching.
type credentialKey struct {
	host string // normalized, may hold globs
	path string // repository path prefix, no leading or trailing slash
}

func parseCredentialKey(key string) (credentialKey, error) {
	v := key
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		v = "https://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return credentialKey{}, fmt.Errorf("registry key %q: not host[:port][/path]", key)
	}
	p := strings.Trim(u.Path, "/")
	if p == "v1" || p == "v2" { // "https://index.docker.io/v1/" names the registry, not a path
		p = ""
	}
	return credentialKey{host: registryKey(u.Host), path: p}, nil
}

// matches reports whether the key applies to repository repo of registry
// host, as the kubelet decides it: labels match one by one (globs
// allowed), ports must be equal, and the key's path is a prefix of the
// repository's.
func (k credentialKey) matches(host, repo string) bool {
	kh, kp := splitPort(k.host)
	h, p := splitPort(host)
	if kp != p {
		return false
	}
	kl, hl := strings.Split(kh, "."), strings.Split(h, ".")
	if len(kl) != len(hl) {
		return false
	}
	for i := range kl {
		if ok, err := path.Match(kl[i], hl[i]); err != nil || !ok {
			return false
		}
	}
	return k.path == "" || repo == k.path || strings.HasPrefix(repo, k.path+"/")
}

func splitPort(hostport string) (string, string) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, ""
	}
	return h, p
}

// matchingCredentials are the credentials that apply to repo on host,
// most specific key first (longest path, then fewest globs). Keys that do
// not parse are skipped.
func matchingCredentials(creds []Credential, host, repo string) []Credential {
	type m struct {
		c Credential
		k credentialKey
	}
	var ms []m
	for _, c := range creds {
		k, err := parseCredentialKey(c.Registry)
		if err != nil || !k.matches(registryKey(host), repo) {
			continue
		}
		ms = append(ms, m{c, k})
	}
	sort.SliceStable(ms, func(i, j int) bool {
		if len(ms[i].k.path) != len(ms[j].k.path) {
			return len(ms[i].k.path) > len(ms[j].k.path)
		}
		return strings.Count(ms[i].k.host, "*") < strings.Count(ms[j].k.host, "*")
	})
	out := make([]Credential, len(ms))
	for i := range ms {
		out[i] = ms[i].c
	}
	return out
}
