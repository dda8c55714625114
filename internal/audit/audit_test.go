package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("output does not end in a newline: %q", b)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestLogRecord(t *testing.T) {
	var buf bytes.Buffer
	l := NewWriter(&buf)
	before := time.Now().Add(-time.Second)
	type outcome struct {
		Result  string `json:"result"`
		Signals []int  `json:"signals"`
	}
	if err := l.Log("kick", map[string]any{"target": map[string]any{"session": "pts/3", "uid": 1000}, "dry_run": false}); err != nil {
		t.Fatal(err)
	}
	if err := l.Log("kick-user", outcome{Result: "ended", Signals: []int{1, 9}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Log("cancel", nil); err != nil {
		t.Fatal(err)
	}
	recs := decodeLines(t, buf.Bytes())
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for i, r := range recs {
		ts, _ := r["time"].(string)
		when, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || when.Before(before) || when.After(time.Now().Add(time.Second)) {
			t.Errorf("record %d time %q (%v)", i, ts, err)
		}
		actor, ok := r["actor"].(map[string]any)
		if !ok {
			t.Fatalf("record %d has no actor: %v", i, r)
		}
		for _, k := range []string{"uid", "user", "pid", "loginuid", "command"} {
			if _, ok := actor[k]; !ok {
				t.Errorf("record %d actor lacks %q: %v", i, k, actor)
			}
		}
		if actor["uid"] != float64(os.Getuid()) || actor["pid"] != float64(os.Getpid()) {
			t.Errorf("actor %v, want uid %d pid %d", actor, os.Getuid(), os.Getpid())
		}
		if u, _ := actor["user"].(string); u == "" {
			t.Errorf("actor user is empty")
		}
		if lu, ok := actor["loginuid"].(float64); !ok || lu < -1 {
			t.Errorf("actor loginuid %v", actor["loginuid"])
		}
	}
	if recs[0]["event"] != "kick" || recs[0]["dry_run"] != false || recs[0]["target"].(map[string]any)["session"] != "pts/3" {
		t.Errorf("record 0 %v", recs[0])
	}
	if recs[1]["event"] != "kick-user" || recs[1]["result"] != "ended" || len(recs[1]["signals"].([]any)) != 2 {
		t.Errorf("record 1 %v", recs[1])
	}
	if recs[2]["event"] != "cancel" || len(recs[2]) != 3 {
		t.Errorf("record 2 %v, want only time, event, actor", recs[2])
	}
}

func TestLogFieldsCannotForgeTheRecord(t *testing.T) {
	var buf bytes.Buffer
	l := NewWriter(&buf)
	err := l.Log("refuse", map[string]any{"event": "kick", "time": "1970-01-01T00:00:00Z", "actor": "root", "reason": "r"})
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeLines(t, buf.Bytes())
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r["event"] != "refuse" || r["time"] == "1970-01-01T00:00:00Z" || r["actor"] == "root" || r["reason"] != "r" {
		t.Errorf("record %v: a field replaced time, event or actor", r)
	}
}

func TestLogHostileStrings(t *testing.T) {
	hostile := []string{
		"alice\n{\"event\":\"forged\"}",
		`bob" , "event": "forged`,
		"carol event=forged user=root",
		"dave\x1b[2J\x1b]0;pwn\a",
		"erin\r\nFeb 30 00:00:00 host sshkick: forged",
		"\u202eexe.txt",
		"\\\"\\n",
	}
	for _, h := range hostile {
		var buf bytes.Buffer
		l := NewWriter(&buf)
		if err := l.Log("kick", map[string]any{"target": map[string]any{"user": h, "host": h}}); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 1 {
			t.Errorf("%q: %d lines, want 1: %q", h, n, buf.String())
		}
		if bytes.ContainsAny(buf.Bytes()[:buf.Len()-1], "\n\r\x1b\a") {
			t.Errorf("%q: raw control bytes in the record: %q", h, buf.String())
		}
		recs := decodeLines(t, buf.Bytes())
		target := recs[0]["target"].(map[string]any)
		if target["user"] != h || target["host"] != h || recs[0]["event"] != "kick" {
			t.Errorf("%q: record %v", h, recs[0])
		}
		if len(recs[0]) != 4 {
			t.Errorf("%q: record has keys %v, want time, event, actor, target", h, recs[0])
		}
	}
}

func TestLogConcurrent(t *testing.T) {
	var buf bytes.Buffer
	l := NewWriter(&buf)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() { l.Log("msg", map[string]any{"n": i, "text": strings.Repeat("x", 1000)}) })
	}
	wg.Wait()
	if recs := decodeLines(t, buf.Bytes()); len(recs) != 20 {
		t.Errorf("%d records, want 20", len(recs))
	}
}

func TestLogErrors(t *testing.T) {
	var nilLogger *Logger
	if err := nilLogger.Log("kick", map[string]any{"a": 1}); err != nil {
		t.Errorf("nil Logger Log = %v", err)
	}
	if err := nilLogger.Close(); err != nil {
		t.Errorf("nil Logger Close = %v", err)
	}
	var buf bytes.Buffer
	l := NewWriter(&buf)
	if err := l.Log("kick", map[string]any{"bad": make(chan int)}); err == nil {
		t.Errorf("unmarshalable value logged")
	}
	if err := l.Log("kick", []int{1, 2}); err == nil {
		t.Errorf("a non-object value was logged")
	}
	if buf.Len() != 0 {
		t.Errorf("failed Log wrote %q", buf.String())
	}
	if err := l.Close(); err != nil { // a bytes.Buffer is no Closer
		t.Errorf("Close = %v", err)
	}
}

func TestOpenFile(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "sub", "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Where != path {
		t.Errorf("Where = %q, want %q", l.Where, path)
	}
	if err := l.Log("dry-run", map[string]any{"user": "a\nb"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil || di.Mode().Perm() != 0o750 {
		t.Errorf("directory mode %v (%v), want 0750", di.Mode().Perm(), err)
	}
	// Records are appended.
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Log("kick", map[string]any{"n": 2})
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeLines(t, b)
	if len(recs) != 2 || recs[0]["event"] != "dry-run" || recs[0]["user"] != "a\nb" || recs[1]["event"] != "kick" {
		t.Errorf("records %v", recs)
	}
}

func TestOpenError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path under a regular file cannot be created, even by root.
	if l, err := Open(filepath.Join(file, "audit.jsonl")); err == nil || l != nil {
		t.Errorf("Open under a file = %v, %v; want an error", l, err)
	} else if !strings.Contains(err.Error(), "audit log") {
		t.Errorf("error %q does not say it is the audit log", err)
	}
}
