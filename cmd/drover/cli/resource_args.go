package cli

import (
	"errors"
	"strings"

	"github.com/droverhq/drover/client"
)

// resourceRequest is one resource type and the names asked for (none: all).
type resourceRequest struct {
	mapping client.Mapping
	names   []string
}

// parseResourceArgs reads kubectl's resource arguments:
//
//	TYPE[,TYPE...] [NAME...]   e.g. "po,svc", "deploy web api"
//	TYPE/NAME [TYPE/NAME...]   e.g. "deploy/web", "pod/a svc/b"
//
// Types are plural, singular, short or kind names, optionally with a group
// ("deployments.apps"), or a category ("all"). Consecutive TYPE/NAME
// arguments of one type are grouped, keeping their order.
func parseResourceArgs(mapper *client.Mapper, args []string) ([]resourceRequest, error) {
	if len(args) == 0 {
		return nil, errors.New("you must specify the type of resource to get")
	}
	if strings.Contains(args[0], "/") {
		var out []resourceRequest
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok {
				return nil, errors.New("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'drover get resource/<resource_name>' instead of 'drover get resource resource/<resource_name>')")
			}
			if typ == "" || name == "" || strings.Contains(name, "/") || strings.Contains(typ, ",") {
				return nil, errors.New("arguments in resource/name form must have a single resource and name")
			}
			m, err := mapper.ResourceFor(typ)
			if err != nil {
				return nil, err
			}
			if n := len(out); n > 0 && out[n-1].mapping.GVR() == m.GVR() {
				out[n-1].names = append(out[n-1].names, name)
				continue
			}
			out = append(out, resourceRequest{mapping: m, names: []string{name}})
		}
		return out, nil
	}
	names := args[1:]
	for _, n := range names {
		if strings.Contains(n, "/") {
			return nil, errors.New("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'drover get resource/<resource_name>' instead of 'drover get resource resource/<resource_name>')")
		}
	}
	var out []resourceRequest
	seen := map[string]bool{}
	for _, typ := range strings.Split(args[0], ",") {
		if typ == "" {
			continue
		}
		ms := []client.Mapping(nil)
		if m, err := mapper.ResourceFor(typ); err == nil {
			ms = []client.Mapping{m}
		} else if cat := mapper.Category(strings.ToLower(typ)); len(cat) > 0 {
			ms = cat
		} else {
			return nil, err
		}
		for _, m := range ms {
			if seen[m.GroupResource()] {
				continue
			}
			seen[m.GroupResource()] = true
			out = append(out, resourceRequest{mapping: m, names: names})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("you must specify the type of resource to get")
	}
	return out, nil
}
