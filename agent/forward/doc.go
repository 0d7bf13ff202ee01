// Package forward ships the samples of the agent's store to one or more
// Prometheus remote_write receivers (Prometheus with
// --web.enable-remote-write-receiver, Mimir, Thanos receive, VictoriaMetrics,
// Grafana Cloud ...), at least once, across agent restarts and upstream
// outages.
//
// # Protocol
//
// Remote write 1.0: a WriteRequest protobuf (time series of labels and
// samples; timestamps in milliseconds), compressed with snappy's block
// format, POSTed with Content-Encoding: snappy, Content-Type:
// application/x-protobuf, X-Prometheus-Remote-Write-Version: 0.1.0 and
// User-Agent: vigil/<version>. Each series carries its metric name as
// __name__ and its labels sorted by name (Prometheus requires sorted
// labels; __name__ comes first unless a label name starts with an
// upper-case letter, which sorts before '_'). Labels with empty values are
// left out, as Prometheus treats them as absent. Samples whose metric or
// label names Prometheus would refuse are not sent (one would make the
// receiver reject its whole batch); they are counted as dropped with
// reason "invalid".
//
// Dependencies: the four messages are encoded by hand with
// google.golang.org/protobuf/encoding/protowire (remotewrite.go), which the
// module already needs, instead of importing github.com/prometheus/prometheus
// (hundreds of packages) or generating code for a 4-message proto.
// Compression is github.com/klauspost/compress/snappy, already in the module
// graph through client_golang's promhttp; github.com/golang/snappy would be
// one more module for the same format.
//
// # Delivery
//
// Each upstream has its own goroutine and its own cursor in the store,
// saved as "forward/<name>". It reads a batch after the cursor (at most
// batch_max_samples samples and batch_max_bytes of uncompressed protobuf),
// sends it, and saves the cursor past the batch only after a 2xx answer, so
// after a crash, a restart or an outage of any length the batches since the
// last saved cursor are sent again: at least once, never skipped. When it
// has caught up it waits for store.Notify (with a 5 s poll as a safety net).
//
//   - 5xx, 429, network errors and timeouts are retried with exponential
//     backoff and full jitter between min_backoff and max_backoff. A
//     Retry-After header (seconds or an HTTP date) replaces the backoff
//     and is honoured even above max_backoff, up to 5m (or max_backoff if
//     that is larger). The same batch is retried until it is accepted or
//     rejected; the cursor stays where it is meanwhile.
//   - Any other 4xx drops the batch: it is counted in
//     vigil_forward_dropped_samples_total{reason="rejected"}, the cursor
//     moves past it, and the first rejection of an episode is logged (with
//     the receiver's message) until a batch is accepted again. Prometheus
//     answers 400 for samples it cannot take: older than its head block
//     ("out of bounds", roughly older than 1-2 h on a fresh receiver),
//     out of order for a series, or a different value for a timestamp it
//     already has. A whole batch is refused then, so a batch sent again
//     that Prometheus had already taken (the agent died between the 2xx and
//     the cursor save) is answered 400 "out of order" and dropped, which is
//     right: it was delivered. For that to be safe the batch sent again must
//     be exactly the old one, not the old one plus samples appended since,
//     which Prometheus would refuse with it. Full batches are reproduced by
//     any read; before sending a short one (the newest samples) the
//     forwarder saves where it ends as the cursor "forward/<name>.inflight"
//     (one more fsync per short batch), and after a restart it sends exactly
//     that batch first.
//     401 and 403 are rejections too, as in Prometheus' own remote write,
//     so a wrong credential drops data: watch vigil_forward_failures_total
//     {reason="http_4xx"}.
//   - Prometheus checks "out of bounds" against one time for all series, so
//     in a batch refused as too old the refused samples are its oldest, and
//     the batch that straddles that bound at the end of a long outage holds
//     newer samples it would take. On 400 "out of bounds" the forwarder sends
//     the batch again from its second-oldest sample time on, then from the
//     third ..., oldest first, until one is accepted; only the part before it
//     counts as rejected. It cannot bisect: Prometheus stores an accepted
//     request, after which the older samples of its series are refused as out
//     of order, so only refused requests (rolled back, nothing stored) can
//     probe. To keep a long run of batches that are entirely too old at one
//     request each, only a batch whose newest sample is less than 1h1m old is
//     searched (Prometheus takes samples up to 1h, half its 2h head block,
//     behind the newest one it has, which is about now when other nodes write
//     to it; the minute is for clocks that disagree), with at most 16 more
//     requests per batch (spread evenly over its sample times when it has
//     more than 17). The refused probes count in vigil_forward_failures_total
//     {reason="http_4xx"}. What is still lost: a straddling batch whose
//     newest sample is older than 1h1m (a receiver whose newest sample lags
//     the clock, e.g. one only this agent writes to, has an older bound),
//     and, with more than 17 sample times in a batch, up to one probe step's
//     samples. Other 400s ("out of order", a credential) drop the batch
//     without a search, so a batch sent again after a crash costs one request
//     as before.
//   - Samples that the store evicts (retention, max_bytes) before the
//     cursor reached them are lost to that upstream; the store counts them
//     per cursor (the forwarder saves its cursor when it starts, so an
//     upstream down since it was configured counts them too; a batch
//     already read and being retried is sent from memory and is not
//     counted as evicted) and the forwarder reports them as
//     vigil_forward_dropped_samples_total{reason="evicted"} (the same
//     number as vigil_store_evicted_unforwarded_samples_total
//     {cursor="forward/<name>"}; the store also lists the
//     "forward/<name>.inflight" cursor there, which counts nearly the same
//     samples and is not a second loss). An outage is survived without loss as long
//     as the backlog fits store.retention and store.max_bytes.
//
// Secrets (bearer_token_file, basic_auth.password_file) come only from
// files, read at start (a missing file fails New) and again before every
// request, so rotation needs no restart; a failed re-read keeps the last
// good value and is logged once. TLS files are read by New.
//
// # Metrics
//
// vigil_forward_samples_sent_total{upstream}, vigil_forward_lag_seconds
// {upstream} (age of the oldest sample not yet accepted, 0 when caught
// up), vigil_forward_retries_total{upstream,reason},
// vigil_forward_failures_total{upstream,reason},
// vigil_forward_dropped_samples_total{upstream,reason},
// vigil_forward_batch_duration_seconds{upstream} and
// vigil_forward_up{upstream} (1 when the last request was accepted).
// Status returns the same numbers per upstream for /v1/status and health
// checks.
package forward
