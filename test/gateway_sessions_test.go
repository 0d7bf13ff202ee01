package test

// Provider sessions through the real agent: the gateway's calls go to the
// openai plugin over sessions. A client that closes its connection in the
// middle of a stream stops the plugin's upstream stream, a burst of
// concurrent requests leaves no goroutines behind in the agent beyond the
// idle sessions it keeps, `vigil plugins restart` with idle sessions open
// stops the plugin cleanly, and after either that or a kill -9 of the
// plugin the next requests work on the new process; the agent's own
// shutdown with idle sessions open stops every plugin cleanly.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestGatewaySessions(t *testing.T) {
	gs := newGatewaySetup(t, "gpt-test")
	// The upstream: the stub, except that a stream for gpt-endless sends
	// a chunk every 20 ms until its request's context ends.
	var endlessOpen, endlessGone atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct{ Model string }
		_ = json.Unmarshal(body, &req)
		if r.URL.Path != "/v1/chat/completions" || req.Model != "gpt-endless" {
			r.Body = io.NopCloser(bytes.NewReader(body))
			gs.stub.ServeHTTP(w, r)
			return
		}
		endlessOpen.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-endless","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}`+"\n\n")
			fl.Flush()
			select {
			case <-r.Context().Done():
				endlessGone.Add(1)
				return
			case <-tick.C:
			}
		}
	}))
	t.Cleanup(up.Close)
	e := gs.start(t, gatewayConfig{
		tokens: []string{"llmapp", "app", "viewer"},
		gateway: `gateway:
  request_timeout: 30s
  providers:
    - name: up
      plugin: openai
      base_url: ` + up.URL + `/v1
      api_key_file: ` + gs.keyFile + `
  models:
    - name: chat
      targets: [{provider: up, model: gpt-test}]
    - name: endless
      targets: [{provider: up, model: gpt-endless}]
