package gateway

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/sdk"
)

// held is a provider fleet whose calls wait until released.
type held struct {
	entered, release chan struct{}
	p                *scripted
}

func (h held) WithProvider(ctx context.Context, _, _ string, fn func(context.Context, sdk.ProviderClient) error) error {
	h.entered <- struct{}{}
	<-h.release
	return fn(ctx, h.p)
}

// TestMaxInFlight: past gateway.max_in_flight requests being served, a
// request is refused at once with 503 and Retry-After, and counted; once
// they finish, requests are served again.
func TestMaxInFlight(t *testing.T) {
	cfg := testCfg()
	cfg.MaxInFlight = 2
	fl := held{entered: make(chan struct{}), release: make(chan struct{}), p: newScripted()}
	reg := prometheus.NewRegistry()
	g, err := New(cfg, fl, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	do := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/chat", strings.NewReader(chatBody("single", "")))
		w := httptest.NewRecorder()
		g.HandleChat(w, r)
		return w
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = do().Code
		}()
	}
	<-fl.entered
	<-fl.entered // both are upstream now
	if got := testutil.ToFloat64(g.m.inFlight); got != 2 {
		t.Errorf("in flight %v, want 2", got)
	}
	w := do()
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("third request: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if e := errBody(t, w); e.Code != "gateway_overloaded" || !strings.Contains(e.Message, "gateway.max_in_flight") {
		t.Errorf("error: %+v", e)
	}
	if w := httptest.NewRecorder(); true {
		g.HandleEmbeddings(w, httptest.NewRequest("POST", "/embeddings", strings.NewReader(`{"model":"single","input":"x"}`)))
		if w.Code != 503 {
			t.Errorf("embeddings past the cap: %d", w.Code)
		}
	}
	if got := testutil.ToFloat64(g.m.shed); got != 2 {
		t.Errorf("shed %v, want 2", got)
	}
	close(fl.release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("held requests: %v", codes)
	}
	go func() { <-fl.entered }()
	if w := do(); w.Code != 200 {
		t.Fatalf("after the burst: %d %s", w.Code, w.Body)
	}
	if got := testutil.ToFloat64(g.m.inFlight); got != 0 {
		t.Errorf("in flight %v after all finished", got)
	}
}
