package fleet

import "github.com/hashicorp/serf/serf"

// handleQuery answers the queries this package defines; others are left
// for serf's internal handlers or later subsystems.
func (f *Fleet) handleQuery(q *serf.Query) {
	switch q.Name {
	case StatsQuery:
		f.answerStats(q)
	}
}
