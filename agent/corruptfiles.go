package agent

import (
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// corruptFiles reports, per file of the agent's, how many copies of it
// moved aside as corrupt (<file>.corrupt-<UTC time>, see the store
// package) lie beside it. A corrupt file is replaced by an empty one at
// start, so the agent runs on; the copy holds what was lost (unforwarded
// samples, observations, the plugin catalog), and the gauge stays up,
// across restarts, until an operator has looked at it and removed it.
type corruptFiles struct {
	mu    sync.Mutex
	paths []string
}

var descCorruptFiles = prometheus.NewDesc("vigil_store_corrupt_files",
	"Copies of this agent file that were found corrupt at start and moved aside (FILE.corrupt-TIME beside it); the agent started an empty file instead. Look at them and remove them.",
	[]string{"file"}, nil)

// watch adds the file at path.
func (c *corruptFiles) watch(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths = append(c.paths, path)
}

func (c *corruptFiles) Describe(ch chan<- *prometheus.Desc) { ch <- descCorruptFiles }

func (c *corruptFiles) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	paths := append([]string(nil), c.paths...)
	c.mu.Unlock()
	for _, p := range paths {
		copies, _ := filepath.Glob(globEscape(p) + ".corrupt-*")
		ch <- prometheus.MustNewConstMetric(descCorruptFiles, prometheus.GaugeValue, float64(len(copies)), p)
	}
}

// globEscape escapes the pattern characters in a path, for filepath.Glob.
func globEscape(p string) string {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '\\':
			out = append(out, '\\')
		}
		out = append(out, p[i])
	}
	return string(out)
}
