package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifestObject is one object read from -f, with where it came from for
// messages ("error when creating "web.yaml": ...").
type manifestObject struct {
	source string
	obj    *unstructured.Unstructured
}

// manifestExtensions are the files a directory contributes, as in kubectl.
var manifestExtensions = []string{".json", ".yaml", ".yml"}

// readManifests reads every -f argument: a file, a directory (its manifest
// files in name order; subdirectories with recursive), or "-" for stdin.
func readManifests(paths []string, recursive bool, stdin io.Reader) ([]manifestObject, error) {
	if len(paths) == 0 {
		return nil, errors.New("must specify one of -f and -k")
	}
	var out []manifestObject
	for _, p := range paths {
		if p == "-" {
			objs, err := splitManifest("STDIN", stdin)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("the path %q does not exist", p)
		}
		if !st.IsDir() {
			objs, err := readManifestFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && !recursive {
					return filepath.SkipDir
				}
				return nil
			}
			ext := strings.ToLower(filepath.Ext(path))
			for _, e := range manifestExtensions {
				if ext == e {
					objs, err := readManifestFile(path)
					out = append(out, objs...)
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readManifestFile(path string) ([]manifestObject, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return splitManifest(path, f)
}

// splitManifest reads a stream of objects: JSON (one or several
// concatenated) or multi-document YAML. Empty documents are skipped and
// lists (kind: List, or any *List with items) are flattened into their
// items.
func splitManifest(source string, r io.Reader) ([]manifestObject, error) {
	br := bufio.NewReader(r)
	var docs [][]byte
	if isJSONStream(br) {
		dec := json.NewDecoder(br)
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("error parsing %s: %w", source, err)
			}
			docs = append(docs, raw)
		}
	} else {
		yr := utilyaml.NewYAMLReader(br)
		for {
			doc, err := yr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("error parsing %s: %w", source, err)
			}
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("error parsing %s: %w", source, err)
			}
			docs = append(docs, j)
		}
	}
	var out []manifestObject
	for _, d := range docs {
		d = bytes.TrimSpace(d)
		if len(d) == 0 || bytes.Equal(d, []byte("null")) {
			continue
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(d, &obj); err != nil {
			return nil, fmt.Errorf("error parsing %s: %w", source, err)
		}
		objs, err := flattenList(source, obj)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// isJSONStream peeks past whitespace for a '{'.
func isJSONStream(br *bufio.Reader) bool {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil || len(b) < i {
			return false
		}
		switch b[i-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
}

func flattenList(source string, obj map[string]any) ([]manifestObject, error) {
	u := &unstructured.Unstructured{Object: obj}
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion not set")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind not set")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("error validating %q: error validating data: [%s]", source, strings.Join(missing, ", "))
	}
	items, isList := obj["items"].([]any)
	if !isList || !strings.HasSuffix(u.GetKind(), "List") {
		return []manifestObject{{source: source, obj: u}}, nil
	}
	var out []manifestObject
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("error validating %q: item %d of the list is not an object", source, i)
		}
		// Items of a typed list (PodList) may leave out what the list says.
		if kind := strings.TrimSuffix(u.GetKind(), "List"); kind != "" {
			if _, ok := m["kind"]; !ok {
				m["kind"] = kind
			}
			if _, ok := m["apiVersion"]; !ok {
				m["apiVersion"] = u.GetAPIVersion()
			}
		}
		objs, err := flattenList(source, m)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}
