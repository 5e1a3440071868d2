//go:build linux

package modemsim

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openPTY creates a pseudo-terminal pair and returns the master, which the
// simulator reads and writes, and one slave descriptor the simulator keeps
// open (and never reads) so the master does not see EIO while the host
// closes and reopens the device between windows.
func openPTY() (master, slave *os.File, path string, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	closeMaster := func() { _ = unix.Close(mfd) }
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		closeMaster()
		return nil, nil, "", fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		closeMaster()
		return nil, nil, "", fmt.Errorf("get pty number: %w", err)
	}
	path = fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		closeMaster()
		return nil, nil, "", fmt.Errorf("open pty slave %s: %w", path, err)
	}
	if err := makeRaw(sfd); err != nil {
		closeMaster()
		_ = unix.Close(sfd)
		return nil, nil, "", fmt.Errorf("raw mode on %s: %w", path, err)
	}
	// Non-blocking lets the runtime poller interrupt a pending Read or Write
	// when Close is called.
	if err := unix.SetNonblock(mfd, true); err != nil {
		closeMaster()
		_ = unix.Close(sfd)
		return nil, nil, "", fmt.Errorf("non-blocking pty master: %w", err)
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), path), path, nil
}

// makeRaw is cfmakeraw(3): no echo, no line editing, no CR/LF translation,
// 8-bit characters, reads return as soon as a byte is there.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
