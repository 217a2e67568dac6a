package image

import (
	"encoding/base64"
	"slices"
	"testing"
)

func TestCredentialsFromDockerConfigJSON(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("bob:pa:ss"))
	for _, tc := range []struct {
		name, data string
		want       []Credential
		wantErr    bool
	}{
		{
			name: "dockerconfigjson",
			data: `{"auths":{"registry.example.com:5000":{"username":"alice","password":"pw","email":"a@x"},"https://index.docker.io/v1/":{"auth":"` + auth + `"}}}`,
			want: []Credential{
				{Registry: "https://index.docker.io/v1/", Username: "bob", Password: "pa:ss"},
				{Registry: "registry.example.com:5000", Username: "alice", Password: "pw"},
			},
		},
		{
			name: "dockercfg",
			data: `{"quay.io":{"auth":"` + auth + `","email":"b@x"}}`,
			want: []Credential{{Registry: "quay.io", Username: "bob", Password: "pa:ss"}},
		},
		{
			name: "tokens",
			data: `{"auths":{"gcr.io":{"identitytoken":"refresh","registrytoken":"bearer"}}}`,
			want: []Credential{{Registry: "gcr.io", IdentityToken: "refresh", RegistryToken: "bearer"}},
		},
		{name: "empty", data: `{"auths":{}}`, want: []Credential{}},
		{name: "not json", data: `{`, wantErr: true},
		{name: "auth not base64", data: `{"auths":{"x":{"auth":"%%%"}}}`, wantErr: true},
		{name: "auth without colon", data: `{"auths":{"x":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("bob")) + `"}}}`, wantErr: true},
		{name: "auths not an object", data: `{"auths":[]}`, wantErr: true},
	} {
		got, err := CredentialsFromDockerConfigJSON([]byte(tc.data))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: error %v", tc.name, err)
			continue
		}
		if !tc.wantErr && !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestMatchingCredentials(t *testing.T) {
	c := func(key string) Credential { return Credential{Registry: key, Username: key} }
	all := []Credential{
		c("https://index.docker.io/v1/"),
		c("registry.example.com"),
		c("registry.example.com/team"),
		c("registry.example.com/team/app"),
		c("*.example.com"),
		c("registry.example.com:5000"),
		c("http://10.0.0.1:5000/"),
		c("::bad::"),
	}
	for _, tc := range []struct {
		host, repo string
		want       []string
	}{
		{"index.docker.io", "library/busybox", []string{"https://index.docker.io/v1/"}},
		{"docker.io", "library/busybox", []string{"https://index.docker.io/v1/"}},
		{"registry.example.com", "team/app", []string{"registry.example.com/team/app", "registry.example.com/team", "registry.example.com", "*.example.com"}},
		{"registry.example.com", "team/application", []string{"registry.example.com/team", "registry.example.com", "*.example.com"}},
		{"registry.example.com", "other/x", []string{"registry.example.com", "*.example.com"}},
		{"mirror.example.com", "x", []string{"*.example.com"}},
		{"a.b.example.com", "x", nil}, // a glob matches one label
		{"registry.example.com:5000", "x", []string{"registry.example.com:5000"}},
		{"10.0.0.1:5000", "x", []string{"http://10.0.0.1:5000/"}},
		{"10.0.0.1", "x", nil},
		{"quay.io", "x", nil},
	} {
		var got []string
		for _, m := range matchingCredentials(all, tc.host, tc.repo) {
			got = append(got, m.Username)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s/%s: got %q, want %q", tc.host, tc.repo, got, tc.want)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                         "docker.io/library/busybox:latest",
		"busybox:1.36":                    "docker.io/library/busybox:1.36",
		"index.docker.io/library/busybox": "docker.io/library/busybox:latest",
		"docker.io/user/app:v1":           "docker.io/user/app:v1",
		"127.0.0.1:5000/test/bb:v1":       "127.0.0.1:5000/test/bb:v1",
		"quay.io/a/b@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "quay.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	} {
		if got, ok := CanonicalName(in); !ok || got != want {
			t.Errorf("CanonicalName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "UPPER/x", "a b", " busybox", "x:"} {
		if got, ok := CanonicalName(bad); ok {
			t.Errorf("CanonicalName(%q) = %q, accepted", bad, got)
		}
	}
}
