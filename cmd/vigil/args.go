package main

import (
	"flag"
	"fmt"
	"io"
)

// extraArgs reports, on stderr, positional arguments given to a command
// that takes none, so that "vigil models fraud" is an error rather than
// every model, as if the name had been read.
func extraArgs(fs *flag.FlagSet, stderr io.Writer) bool {
	if fs.NArg() == 0 {
		return false
	}
	fmt.Fprintf(stderr, "vigil %s: unexpected argument %q (it takes flags only; see vigil %s -help)\n", fs.Name(), fs.Arg(0), fs.Name())
	return true
}
