package engine

import "github.com/sshkick/sshkick/internal/kick"

// RunHelper runs the helper that ends every process of one user when args
// ask for it (the kick package re-executes sshkick as the user for
// --all-processes): its exit code, and true. Otherwise false.
func RunHelper(args []string) (int, bool) {
	if len(args) > 0 && args[0] == kick.HelperArg {
		return kick.HelperMain(args[1:]), true
	}
	return 0, false
}

// HelperArg is the first argument that runs the helper.
const HelperArg = kick.HelperArg
