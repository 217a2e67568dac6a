// Package image is the node's image store: it pulls images from OCI and
// Docker registries, imports docker-save and OCI image-layout archives,
// keeps each layer unpacked once, and mounts a writable overlayfs root
// filesystem for every container.
//
// # On disk
//
//	<Dir>/
//	  index.json             name -> image (digest, ID, config, layer diffIDs, size, last use)
//	  index.lock, gc.lock    BSD locks shared with other processes on the same Dir
//	  blobs/sha256/<hex>     image configs and manifests, by digest
//	  layers/sha256/<hex>/   one unpacked layer per diffID, shared by every image
//	      fs/                the tree, an overlayfs lower directory
//	      layer.json         written last: a directory without it is not a layer
//	  layers/tmp/            layers being unpacked (<hex>.<pid>.<n>)
//	  containers/<id>/       one container's root filesystem
//	      rootfs.json        image and layers, written before the mount
//	      upper/ work/       the overlayfs upper and work directories
//	      rootfs/            the mount point handed to the runtime
//	  tmp/                   archives being imported
//
// Layers are stored in overlayfs's own format: an OCI whiteout
// ".wh.NAME" becomes a 0/0 character device NAME, and an opaque marker
// ".wh..wh..opq" becomes the trusted.overlay.opaque=y xattr of its
// directory, so a root filesystem is a plain overlay mount of the image's
// layers with no copying. This needs root (trusted.* xattrs, mknod,
// mount).
//
// # Guarantees
//
//   - Crash safety: every file the store relies on is written to a
//     temporary name, synced and renamed. A layer is unpacked in
//     layers/tmp and renamed into place with its layer.json; a layer
//     directory without layer.json is never used and is unpacked again.
//     Temporary files of processes that died are removed by Open.
//   - Integrity: every layer's uncompressed content must hash to the
//     diffID its image config lists, and is stored under it; the config
//     itself is checked against the digest its manifest names.
//   - Sharing: concurrent pulls of one name download once; concurrent
//     pulls of images that share a layer unpack it once.
//   - Several processes: the agent and the drover image CLI may use one
//     Dir at once. Index changes are read-modify-write under index.lock;
//     pulls, imports and PrepareRootFS hold gc.lock shared, and removing
//     layers needs it exclusively (and is put off, not waited for, while
//     a pull runs).
//   - In use: an image a prepared root filesystem was made from cannot be
//     removed (ErrInUse) or garbage collected, and neither can its
//     layers.
//   - Mounts: PrepareRootFS leaves nothing behind when it fails;
//     ReleaseRootFS unmounts (lazily if busy) before deleting; ListRootFS
//     finds every root filesystem after an agent restart, mounted or not.
//
// The lifecycle of a container's root filesystem:
//
//	PrepareRootFS --> mounted --(ReleaseRootFS)--> gone
//	                     |  ^
//	             reboot  v  | PrepareRootFS (same image: remount, changes kept)
//	                  unmounted
package image
