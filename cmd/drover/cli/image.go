package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/droverhq/drover/control/printers"
	"github.com/droverhq/drover/node/image"
)

// The node's image directory: /var/lib/drover/images on a node, or
// ./drover-data/images beside a development server (drover server --dev
// keeps its data in ./drover-data).
const (
	nodeImageDir = "/var/lib/drover/images"
	devDataDir   = "drover-data"
)

// defaultImageDir is ./drover-data/images when ./drover-data exists,
// else nodeImageDir.
func defaultImageDir() string {
	if fi, err := os.Stat(devDataDir); err == nil && fi.IsDir() {
		return filepath.Join(devDataDir, "images")
	}
	return nodeImageDir
}

type imageOptions struct {
	dataDir string
	streams Streams
}

func (o *imageOptions) dir() string {
	if o.dataDir != "" {
		return o.dataDir
	}
	return defaultImageDir()
}

func (o *imageOptions) open(insecure []string) (*image.Store, error) {
	return image.Open(image.Config{Dir: o.dir(), InsecureRegistries: insecure})
}

func newImageCmd(s Streams) *cobra.Command {
	o := &imageOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the images in this node's image store",
		Long: `Manage the images in this node's image store: the directory the node agent
pulls images into, unpacks their layers in and mounts container root file
systems from. These commands work on the directory directly, so they run on
the node itself (as root, like the agent), whether or not the agent runs.

The store is --data-dir. Without it: ./drover-data/images when ./drover-data
exists (beside a "drover server --dev", whose data is in ./drover-data), and
/var/lib/drover/images otherwise (a node's default).

Examples:
  drover image import busybox.tar           # docker save / OCI layout archives, for air-gapped labs
  drover image pull registry.example.com/team/app:1.2
  drover image pull 10.0.0.5:5000/app:dev --insecure-registry 10.0.0.5:5000
  drover image ls
  drover image rm registry.example.com/team/app:1.2`,
	}
	cmd.PersistentFlags().StringVar(&o.dataDir, "data-dir", "", "the node's image store (default ./drover-data/images when ./drover-data exists, else "+nodeImageDir+")")
	cmd.AddCommand(newImageImportCmd(o), newImageListCmd(o), newImageRemoveCmd(o), newImagePullCmd(o))
	return cmd
}

// import

type imageImportOptions struct {
	*imageOptions
	archives []string
}

func newImageImportCmd(parent *imageOptions) *cobra.Command {
	o := &imageImportOptions{imageOptions: parent}
	return &cobra.Command{
		Use:   "import ARCHIVE...",
		Short: "Import images from docker-save or OCI image-layout archives",
		Long: `Import the images of archives into the store, so pods can use them without a
registry (imagePullPolicy IfNotPresent or Never).

An archive is what "docker save" writes, or an OCI image layout in a tar
("skopeo copy ... oci-archive:x.tar", "docker buildx build -o type=oci"),
either of them possibly gzipped. "-" reads one from standard input. Images
take their names from the archive; an image without one is stored under its
ID. Layers already in the store are not unpacked again.

Examples:
  docker save busybox:1.36 -o busybox.tar && drover image import busybox.tar
  gunzip -c app.tar.gz | drover image import -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.archives = args
			return plainErrors(imageImportRun(cmd.Context(), o))
		},
	}
}

func imageImportRun(ctx context.Context, o *imageImportOptions) error {
	s, err := o.open(nil)
	if err != nil {
		return err
	}
	defer s.Close()
	var errs itemErrors
	for _, a := range o.archives {
		if err := importArchive(ctx, s, a, o.streams); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a, err))
		}
	}
	return errs.orNil()
}

func importArchive(ctx context.Context, s *image.Store, archive string, st Streams) error {
	var r io.Reader
	if archive == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(archive)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	start := time.Now()
	pp := newProgressPrinter(st.Err, "importing")
	imgs, err := s.ImportWithProgress(ctx, r, pp.update)
	pp.finish()
	for _, img := range imgs {
		fmt.Fprintf(st.Out, "imported %s (%s, %s)\n", img.Ref, shortDigest(img.ID), humanSize(img.Size))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(st.Out, "%d %s imported from %s in %s\n", len(imgs), plural(len(imgs), "image", "images"), archive, time.Since(start).Round(time.Millisecond))
	return nil
}

// ls

type imageListOptions struct {
	*imageOptions
	quiet bool
}

func newImageListCmd(parent *imageOptions) *cobra.Command {
	o := &imageListOptions{imageOptions: parent}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the images in the store",
		Long: `List the images in the store: name, registry digest (short; <none> for
images imported from docker-save archives, which have none), unpacked size,
and when a pull, a pod or a container last used the image.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return plainErrors(imageListRun(o))
		},
	}
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print only image names")
	return cmd
}

