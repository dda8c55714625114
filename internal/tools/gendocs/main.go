// Command gendocs writes what the sshkick package ships beside the binary
// and derives from its command tree, so that it never drifts from the
// binary: a manual page per command (section 8, gzipped) and the bash, zsh
// and fish completion scripts. `make package` runs it; the output is the
// same bytes for the same source and SOURCE_DATE_EPOCH.
//
// It is a build tool: it must never be imported, and it never runs as
// part of sshkick.
//
//	go run ./internal/tools/gendocs -out DIR -version 1.2.3
//
// writes DIR/man8/sshkick.8.gz, DIR/man8/sshkick-kick.8.gz, …, and
// DIR/completions/{sshkick.bash,_sshkick,sshkick.fish}.
package main

import (
	"errors"

	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/sshkick/sshkick/internal/cli"
	"github.com/sshkick/sshkick/internal/engine"
)

func main() {
	out := flag.String("out", "", "write the pages and scripts under `DIR`")
	version := flag.String("version", "", "the package `VERSION`, shown in the pages' footer")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gendocs -out DIR [-version VERSION]")
		os.Exit(2)
	}
	if err := run(*out, *version); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(out, version string) error {
	date, err := sourceDate()
	if err != nil {
		return err
	}
	// The pages describe the commands; nothing here runs one.
	root := cli.NewRoot(&cli.Factory{IO: &cli.IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard},
		Engine: func(engine.SystemOptions) (*engine.Engine, error) { return nil, errors.New("gendocs runs no command") }})
	// cobra adds its completion command only when it executes; the pages
	// must document it.
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	if err := writeMan(root, filepath.Join(out, "man8"), version, date); err != nil {
		return err
	}
	return writeCompletions(root, filepath.Join(out, "completions"))
}

// sourceDate is SOURCE_DATE_EPOCH (reproducible builds), else now.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now().UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// writeMan writes one gzipped section-8 page per visible command.
func writeMan(root *cobra.Command, dir, version string, date time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	source := "sshkick"
	if version != "" {
		source += " " + version
	}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if c != root && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return nil
		}
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		hdr := &doc.GenManHeader{Section: "8", Date: &date, Source: source, Manual: "System Administration"}
		var page bytes.Buffer
		if err := doc.GenMan(c, hdr, &page); err != nil {
			return fmt.Errorf("man page of %s: %w", c.CommandPath(), err)
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".8.gz"
		return writeGzip(filepath.Join(dir, name), page.Bytes())
	}
	return walk(root)
}

func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, gen := range map[string]func(io.Writer) error{
		"sshkick.bash": func(w io.Writer) error { return root.GenBashCompletionV2(w, true) },
		"_sshkick":     func(w io.Writer) error { return root.GenZshCompletion(w) },
		"sshkick.fish": func(w io.Writer) error { return root.GenFishCompletion(w, true) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeGzip writes data gzipped with no name and no time in its header,
// so the same page is the same bytes (Debian wants pages compressed).
func writeGzip(path string, data []byte) error {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
