package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/engine/enginetest"
	"github.com/sshkick/sshkick/internal/termmsg"
)

func ioPipe() (*os.File, *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	return r, w
}

func msgWith(t *testing.T, h *enginetest.Host, args []string, edit func(*msgOptions)) (code int, stdout, stderr string) {
	t.Helper()
	ios, out, errw := testIO()
	o := &msgOptions{IO: ios, Timeout: 2 * time.Second, Message: "hello", messageSet: true, Args: args,
		Engine: func(engine.SystemOptions) (*engine.Engine, error) { return h.Engine(), nil }}
	if edit != nil {
		edit(o)
	}
	code = exitCode(ios, runMsg(context.Background(), o))
	return code, out.String(), errw.String()
}

func TestMsgTable(t *testing.T) {
	h := enginetest.NewHost(cannedSessions()...)
	h.Messenger.Status = map[string]termmsg.Status{"tty1": termmsg.Refused}
	code, stdout, _ := msgWith(t, h, nil, func(o *msgOptions) { o.All = true })
	if code != ExitError {
		t.Errorf("a refusal: exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 || strings.Index(lines[0], "delivered") != strings.Index(lines[1], "refused") {
		t.Errorf("columns do not line up:\n%s", stdout)
	}
	if !strings.Contains(stdout, "(the user said mesg n; --force overrides)") {
		t.Errorf("no hint: %s", stdout)
	}
	if len(h.Messenger.Sent) != 1 || !strings.Contains(h.Messenger.Sent[0].Msg, "hello") {
		t.Errorf("sent %+v", h.Messenger.Sent)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestMsgJSONBrokenOutput(t *testing.T) {
	h := enginetest.NewHost(cannedSessions()...)
	ios, _, errw := testIO()
	ios.Out = brokenWriter{}
	o := &msgOptions{IO: ios, Timeout: time.Second, Message: "hi", messageSet: true, JSON: true, Args: []string{"pts/0"},
		Engine: func(engine.SystemOptions) (*engine.Engine, error) { return h.Engine(), nil }}
	if code := exitCode(ios, runMsg(context.Background(), o)); code != ExitError || !strings.Contains(errw.String(), "broken pipe") {
		t.Errorf("exit %d stderr %q", code, errw)
	}
}

func TestMsgUsageBeforeStdin(t *testing.T) {
	h := enginetest.NewHost(cannedSessions()...)
	code, _, stderr := msgWith(t, h, nil, func(o *msgOptions) {
		o.messageSet = false
		o.IO.In = io.MultiReader(strings.NewReader("x"), failingReader{t})
	})
	if code != ExitUsage || !strings.Contains(stderr, "no one to write to") {
		t.Errorf("exit %d stderr %q", code, stderr)
	}
}

type failingReader struct{ t *testing.T }

func (f failingReader) Read([]byte) (int, error) {
	f.t.Error("standard input read before the usage check")
	return 0, io.EOF
}
