//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package cli

import (
	"errors"
	"os"

	"github.com/droverhq/drover/client"
)

// No terminal handling here: exec -t runs without a TTY.

func isTerminal(*os.File) bool { return false }

func makeRaw(*os.File) (func(), error) {
	return nil, errors.New("raw terminal mode is not supported on this system")
}

func terminalSize(*os.File) (client.TermSize, bool) { return client.TermSize{}, false }

func notifyResize(chan<- os.Signal) {}
