package observe

import (
	"bytes"
	"context"
	"errors"
)

// MatchedLabel is a stored label that POST /v1/labels matched to a
// remembered prediction.
type MatchedLabel struct {
	RequestID string
	Model     string
	Version   string
	// Correct: the prediction equalled the label.
	Correct bool
}

// ScanLabels calls fn with each stored label matched to a prediction of
// model (and of version, unless it is empty), in the order the agent
// received them, starting after the record key after (nil: from the
// oldest kept), until fn returns false or ctx ends. It returns the key of
// the last record read, to continue from in a later call (after, when
// nothing was read). Labels older than observe.retention are gone. The
// drift engine joins these to its reference windows' request IDs.
func (s *Service) ScanLabels(ctx context.Context, model, version string, after []byte, fn func(MatchedLabel) bool) ([]byte, error) {
	last := after
	errStop, errChunk := errors.New("stop"), errors.New("chunk")
	from := after
	for {
		if err := ctx.Err(); err != nil {
			return last, err
		}
		visited, more := 0, false
		// Short read transactions, as Scan: 256 records each.
		err := s.kv.ForEachFrom(bucketLabels, from, func(k, v []byte) error {
			if last != nil && bytes.Compare(k, last) <= 0 {
				return nil
			}
			if visited == 256 {
				more = true
				return errChunk
			}
			visited++
			last = append([]byte(nil), k...)
			outs, err := decodeLabels(v)
			if err != nil {
				return nil // skip a damaged record
			}
			for _, l := range outs {
				if !l.matched || l.key.model != model || (version != "" && l.key.version != version) {
					continue
				}
				if !fn(MatchedLabel{RequestID: l.RequestID, Model: l.key.model, Version: l.key.version, Correct: l.correct}) {
					return errStop
				}
			}
			return nil
		})
		switch {
		case errors.Is(err, errStop):
			return last, nil
		case err != nil && !errors.Is(err, errChunk):
			return last, err
		case !more:
			return last, nil
		}
		from = last
	}
}
