package fleet

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// MaxTagBytes is serf's limit on a member's encoded tags (memberlist's node
// metadata limit).
const MaxTagBytes = memberlist.MetaMaxSize

// Tag keys. Short keys leave more of the 512 bytes for the model list.
const (
	TagRole    = "role"
	TagVersion = "ver"
	TagModels  = "models"
	TagHealth  = "health"
)

// Model is one model version this node serves.
type Model struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Health is the compact health summary published in the "health" tag. A nil
// field is unknown (its source is not wired or has no data yet).
type Health struct {
	// GPUUtil is the mean GPU utilization, 0-1.
	GPUUtil *float64 `json:"gpu_util"`
	// WorstP95Ms is the highest p95 latency of any served model, in ms.
	WorstP95Ms *float64 `json:"worst_p95_ms"`
	// WorstErrorRate is the highest error rate of any served model, 0-1.
	WorstErrorRate *float64 `json:"worst_error_rate"`
	// Drifting is the number of features the drift detectors flag.
	Drifting *int `json:"drifting_features"`
	// Alerts is the number of firing alerts.
	Alerts *int `json:"alerts"`
}

// Summary is what a node publishes about itself besides role and version.
type Summary struct {
	Models []Model
	Health Health
}

// MemberTags is a member's tags decoded.
type MemberTags struct {
	Role    string  `json:"role"`
	Version string  `json:"version"`
	Models  []Model `json:"models"`
	// ModelsOmitted counts models left out of the tag to fit serf's limit.
	ModelsOmitted int    `json:"models_omitted,omitempty"`
	Health        Health `json:"health"`
}

// encodedSize is the size serf gives tags on the wire: a magic byte and the
// msgpack-encoded map, exactly as serf's encodeTags does.
func encodedSize(tags map[string]string) int {
	var buf bytes.Buffer
	buf.WriteByte(0xff)
	if err := codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(tags); err != nil {
		return math.MaxInt
	}
	return buf.Len()
}

// formatHealth writes the health summary as "g87;p123.4;e0.0123;d2;a1",
// leaving out unknown fields.
func formatHealth(h Health) string {
	var parts []string
	if h.GPUUtil != nil {
		parts = append(parts, "g"+strconv.Itoa(int(math.Round(*h.GPUUtil*100))))
	}
	if h.WorstP95Ms != nil {
		parts = append(parts, "p"+strconv.FormatFloat(*h.WorstP95Ms, 'f', 1, 64))
	}
	if h.WorstErrorRate != nil {
		parts = append(parts, "e"+strconv.FormatFloat(*h.WorstErrorRate, 'g', 3, 64))
	}
	if h.Drifting != nil {
		parts = append(parts, "d"+strconv.Itoa(*h.Drifting))
	}
	if h.Alerts != nil {
		parts = append(parts, "a"+strconv.Itoa(*h.Alerts))
	}
	return strings.Join(parts, ";")
}

func parseHealth(s string) Health {
	var h Health
	for _, part := range strings.Split(s, ";") {
		if len(part) < 2 {
			continue
		}
		v := part[1:]
		switch part[0] {
		case 'g':
			if n, err := strconv.Atoi(v); err == nil {
				f := float64(n) / 100
				h.GPUUtil = &f
			}
		case 'p':
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				h.WorstP95Ms = &f
			}
		case 'e':
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				h.WorstErrorRate = &f
			}
		case 'd':
			if n, err := strconv.Atoi(v); err == nil {
				h.Drifting = &n
			}
		case 'a':
			if n, err := strconv.Atoi(v); err == nil {
				h.Alerts = &n
			}
		}
	}
	return h
}

// sanitize keeps separators out of names and versions.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ',', '@', ';', '+':
			return '_'
		}
		return r
	}, s)
}

func formatModels(models []Model, omitted int) string {
	parts := make([]string, 0, len(models)+1)
	for _, m := range models {
		p := sanitize(m.Name)
		if m.Version != "" {
			p += "@" + sanitize(m.Version)
		}
		parts = append(parts, p)
	}
	if omitted > 0 {
		parts = append(parts, "+"+strconv.Itoa(omitted))
	}
	return strings.Join(parts, ",")
}

// BuildTags encodes a node's tags within serf's limit. When everything does
// not fit, models are dropped from the end of the (sorted) list and the tag
// records how many were left out ("+N"); if even that is not enough, the
// health summary and then the version are shortened. It returns the tags and
// their encoded size.
func BuildTags(role, version string, s Summary) (map[string]string, int) {
	models := append([]Model(nil), s.Models...)
	sort.Slice(models, func(i, j int) bool {
		if models[i].Name != models[j].Name {
			return models[i].Name < models[j].Name
		}
		return models[i].Version < models[j].Version
	})
	tags := map[string]string{TagVersion: version}
	if role != "" {
		tags[TagRole] = role
	}
	if h := formatHealth(s.Health); h != "" {
		tags[TagHealth] = h
	}
	// Binary search the most models that fit.
	fits := func(n int) bool {
		tags[TagModels] = formatModels(models[:n], len(models)-n)
		return encodedSize(tags) <= MaxTagBytes
	}
	n := len(models)
	if !fits(n) {
		lo, hi := 0, n // fits(lo) unknown; find largest k with fits(k)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if fits(mid) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		n = lo
		fits(n)
	}
	if len(models) == 0 {
		delete(tags, TagModels)
	}
	if size := encodedSize(tags); size > MaxTagBytes {
		delete(tags, TagHealth)
	}
	for encodedSize(tags) > MaxTagBytes && len(tags[TagVersion]) > 8 {
		tags[TagVersion] = tags[TagVersion][:len(tags[TagVersion])/2]
	}
	return tags, encodedSize(tags)
}

// DecodeTags reads the tags BuildTags wrote.
func DecodeTags(tags map[string]string) MemberTags {
	mt := MemberTags{Role: tags[TagRole], Version: tags[TagVersion], Models: []Model{}}
	if s := tags[TagModels]; s != "" {
		for _, p := range strings.Split(s, ",") {
			if rest, ok := strings.CutPrefix(p, "+"); ok {
				if n, err := strconv.Atoi(rest); err == nil {
					mt.ModelsOmitted = n
				}
				continue
			}
			name, ver, _ := strings.Cut(p, "@")
			mt.Models = append(mt.Models, Model{Name: name, Version: ver})
		}
	}
	mt.Health = parseHealth(tags[TagHealth])
	return mt
}

// String renders tags compactly for tables: role=..., ver=..., and so on.
func (mt MemberTags) String() string {
	var parts []string
	if mt.Role != "" {
		parts = append(parts, "role="+mt.Role)
	}
	if mt.Version != "" {
		parts = append(parts, "ver="+mt.Version)
	}
	if len(mt.Models) > 0 || mt.ModelsOmitted > 0 {
		parts = append(parts, "models="+formatModels(mt.Models, mt.ModelsOmitted))
	}
	if h := formatHealth(mt.Health); h != "" {
		parts = append(parts, "health="+h)
	}
	return strings.Join(parts, ",")
}

// checkHealth rejects values that cannot be published.
func checkHealth(h Health) error {
	for name, v := range map[string]*float64{"gpu_util": h.GPUUtil, "worst_p95_ms": h.WorstP95Ms, "worst_error_rate": h.WorstErrorRate} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0) {
			return fmt.Errorf("health.%s: %v is not a finite non-negative number", name, *v)
		}
	}
	return nil
}
