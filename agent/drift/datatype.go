package drift

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// descriptions asks each detector plugin for its methods once per
// evaluation pass, so that a plugin replaced between passes is asked again.
type descriptions struct {
	det Detectors
	mu  sync.Mutex
	m   map[string]*description
}

type description struct {
	once sync.Once
	resp *pb.DescribeResponse
	err  error
}

func newDescriptions(det Detectors) *descriptions {
	return &descriptions{det: det, m: map[string]*description{}}
}

// get returns plugin's Describe answer, asking it on the first call.
func (ds *descriptions) get(ctx context.Context, plugin string) (*pb.DescribeResponse, error) {
	ds.mu.Lock()
	d := ds.m[plugin]
	if d == nil {
		d = &description{}
		ds.m[plugin] = d
	}
	ds.mu.Unlock()
	d.once.Do(func() { d.resp, d.err = ds.det.Describe(ctx, plugin) })
	return d.resp, d.err
}

// dataTypeName is how a data type reads in messages: numeric, categorical.
func dataTypeName(t pb.DataType) string { return strings.ToLower(t.String()) }

// checkDataType refuses a request whose data type the method does not take
// according to desc, the plugin's Describe answer, with an error naming the
// feature, the detector, the method and the types it takes. A method that
// desc does not list, or that declares no data types, is left to the
// plugin to judge.
func checkDataType(desc *pb.DescribeResponse, model, plugin string, req *sdk.DetectRequest) error {
	for _, m := range desc.GetMethods() {
		if m.GetName() != req.Method || len(m.GetDataTypes()) == 0 {
			continue
		}
		var takes []string
		for _, t := range m.GetDataTypes() {
			if t == req.DataType {
				return nil
			}
			takes = append(takes, dataTypeName(t))
		}
		return fmt.Errorf("feature %q is %s, but detector %q (method %s) takes %s data only; not sent: set models.%s.features.%s.detector (and .method) to one that takes %s data, or leave it unset for the automatic choice",
			req.Feature, dataTypeName(req.DataType), plugin, req.Method, strings.Join(takes, " or "), model, req.Feature, dataTypeName(req.DataType))
	}
	return nil
}