func imageListRun(o *imageListOptions) error {
	dir := o.dir()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(o.streams.Err, "No images found in %s.\n", dir)
		return nil
	}
	s, err := o.open(nil)
	if err != nil {
		return err
	}
	defer s.Close()
	imgs, err := s.List()
	if err != nil {
		return err
	}
	if len(imgs) == 0 {
		fmt.Fprintf(o.streams.Err, "No images found in %s.\n", dir)
		return nil
	}
	if o.quiet {
		for _, img := range imgs {
			fmt.Fprintln(o.streams.Out, img.Ref)
		}
		return nil
	}
	tw := tabwriter.NewWriter(o.streams.Out, 6, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tLAST USED")
	now := time.Now()
	for _, img := range imgs {
		digest := "<none>"
		if img.Digest != "" {
			digest = shortDigest(img.Digest)
		}
		used := "never"
		if !img.LastUsed.IsZero() {
			used = printers.HumanDuration(now.Sub(img.LastUsed)) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", img.Ref, digest, humanSize(img.Size), used)
	}
	return tw.Flush()
}

// rm

func newImageRemoveCmd(o *imageOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "rm IMAGE...",
		Aliases: []string{"remove", "rmi"},
		Short:   "Remove images from the store",
		Long: `Remove images from the store, and the layers no other image uses. An image a
container's root filesystem was made from is in use and is not removed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return plainErrors(imageRemoveRun(o, args))
		},
	}
}

func imageRemoveRun(o *imageOptions, refs []string) error {
	if _, err := os.Stat(o.dir()); err != nil {
		return err
	}
	s, err := o.open(nil)
	if err != nil {
		return err
	}
	defer s.Close()
	var errs itemErrors
	for _, ref := range refs {
		img, err := s.Get(ref)
		if err == nil {
			err = s.Remove(img.Ref)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(o.streams.Out, "image %q deleted\n", img.Ref)
	}
	return errs.orNil()
}

// pull

type imagePullOptions struct {
	*imageOptions
	ref      string
	insecure []string
	authFile string
}

func newImagePullCmd(parent *imageOptions) *cobra.Command {
	o := &imagePullOptions{imageOptions: parent}
	cmd := &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Pull an image from a registry into the store",
		Long: `Pull an image from its registry into the store, as the agent does for a pod
with imagePullPolicy Always: layers already in the store are not downloaded
again. From a multi-platform image, the host's platform (linux/` + runtime.GOARCH + `) is taken.
Progress goes to standard error.

Registries are reached over HTTPS only, unless listed with --insecure-registry.
Credentials come from --auth-file: a Docker config.json, or the data of a
kubernetes.io/dockerconfigjson or dockercfg secret.

Examples:
  drover image pull busybox:1.36
  drover image pull 127.0.0.1:5000/demo/web:v1 --insecure-registry 127.0.0.1:5000
  drover image pull registry.example.com/team/app:1.2 --auth-file ~/.docker/config.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ref = args[0]
			return plainErrors(imagePullRun(cmd.Context(), o))
		},
	}
	cmd.Flags().StringArrayVar(&o.insecure, "insecure-registry", nil, "a registry (host:port) to reach over plain HTTP; repeatable")
	cmd.Flags().StringVar(&o.authFile, "auth-file", "", "registry credentials: a Docker config.json or an image pull secret's data")
	return cmd
}

func imagePullRun(ctx context.Context, o *imagePullOptions) error {
	var creds []image.Credential
	if o.authFile != "" {
		data, err := os.ReadFile(o.authFile)
		if err != nil {
			return err
		}
		if creds, err = image.CredentialsFromDockerConfigJSON(data); err != nil {
			return fmt.Errorf("%s: %w", o.authFile, err)
		}
	}
	s, err := o.open(o.insecure)
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	pp := newProgressPrinter(o.streams.Err, "pulling")
	img, err := s.Pull(ctx, o.ref, creds, pp.update)
	pp.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "pulled %s (%s, %s) in %s\n", img.Ref, shortDigest(img.Digest), humanSize(img.Size), time.Since(start).Round(time.Millisecond))
	return nil
}

