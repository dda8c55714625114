// Command sshkick lists, warns and ends login sessions on a Linux host.
package main

import (
	"os"

	"github.com/sshkick/sshkick/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