`})
	a, base := e.a, e.base

	t.Run("client closes mid-stream", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/openai/v1/chat/completions", strings.NewReader(chatJSON("endless", "go on", `,"stream":true`)))
		req.Header.Set("Authorization", "Bearer "+gwLLMToken)
		req.Header.Set("Content-Type", "application/json")
		// A client of its own, whose connection closes with the body.
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("stream: %d %s", resp.StatusCode, b)
		}
		sc := bufio.NewScanner(resp.Body)
		for n := 0; n < 3 && sc.Scan(); {
			if strings.HasPrefix(sc.Text(), "data: ") {
				n++
			}
		}
		resp.Body.Close()
		deadline := time.Now().Add(10 * time.Second)
		for endlessGone.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if endlessOpen.Load() != 1 || endlessGone.Load() != 1 {
			t.Errorf("upstream streams opened %d, ended by cancellation %d; want the one stream stopped once the client went away", endlessOpen.Load(), endlessGone.Load())
		}
		if resp, b := e.post(t, "/chat/completions", gwLLMToken, chatJSON("chat", "hello", "")); resp.StatusCode != 200 {
			t.Errorf("the request after the abandoned stream: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("burst", func(t *testing.T) {
		goroutines := func() int {
			_, b := get(t, base+"/metrics", gwReadToken)
			m := regexp.MustCompile(`(?m)^go_goroutines (\d+)`).FindSubmatch(b)
			if m == nil {
				t.Fatalf("no go_goroutines in /metrics")
			}
			n, _ := strconv.Atoi(string(m[1]))
			return n
		}
		before := goroutines()
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := range n {
			wg.Go(func() {
				extra := ""
				if i%4 == 0 {
					extra = `,"stream":true`
				}
				req, _ := http.NewRequest("POST", base+"/openai/v1/chat/completions", strings.NewReader(chatJSON("chat", fmt.Sprint("hello ", i), extra)))
				req.Header.Set("Authorization", "Bearer "+gwLLMToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (extra != "" && !strings.Contains(string(b), "[DONE]")) {
					errs <- fmt.Sprintf("request %d: %d %s", i, resp.StatusCode, b)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		http.DefaultClient.CloseIdleConnections()
		// At most 64 idle sessions stay, one goroutine each in the
		// agent; the slack covers the HTTP server's and runtime's own.
		limit := before + 64 + 32
		deadline := time.Now().Add(15 * time.Second)
		got := goroutines()
		for got > limit && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			got = goroutines()
		}
		if got > limit {
			t.Errorf("agent goroutines %d after the burst (%d before), want at most %d", got, before, limit)
		}
		t.Logf("agent goroutines: %d before the burst, %d after", before, got)
	})
	// `vigil plugins restart` replaces the provider's plugin process,
	// idle sessions and all: the old one exits when asked (go-plugin did
	// not have to kill it), and requests go on to the new one.
	t.Run("plugins restart", func(t *testing.T) {
		started := strings.Count(a.stderr.String(), `"plugin started"`)
		cmd := exec.Command(vigilBin, "plugins", "restart", "up", "-http-addr", a.addr)
		cmd.Env = append(os.Environ(), "VIGIL_TOKEN="+gwWriteToken)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vigil plugins restart: %v\n%s", err, out)
		}
		waitFor(t, func() bool { return strings.Count(a.stderr.String(), `"plugin started"`) > started }, "the provider's plugin started again")
		for i := range 20 {
			if resp, b := e.post(t, "/chat/completions", gwLLMToken, chatJSON("chat", fmt.Sprint("after restart ", i), "")); resp.StatusCode != 200 {
				t.Errorf("a request after the restart: %d %s", resp.StatusCode, b)
			}
		}
		if strings.Contains(a.stderr.String(), "failed to exit gracefully") {
			t.Errorf("a plugin with idle sessions had to be killed:\n%s", a.stderr.String())
		}
	})
	// kill -9 of the provider's plugin with idle sessions pooled and
	// streams in flight: the streams end (no hang), the supervisor
	// restarts the plugin, and requests succeed again on the new process
	// (no pooled session of the dead one is reused).
	t.Run("kill -9", func(t *testing.T) {
		pidRE := regexp.MustCompile(`"msg":"plugin started","subsystem":"plugins","plugin":"up","pid":(\d+)`)
		lastPID := func() int {
			m := pidRE.FindAllStringSubmatch(a.stderr.String(), -1)
			if len(m) == 0 {
				t.Fatal("no plugin started line for up in the agent's log")
			}
			n, _ := strconv.Atoi(m[len(m)-1][1])
			return n
		}
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				if resp, b := e.post(t, "/chat/completions", gwLLMToken, chatJSON("chat", fmt.Sprint("warm ", i), "")); resp.StatusCode != 200 {
					t.Errorf("warm-up request: %d %s", resp.StatusCode, b)
				}
			})
		}
		wg.Wait()
		client := &http.Client{Timeout: 30 * time.Second}
		streams := make(chan error, 3)
		opened := make(chan struct{}, 3)
		for range 3 {
			go func() {
				req, _ := http.NewRequest("POST", base+"/openai/v1/chat/completions", strings.NewReader(chatJSON("endless", "go on", `,"stream":true`)))
				req.Header.Set("Authorization", "Bearer "+gwLLMToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					opened <- struct{}{}
					streams <- err
					return
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				if _, err := br.ReadString('\n'); err != nil {
					opened <- struct{}{}
					streams <- err
					return
				}
				opened <- struct{}{}
				// Read to the end: the agent must end the stream, with an
				// error event.
				rest, err := io.ReadAll(br)
				if err == nil && !strings.Contains(string(rest), `"error"`) {
					err = fmt.Errorf("the stream ended without an error event: ...%s", rest[max(0, len(rest)-300):])
				}
				streams <- err
			}()
		}
		for range 3 {
			<-opened
		}
		pid := lastPID()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := <-streams; err != nil {
				t.Errorf("a stream in flight at the kill: %v", err)
			}
		}
		waitFor(t, func() bool { return lastPID() != pid }, "the plugin restarted after kill -9")
		// Right after the restart a request may still meet the backoff;
		// within a few seconds they all succeed.
		waitFor(t, func() bool {
			resp, _ := e.post(t, "/chat/completions", gwLLMToken, chatJSON("chat", "are you back", ""))
			return resp.StatusCode == 200
		}, "a request succeeding after the restart")
		for i := range 20 {
			if resp, b := e.post(t, "/chat/completions", gwLLMToken, chatJSON("chat", fmt.Sprint("after kill ", i), "")); resp.StatusCode != 200 {
				t.Errorf("a request after kill -9 and restart: %d %s", resp.StatusCode, b)
			}
		}
	})
	// The agent's own shutdown, with idle sessions open: it stops its
	// plugins, each exiting when asked, and exits cleanly.
	t.Run("agent shutdown", func(t *testing.T) {
		if resp, b := e.post(t, "/chat/completions", gwLLMToken, chatJSON("chat", "one more", "")); resp.StatusCode != 200 {
			t.Fatalf("request: %d %s", resp.StatusCode, b)
		}
		var pids []int
		for _, m := range regexp.MustCompile(`"msg":"plugin started".*?"pid":(\d+)`).FindAllStringSubmatch(a.stderr.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			pids = append(pids, n)
		}
		if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := a.waitExit(t, 30*time.Second); code != 0 {
			t.Errorf("agent exit code %d", code)
		}
		if strings.Contains(a.stderr.String(), "failed to exit gracefully") {
			t.Errorf("a plugin with idle sessions had to be killed at shutdown:\n%s", a.stderr.String())
		}
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
					t.Errorf("plugin process %d still running after the agent stopped", pid)
				}
			}
		}
	})
}