// plainErrors keeps only the messages of err (one per item), so
// ErrorText prints them as they are: it would word a file system error
// (its errno) as a failure to reach the API server.
func plainErrors(err error) error {
	if err == nil {
		return nil
	}
	var items itemErrors
	if errors.As(err, &items) {
		out := make(itemErrors, len(items))
		for i, e := range items {
			out[i] = errors.New(e.Error())
		}
		return out
	}
	return errors.New(err.Error())
}

// progressPrinter shows pull and import progress: one redrawn status
// line on a terminal, otherwise a line per layer event (and every
// quarter of a large download), which reads well in logs.
type progressPrinter struct {
	w      io.Writer
	verb   string
	tty    bool
	layers map[int]*layerProgress
	count  int
	ref    string
	drawn  time.Time
	dirty  bool // a status line is on screen
}

type layerProgress struct {
	done, total int64
	quarter     int64
	finished    bool
}

const (
	redrawEvery      = 100 * time.Millisecond
	quarterLinesFrom = 4 << 20 // downloads this large get 25/50/75% lines
)

func newProgressPrinter(w io.Writer, verb string) *progressPrinter {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressPrinter{w: w, verb: verb, tty: tty, layers: map[int]*layerProgress{}}
}

func (p *progressPrinter) update(pr image.Progress) {
	if pr.Ref != p.ref {
		p.finish()
		p.ref, p.count, p.layers = pr.Ref, pr.Count, map[int]*layerProgress{}
	}
	l := p.layers[pr.Index]
	if l == nil && pr.Index > 0 {
		l = &layerProgress{}
		p.layers[pr.Index] = l
	}
	name := fmt.Sprintf("layer %d/%d %s", pr.Index, pr.Count, shortDigest(pr.Layer))
	switch pr.Phase {
	case image.PhaseResolved:
		p.line(fmt.Sprintf("%s %s: %d %s", p.verb, pr.Ref, pr.Count, plural(pr.Count, "layer", "layers")))
	case image.PhaseExists:
		l.finished = true
		p.line(name + ": already present")
	case image.PhaseDownloading:
		l.done, l.total = pr.Done, pr.Total
		if !p.tty && l.total >= quarterLinesFrom {
			if q := l.done * 4 / l.total; q > l.quarter && q < 4 {
				l.quarter = q
				p.line(fmt.Sprintf("%s: %d%% of %s", name, q*25, humanSize(l.total)))
			}
		}
	case image.PhaseUnpacked:
		l.finished = true
		size := ""
		if l.done > 0 {
			size = " (" + humanSize(l.done) + ")"
		}
		p.line(name + ": unpacked" + size)
	case image.PhaseDone:
		p.finish()
		return
	}
	if p.tty && time.Since(p.drawn) >= redrawEvery {
		p.status()
	}
}

// line prints one event: on a terminal above the status line.
func (p *progressPrinter) line(s string) {
	if p.tty && p.dirty {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.dirty = false
	}
	fmt.Fprintln(p.w, s)
}

// status redraws the terminal's status line: a bar over all bytes known.
func (p *progressPrinter) status() {
	var done, total int64
	finished := 0
	for _, l := range p.layers {
		done += l.done
		total += l.total
		if l.finished {
			finished++
		}
	}
	bar, pct := "", ""
	if total > 0 {
		const width = 30
		n := int(done * width / total)
		bar = "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] "
		pct = fmt.Sprintf("%d%% %s/%s ", done*100/total, humanSize(done), humanSize(total))
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %s%s%d/%d layers", p.ref, bar, pct, finished, p.count)
	p.dirty, p.drawn = true, time.Now()
}

func (p *progressPrinter) finish() {
	if p.tty && p.dirty {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.dirty = false
	}
}

// shortDigest is the first 12 hex digits of a digest.
func shortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	if h == "" {
		return "<none>"
	}
	return h
}

// humanSize prints bytes with decimal units, as docker and crictl do.
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
