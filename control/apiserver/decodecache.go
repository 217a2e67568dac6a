package apiserver

import (
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/droverhq/drover/control/registry"
	"github.com/droverhq/drover/raftstore"
)

// decodeCache holds decoded objects by key and revision for the watch
// streams: every watcher of a change needs the same object, and decoding
// is the expensive part. Objects in it are shared and never modified. Two
// generations bound its size: when the current one fills, it becomes the
// old one and the previous old one is dropped.
type decodeCache struct {
	mu       sync.Mutex
	cur, old map[string]runtime.Object
	max      int
	log      func(key string, err error)
}

func newDecodeCache(max int, log func(string, error)) *decodeCache {
	return &decodeCache{cur: map[string]runtime.Object{}, max: max, log: log}
}

// get decodes kv (or returns it decoded already); nil if undecodable.
func (c *decodeCache) get(res *registry.Resource, kv *raftstore.KeyValue) runtime.Object {
	k := string(kv.Key) + "@" + strconv.FormatInt(kv.ModRev, 10)
	c.mu.Lock()
	obj, ok := c.cur[k]
	if !ok {
		if obj, ok = c.old[k]; ok {
			c.put(k, obj)
		}
	}
	c.mu.Unlock()
	if ok {
		return obj
	}
	obj, err := registry.Decode(res, kv)
	if err != nil {
		if c.log != nil {
			c.log(string(kv.Key), err)
		}
		return nil
	}
	c.mu.Lock()
	c.put(k, obj)
	c.mu.Unlock()
	return obj
}

func (c *decodeCache) put(k string, obj runtime.Object) {
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[string]runtime.Object, c.max)
	}
	c.cur[k] = obj
}
