package sdk

import (
	"context"
	"errors"
	"io"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// DetectRequest is one drift test: a reference sample and a current sample
// of one feature. Numeric features fill the *Numeric fields, categorical
// ones the *Categorical fields.
type DetectRequest struct {
	Method   string
	DataType pb.DataType
	// Threshold overrides the method's default when not nil.
	Threshold *float64
	Params    map[string]any
	Feature   string

	ReferenceNumeric     []float64
	CurrentNumeric       []float64
	ReferenceCategorical []string
	CurrentCategorical   []string
}

// Detector is a drift detector plugin.
type Detector interface {
	// Describe lists the methods offered.
	Describe(ctx context.Context) (*pb.DescribeResponse, error)
	// Detect runs one test. Reject bad input (empty samples, NaN, an unknown
	// method, a data type the method does not take) with an InvalidRequest
	// *Error naming the field.
	Detect(ctx context.Context, req *DetectRequest) (*pb.DetectResponse, error)
}

// DetectorClient is the host's handle on a detector plugin.
type DetectorClient interface {
	Base
	Detector
}

// ServeDetector serves d as a detector plugin. Call it from main.
func ServeDetector(info Info, d Detector) {
	serve(KindDetector, &DetectorPlugin{Info: info, Impl: d})
}

// DetectorPlugin is the go-plugin glue for detectors. Plugin authors use
// ServeDetector instead.
type DetectorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Info Info
	Impl Detector
}

// GRPCServer registers the detector's services.
func (p *DetectorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &infoServer{kind: KindDetector, info: p.Info, impl: p.Impl})
	pb.RegisterDetectorServer(s, &detectorServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a DetectorClient.
func (p *DetectorPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &detectorClient{baseClient: baseClient{pb.NewPluginClient(c)}, c: pb.NewDetectorClient(c)}, nil
}

type detectorServer struct {
	pb.UnimplementedDetectorServer
	impl Detector
}

func (s *detectorServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return s.impl.Describe(ctx)
}

func (s *detectorServer) Detect(stream grpc.ClientStreamingServer[pb.DetectChunk, pb.DetectResponse]) error {
	var req *DetectRequest
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch part := chunk.GetPart().(type) {
		case *pb.DetectChunk_Header:
			if req != nil {
				return FieldErrorf("header", "header sent twice")
			}
			h := part.Header
			req = &DetectRequest{Method: h.GetMethod(), DataType: h.GetDataType(), Feature: h.GetFeature(), Params: h.GetParams().AsMap()}
			if h.Threshold != nil {
				t := h.GetThreshold()
				req.Threshold = &t
			}
		case *pb.DetectChunk_Sample:
			if req == nil {
				return FieldErrorf("header", "the first message must be the header")
			}
			sc := part.Sample
			// Each received message is new, so the first chunk's slice is
			// taken as is rather than copied (a sample of up to one chunk
			// is never copied).
			switch sc.GetWhich() {
			case pb.SampleChunk_REFERENCE:
				req.ReferenceNumeric = appendOrTake(req.ReferenceNumeric, sc.GetNumeric())
				req.ReferenceCategorical = appendOrTake(req.ReferenceCategorical, sc.GetCategorical())
			case pb.SampleChunk_CURRENT:
				req.CurrentNumeric = appendOrTake(req.CurrentNumeric, sc.GetNumeric())
				req.CurrentCategorical = appendOrTake(req.CurrentCategorical, sc.GetCategorical())
			default:
				return FieldErrorf("sample.which", "say whether a chunk is REFERENCE or CURRENT")
			}
		default:
			return FieldErrorf("part", "empty message")
		}
	}
	if req == nil {
		return FieldErrorf("header", "no header sent")
	}
	resp, err := s.impl.Detect(stream.Context(), req)
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

func appendOrTake[T any](dst, src []T) []T {
	if dst == nil {
		return src
	}
	return append(dst, src...)
}

// ChunkValues is how many values one Detect message carries.
const ChunkValues = 1 << 16

type detectorClient struct {
	baseClient
	c pb.DetectorClient
}

func (d *detectorClient) Describe(ctx context.Context) (*pb.DescribeResponse, error) {
	return d.c.Describe(ctx, &pb.DescribeRequest{})
}

func (d *detectorClient) Detect(ctx context.Context, req *DetectRequest) (*pb.DetectResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := d.c.Detect(ctx)
	if err != nil {
		return nil, fromStatus(err, nil)
	}
	fail := func(err error) (*pb.DetectResponse, error) {
		// A send fails when the server has already answered with an
		// error; the real error comes from CloseAndRecv.
		if _, rerr := stream.CloseAndRecv(); rerr != nil {
			err = rerr
		}
		return nil, fromStatus(err, stream.Trailer())
	}
	params, err := structFromMap(req.Params)
	if err != nil {
		return nil, FieldErrorf("params", "%v", err)
	}
	h := &pb.DetectHeader{Method: req.Method, DataType: req.DataType, Params: params, Feature: req.Feature, Threshold: req.Threshold}
	if err := stream.Send(&pb.DetectChunk{Part: &pb.DetectChunk_Header{Header: h}}); err != nil {
		return fail(err)
	}
	send := func(which pb.SampleChunk_Which, nums []float64, cats []string) error {
		for len(nums) > 0 {
			n := min(len(nums), ChunkValues)
			if err := stream.Send(&pb.DetectChunk{Part: &pb.DetectChunk_Sample{Sample: &pb.SampleChunk{Which: which, Numeric: nums[:n]}}}); err != nil {
				return err
			}
			nums = nums[n:]
		}
		for len(cats) > 0 {
			n := min(len(cats), ChunkValues/8)
			if err := stream.Send(&pb.DetectChunk{Part: &pb.DetectChunk_Sample{Sample: &pb.SampleChunk{Which: which, Categorical: cats[:n]}}}); err != nil {
				return err
			}
			cats = cats[n:]
		}
		return nil
	}
	if err := send(pb.SampleChunk_REFERENCE, req.ReferenceNumeric, req.ReferenceCategorical); err != nil {
		return fail(err)
	}
	if err := send(pb.SampleChunk_CURRENT, req.CurrentNumeric, req.CurrentCategorical); err != nil {
		return fail(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fromStatus(err, stream.Trailer())
	}
	return resp, nil
}

// structFromMap converts parameters to a protobuf Struct; nil stays nil.
func structFromMap(m map[string]any) (*structpb.Struct, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return structpb.NewStruct(m)
}
