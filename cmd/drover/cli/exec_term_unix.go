//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package cli

// The local terminal for exec -t, through termios ioctls.

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/client"
)

// withFd runs fn on f's descriptor without putting it in blocking mode
// (os.File.Fd would).
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func isTerminal(f *os.File) bool {
	return withFd(f, func(fd int) error {
		_, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		return err
	}) == nil
}

// makeRaw puts the terminal in raw mode (as cfmakeraw: no echo, no line
// editing, no signals from keys, no output processing); restore puts back
// the settings it had.
func makeRaw(f *os.File) (restore func(), err error) {
	var saved unix.Termios
	err = withFd(f, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return err
		}
		saved = *t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN] = 1
		raw.Cc[unix.VTIME] = 0
		return unix.IoctlSetTermios(fd, ioctlSetTermios, &raw)
	})
	if err != nil {
		return nil, err
	}
	return func() {
		withFd(f, func(fd int) error { return unix.IoctlSetTermios(fd, ioctlSetTermios, &saved) })
	}, nil
}

func terminalSize(f *os.File) (client.TermSize, bool) {
	var ws *unix.Winsize
	err := withFd(f, func(fd int) error {
		var err error
		ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		return err
	})
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return client.TermSize{}, false
	}
	return client.TermSize{Width: ws.Col, Height: ws.Row}, true
}

// notifyResize delivers SIGWINCH, the terminal's size changed, to c.
func notifyResize(c chan<- os.Signal) { signal.Notify(c, unix.SIGWINCH) }
