//go:build !(linux && cgo)

package lcrun

// MaybeRunChild does nothing where libcontainer is not built (not Linux,
// or no cgo): no container processes are started there.
func MaybeRunChild() {}
