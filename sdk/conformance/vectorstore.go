package conformance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// The vector-store checks use five records whose order differs for each
// distance when queried with [1, 0, 0]:
//
//	cosine: r1 r2 r3 r4 r5
//	dot:    r2 r1 r3 r4 r5
//	l2:     r1 r3 r4 r5 r2
var vsRecords = []struct {
	id    string
	vec   []float32
	group string
	n     float64
}{
	{"r1", []float32{1, 0, 0}, "a", 1},
	{"r2", []float32{3, 0.3, 0}, "b", 2},
	{"r3", []float32{0.5, 0.5, 0}, "a", 3},
	{"r4", []float32{0, 1, 0}, "b", 4},
	{"r5", []float32{-1, 0, 0}, "a", 5},
}

var vsQuery = []float32{1, 0, 0}

var vsOrder = map[pb.Distance][]string{
	pb.Distance_COSINE: {"r1", "r2", "r3", "r4", "r5"},
	pb.Distance_DOT:    {"r2", "r1", "r3", "r4", "r5"},
	pb.Distance_L2:     {"r1", "r3", "r4", "r5", "r2"},
}

func cond(field string, op pb.Condition_Op, v any) *pb.Filter {
	val, _ := structpb.NewValue(v)
	return &pb.Filter{Kind: &pb.Filter_Condition{Condition: &pb.Condition{Field: field, Op: op, Value: val}}}
}

func and(fs ...*pb.Filter) *pb.Filter {
	return &pb.Filter{Kind: &pb.Filter_And{And: &pb.FilterList{Filters: fs}}}
}

func or(fs ...*pb.Filter) *pb.Filter {
	return &pb.Filter{Kind: &pb.Filter_Or{Or: &pb.FilterList{Filters: fs}}}
}

func ids(ms []*pb.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.GetRecord().GetId()
	}
	return out
}

func (r *runner) vectorStore(v sdk.VectorStoreClient) {
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	base := "vigil_conformance_" + hex.EncodeToString(suffix[:])
	cols := map[pb.Distance]string{}
	defer func() {
		// Leave nothing behind in the store, whatever failed.
		for _, name := range cols {
			c, cancel := r.call()
			_, _ = v.DropCollection(c, &pb.DropCollectionRequest{Name: name})
			cancel()
		}
	}()

	distances := []pb.Distance{pb.Distance_COSINE, pb.Distance_DOT, pb.Distance_L2}
	for _, dist := range distances {
		name := base + "_" + strings.ToLower(dist.String())
		dname := strings.ToLower(dist.String())
		ok := r.check("vectorstore/create/"+dname, func() error {
			c, cancel := r.call()
			defer cancel()
			if _, err := v.CreateCollection(c, &pb.CreateCollectionRequest{Name: name, Dimension: 3, Distance: dist}); err != nil {
				return fmt.Errorf("CreateCollection(%s, dimension 3, %s) failed: %v", name, dname, err)
			}
			cols[dist] = name
			return nil
		})
		if !ok {
			continue
		}
		r.check("vectorstore/upsert/"+dname, func() error {
			c, cancel := r.call()
			defer cancel()
			var recs []*pb.Record
			for _, rec := range vsRecords {
				md, _ := structpb.NewStruct(map[string]any{"group": rec.group, "n": rec.n})
				recs = append(recs, &pb.Record{Id: rec.id, Vector: rec.vec, Text: "text of " + rec.id, Metadata: md})
			}
			resp, err := v.Upsert(c, &pb.UpsertRequest{Collection: name, Records: recs})
			if err != nil {
				return fmt.Errorf("the Upsert call of %d records failed: %v", len(recs), err)
			}
			if resp.GetUpserted() != int64(len(recs)) {
				return fmt.Errorf("the Upsert call of %d records says %d were upserted", len(recs), resp.GetUpserted())
			}
			return nil
		})
		r.check("vectorstore/query-order/"+dname, func() error {
			got, err := r.query(v, name, 3, nil)
			if err != nil {
				return err
			}
			if want := vsOrder[dist][:3]; !slices.Equal(ids(got), want) {
				return fmt.Errorf("top 3 by %s distance to %v are %v, expected %v", dname, vsQuery, ids(got), want)
			}
			return nil
		})
	}

	name, ok := cols[pb.Distance_COSINE]
	if !ok {
		return
	}
	filters := []struct {
		name   string
		filter *pb.Filter
		want   []string
	}{
		{"eq", cond("group", pb.Condition_EQ, "a"), []string{"r1", "r3", "r5"}},
		{"range", cond("n", pb.Condition_GT, 3.0), []string{"r4", "r5"}},
		{"and", and(cond("n", pb.Condition_GTE, 2.0), cond("n", pb.Condition_LT, 4.0)), []string{"r2", "r3"}},
		{"or", or(cond("group", pb.Condition_EQ, "b"), cond("n", pb.Condition_LTE, 1.0)), []string{"r1", "r2", "r4"}},
	}
	for _, f := range filters {
		r.check("vectorstore/filter-"+f.name, func() error {
			got, err := r.query(v, name, 10, f.filter)
			if err != nil {
				return err
			}
			if !slices.Equal(ids(got), f.want) {
				return fmt.Errorf("filter %s matched %v, expected %v (in cosine order)", f.name, ids(got), f.want)
			}
			return nil
		})
	}
	r.check("vectorstore/stats", func() error {
		return r.stats(v, name, 5)
	})
	r.check("vectorstore/wrong-dimension", func() error {
		c, cancel := r.call()
		defer cancel()
		_, err := v.Upsert(c, &pb.UpsertRequest{Collection: name, Records: []*pb.Record{{Id: "bad", Vector: []float32{1, 2}}}})
		if err := classed(err, "Upsert of a 2-dimensional vector into a 3-dimensional collection", true, sdk.InvalidRequest); err != nil {
			return err
		}
		_, err = v.Query(c, &pb.QueryRequest{Collection: name, Vector: []float32{1, 2, 3, 4}, K: 1})
		return classed(err, "Query with a 4-dimensional vector in a 3-dimensional collection", true, sdk.InvalidRequest)
	})
	r.check("vectorstore/nan-vector", func() error {
		c, cancel := r.call()
		defer cancel()
		_, err := v.Upsert(c, &pb.UpsertRequest{Collection: name, Records: []*pb.Record{{Id: "nan", Vector: []float32{1, float32(math.NaN()), 0}}}})
		return classed(err, "Upsert of a vector holding NaN", true, sdk.InvalidRequest)
	})
	r.check("vectorstore/bad-k", func() error {
		c, cancel := r.call()
		defer cancel()
		_, err := v.Query(c, &pb.QueryRequest{Collection: name, Vector: vsQuery, K: 0})
		return classed(err, "Query with k 0", true, sdk.InvalidRequest)
	})
	r.check("vectorstore/unknown-collection", func() error {
		c, cancel := r.call()
		defer cancel()
		missing := base + "_missing"
		_, err := v.Query(c, &pb.QueryRequest{Collection: missing, Vector: vsQuery, K: 1})
		if err := classed(err, "Query of a collection that does not exist", false, sdk.NotFound); err != nil {
			return err
		}
		_, err = v.Upsert(c, &pb.UpsertRequest{Collection: missing, Records: []*pb.Record{{Id: "x", Vector: vsQuery}}})
		return classed(err, "Upsert into a collection that does not exist", false, sdk.NotFound)
	})
	r.check("vectorstore/delete-ids", func() error {
		c, cancel := r.call()
		defer cancel()
		resp, err := v.Delete(c, &pb.DeleteRequest{Collection: name, Ids: []string{"r5"}})
		if err != nil {
			return fmt.Errorf("the Delete call by id failed: %v", err)
		}
		if resp.GetDeleted() != 1 {
			return fmt.Errorf("the Delete call of one existing id says %d were deleted", resp.GetDeleted())
		}
		return r.stats(v, name, 4)
	})
	r.check("vectorstore/delete-filter", func() error {
		c, cancel := r.call()
		defer cancel()
		resp, err := v.Delete(c, &pb.DeleteRequest{Collection: name, Filter: cond("group", pb.Condition_EQ, "b")})
		if err != nil {
			return fmt.Errorf("the Delete call by filter failed: %v", err)
		}
		if resp.GetDeleted() != 2 {
			return fmt.Errorf("the Delete call of group = b (2 records) says %d were deleted", resp.GetDeleted())
		}
		got, err := r.query(v, name, 10, nil)
		if err != nil {
			return err
		}
		if !slices.Equal(ids(got), []string{"r1", "r3"}) {
			return fmt.Errorf("after deleting r5 and group b, the collection holds %v, expected [r1 r3]", ids(got))
		}
		return nil
	})
	r.check("vectorstore/drop", func() error {
		for _, dist := range distances {
			n, ok := cols[dist]
			if !ok {
				continue
			}
			c, cancel := r.call()
			_, err := v.DropCollection(c, &pb.DropCollectionRequest{Name: n})
			cancel()
			if err != nil {
				return fmt.Errorf("DropCollection(%s) failed: %v", n, err)
			}
			delete(cols, dist)
		}
		c, cancel := r.call()
		defer cancel()
		_, err := v.Stats(c, &pb.StatsRequest{Collection: name})
		return classed(err, "Stats of a dropped collection", false, sdk.NotFound)
	})
}

