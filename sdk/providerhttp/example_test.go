package providerhttp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/providerhttp"
)

// A provider's method makes its upstream request a Call of its Endpoint:
// a 2xx answer is decoded, any other one comes back as an *sdk.Error with
// the class the gateway acts on. This upstream is busy, then answers.
func Example() {
	var answered atomic.Bool // the first request is refused
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answered.Swap(true) {
			w.Header().Set("Retry-After", "2")
			http.Error(w, `{"error":{"message":"slow down"}}`, http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, `{"data":[{"embedding":[0.5,0.25]}]}`)
	}))
	defer upstream.Close()

	header := http.Header{}
	header.Set("Authorization", "Bearer sk-0123456789")
	// nil Classify: the status's class (providerhttp.DefaultClassify).
	ep := providerhttp.NewEndpoint(upstream.URL+"/v1", 4, 30*time.Second, header, nil)

	embed := func(ctx context.Context, input string) ([]float32, error) {
		var out struct {
			Data []struct {
				Embedding []float32 `json:"embedding"`
			} `json:"data"`
		}
		body := map[string]any{"model": "text-embedding-3-small", "input": []string{input}}
		err := ep.Call(http.MethodPost, "/embeddings", body, true).Do(ctx, func(resp *http.Response) error {
			return providerhttp.DecodeJSON(resp.Body, 1<<20, &out)
		})
		if err != nil {
			return nil, err
		}
		if len(out.Data) != 1 {
			return nil, sdk.Errorf(sdk.Unavailable, "the upstream answered %d embeddings for 1 input", len(out.Data))
		}
		return out.Data[0].Embedding, nil
	}

	_, err := embed(context.Background(), "hello")
	fmt.Println(sdk.ClassOf(err), err.(*sdk.Error).RetryAfter)
	v, err := embed(context.Background(), "hello")
	fmt.Println(v, err)
	// Output:
	// rate_limited 2s
	// [0.5 0.25] <nil>
}
