package proc

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestTTYName(t *testing.T) {
	tests := []struct {
		dev  uint64
		want string
	}{
		{34816, "pts/0"}, // tty_nr of a shell on pts/0, as /proc/PID/stat shows it
		{34817, "pts/1"}, // 136:1
		{3180776, "pts/1000"},
		{unix.Mkdev(136, 255), "pts/255"},
		{unix.Mkdev(136, 1<<20-1), "pts/1048575"},
		{unix.Mkdev(137, 4), "pts/260"}, // the old 8-bit-minor numbering
		{unix.Mkdev(143, 255), "pts/2047"},
		{1025, "tty1"}, // 4:1
		{unix.Mkdev(4, 63), "tty63"},

		{0, ""},                    // no terminal
		{unix.Mkdev(4, 0), ""},     // tty0: the current console
		{unix.Mkdev(4, 64), ""},    // ttyS0
		{unix.Mkdev(4, 65), ""},    // ttyS1
		{unix.Mkdev(5, 0), ""},     // /dev/tty
		{unix.Mkdev(5, 1), ""},     // /dev/console
		{unix.Mkdev(5, 2), ""},     // /dev/ptmx
		{unix.Mkdev(128, 0), ""},   // a pty master
		{unix.Mkdev(137, 256), ""}, // beyond the old numbering
		{unix.Mkdev(144, 0), ""},   // not a pts major
		{unix.Mkdev(188, 0), ""},   // ttyUSB0
		{unix.Mkdev(135, 3), ""},   // below the pts majors
		{unix.Mkdev(1, 3), ""},     // /dev/null
		{0xffffffff, ""},           // tty_nr -1
	}
	for _, tt := range tests {
		if got := TTYName(tt.dev); got != tt.want {
			t.Errorf("TTYName(%d = %d:%d) = %q, want %q", tt.dev, unix.Major(tt.dev), unix.Minor(tt.dev), got, tt.want)
		}
	}
}

func TestTTYDevice(t *testing.T) {
	accepted := []struct {
		name string
		dev  uint64
	}{
		{"pts/0", 34816},
		{"pts/1", 34817},
		{"pts/1000", 3180776},
		{"pts/1048575", unix.Mkdev(136, 1<<20-1)},
		{"tty1", 1025},
		{"tty63", unix.Mkdev(4, 63)},
	}
	for _, tt := range accepted {
		dev, ok := TTYDevice(tt.name)
		if !ok || dev != tt.dev {
			t.Errorf("TTYDevice(%q) = %d, %v; want %d, true", tt.name, dev, ok, tt.dev)
		}
		// What the kernel shows as tty_nr names the same terminal back.
		if got := TTYName(dev); got != tt.name {
			t.Errorf("TTYName(TTYDevice(%q)) = %q", tt.name, got)
		}
	}
	rejected := []string{
		"tty0", "tty64", "tty99", "tty100", "ttyS0", "ttyUSB0", "console", "tty", "ptmx",
		"../pts/1", "/dev/pts/1", "dev/pts/1", "pts/01", "pts/00", "pts/-1", "pts/+1", "pts/",
		"pts/1/../../x", "pts/1 ", " pts/1", "pts/1\x00", "pts/1048576", "pts/99999999",
		"pts/1e3", "pts/0x10", "pts/١", "tty01", "tty-1", "tty+1", "tty1 ", "pts", "pts/a",
		":0", ":0.0", "", "../etc/shadow", "watchdog", "null", "pts//1", "PTS/1", "TTY1",
	}
	for _, name := range rejected {
		if dev, ok := TTYDevice(name); ok {
			t.Errorf("TTYDevice(%q) = %d, true; want it refused", name, dev)
		}
	}
}

func FuzzTTYDevice(f *testing.F) {
	for _, s := range []string{"pts/0", "tty1", "pts/01", "tty64", "../pts/1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		dev, ok := TTYDevice(name)
		if ok && TTYName(dev) != name {
			t.Fatalf("TTYDevice(%q) = %d, which TTYName calls %q", name, dev, TTYName(dev))
		}
	})
}
