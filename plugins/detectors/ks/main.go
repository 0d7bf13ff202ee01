// Command ks is Vigil's ks drift detector plugin (see README.md). The
// Vigil agent and `vigil drift compare` start it; it is not run by hand.
package main

import (
	"github.com/vigilml/vigil/plugins/detectors/internal/detector"
	"github.com/vigilml/vigil/plugins/detectors/internal/methods"
)

func main() {
	detector.Serve("ks", methods.KS())
}