// query runs a Query and checks scores never rise down the list.
func (r *runner) query(v sdk.VectorStoreClient, name string, k int32, f *pb.Filter) ([]*pb.Match, error) {
	c, cancel := r.call()
	defer cancel()
	resp, err := v.Query(c, &pb.QueryRequest{Collection: name, Vector: vsQuery, K: k, Filter: f})
	if err != nil {
		return nil, fmt.Errorf("the Query call failed: %v", err)
	}
	ms := resp.GetMatches()
	if len(ms) > int(k) {
		return nil, fmt.Errorf("the Query call with k %d returned %d matches", k, len(ms))
	}
	for i, m := range ms {
		if !finite(m.GetScore()) {
			return nil, fmt.Errorf("matches[%d] has score %v", i, m.GetScore())
		}
		if i > 0 && m.GetScore() > ms[i-1].GetScore() {
			return nil, fmt.Errorf("matches are not ordered best first: matches[%d] scores %v, matches[%d] %v (a higher score is closer)", i-1, ms[i-1].GetScore(), i, m.GetScore())
		}
	}
	return ms, nil
}

func (r *runner) stats(v sdk.VectorStoreClient, name string, want int64) error {
	c, cancel := r.call()
	defer cancel()
	s, err := v.Stats(c, &pb.StatsRequest{Collection: name})
	if err != nil {
		return fmt.Errorf("the Stats call failed: %v", err)
	}
	var problems []string
	if s.GetCount() != want {
		problems = append(problems, fmt.Sprintf("count is %d, expected %d", s.GetCount(), want))
	}
	if s.GetDimension() != 3 {
		problems = append(problems, fmt.Sprintf("dimension is %d, expected 3", s.GetDimension()))
	}
	if s.GetDistance() != pb.Distance_COSINE {
		problems = append(problems, fmt.Sprintf("distance is %s, expected COSINE", s.GetDistance()))
	}
	if len(problems) > 0 {
		return errors.New("Stats: " + strings.Join(problems, "; "))
	}
	return nil
}
