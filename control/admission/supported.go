package admission

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CheckSupported reports every field of raw, a request body as decoded by
// encoding/json, that drover does not support, and every field that the
// Kubernetes type of gvk does not have at all. It runs before decoding into the
// typed object, because decoding would silently drop unknown fields and keep
// unsupported ones the node agent would then ignore.
//
// A field present with its zero value (null, false, 0, "" or []) asks for
// nothing and is accepted even where unsupported, so manifests written out by
// tools that print every field still pass. An empty object is not a zero
// value: "nfs: {}" still selects an NFS volume.
func CheckSupported(gvk schema.GroupVersionKind, raw map[string]any) field.ErrorList {
	k, ok := allowlists()[gvk]
	if !ok {
		return field.ErrorList{field.Forbidden(field.NewPath("kind"),
			fmt.Sprintf("%s %s is not supported by drover", gvk.GroupVersion(), gvk.Kind))}
	}
	var c checker
	c.walk(k.root, k.typ, raw, nil)
	return c.errs
}

// node is one level of a kind's allowlist, laid over the Kubernetes Go type
// at the same place. Whether a field exists at all comes from the Go type;
// whether drover supports it comes from the node.
type node struct {
	// fields are the supported children, each with its own node.
	fields map[string]*node
	// open: the children of the Go type not in fields are supported too,
	// with everything below them.
	open bool
	// values, for a string: the only values drover supports.
	values []string
	// hint is said when a child is refused; by default the supported
	// children are listed.
	hint string
}

type fields = map[string]*node

// all supports everything the Kubernetes type has here; it is shared and
// never modified.
var all = &node{open: true}

// openWith supports everything the Kubernetes type has here, with the
// children named in f narrowed to their own nodes.
func openWith(f fields) *node { return &node{open: true, fields: f} }

// only supports just the children in f.
func only(f fields) *node { return &node{fields: f} }

// onlyHint is only with the refusal saying hint instead of listing f.
func onlyHint(hint string, f fields) *node { return &node{fields: f, hint: hint} }

type checker struct {
	errs field.ErrorList
}

func (c *checker) walk(n *node, t reflect.Type, v any, p *field.Path) {
	if v == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isScalar(t) {
		if s, ok := v.(string); ok && len(n.values) > 0 && !slices.Contains(n.values, s) {
			c.errs = append(c.errs, field.Forbidden(p, fmt.Sprintf("%q is not supported by drover (supported values: %s)",
				s, strings.Join(n.values, ", "))))
		}
		return
	}
	// A value of the wrong JSON shape is left for the decoder to report.
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		list, _ := v.([]any)
		for i, e := range list {
			c.walk(n, t.Elem(), e, p.Index(i))
		}
	case reflect.Map:
		m, _ := v.(map[string]any)
		for _, k := range sortedKeys(m) {
			c.child(n, k, t.Elem(), m[k], p.Key(k))
		}
	case reflect.Struct:
		m, _ := v.(map[string]any)
		for _, k := range sortedKeys(m) {
			f, ok := fieldByJSON(t, k)
			if !ok {
				c.errs = append(c.errs, field.Forbidden(p.Child(k), unknownField(t, k)))
				continue
			}
			c.child(n, k, f.Type, m[k], p.Child(k))
		}
	}
}

// child walks a child that exists in the Kubernetes type, refusing it if the
// allowlist does not have it.
func (c *checker) child(n *node, name string, t reflect.Type, v any, p *field.Path) {
	if next, ok := n.fields[name]; ok {
		c.walk(next, t, v, p)
		return
	}
	if n.open {
		c.walk(all, t, v, p)
		return
	}
	if !isZeroJSON(v) {
		c.errs = append(c.errs, field.Forbidden(p, fmt.Sprintf("not supported by drover (%s)", n.refusalHint())))
	}
}

func (n *node) refusalHint() string {
	if n.hint != "" {
		return n.hint
	}
	return "supported fields: " + strings.Join(sortedKeys(n.fields), ", ")
}

func isZeroJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	}
	return false
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// isScalar: types that are one JSON value, including the ones with their
// own JSON form (Quantity, IntOrString, Time, RawExtension, FieldsV1).
func isScalar(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Array:
		return false
	case reflect.Slice:
		return t.Elem().Kind() == reflect.Uint8 // []byte is a base64 string
	}
	return true
}

// fieldByJSON finds the field of struct t that JSON name k decodes into,
// looking through inlined embedded structs (TypeMeta). Unlike encoding/json,
// and like Kubernetes, the match is case-sensitive.
func fieldByJSON(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			if inner, ok := fieldByJSON(f.Type, k); ok {
				return inner, true
			}
			continue
		}
		if name == k {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName is the field's name in its JSON tag ("" for an inlined struct).
func jsonName(f reflect.StructField) string {
	tag, ok := f.Tag.Lookup("json")
	if !ok {
		if f.Anonymous {
			return ""
		}
		return f.Name
	}
	name, _, _ := strings.Cut(tag, ",")
	return name
}

// jsonNames lists the JSON field names of struct t.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		switch name := jsonName(f); {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			names = append(names, jsonNames(f.Type)...)
		default:
			names = append(names, name)
		}
	}
	return names
}

// unknownField describes a field t does not have, with the nearest real
// field name when one is close enough to be a typo.
func unknownField(t reflect.Type, k string) string {
	best, bestDist := "", 3 // more than two edits is not a typo
	for _, name := range jsonNames(t) {
		d := editDistance(strings.ToLower(k), strings.ToLower(name))
		if strings.EqualFold(k, name) {
			d = 0
		}
		if d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return "unknown field"
	}
	return fmt.Sprintf("unknown field (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
