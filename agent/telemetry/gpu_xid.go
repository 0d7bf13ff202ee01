package telemetry

import (
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// XIDCount is how often one XID error was seen on a GPU since the agent
// started, and when last.
type XIDCount struct {
	XID      uint64    `json:"xid"`
	Count    uint64    `json:"count"`
	LastSeen time.Time `json:"last_seen"`
}

var (
	mXIDTotal = newDef("vigil_gpu_xid_errors_total",
		"XID errors reported by the driver since the agent started, by XID code. Counted from NVML events, independently of sampling.",
		counterT, "gpu", "uuid", "xid")
	mXIDLast = newDef("vigil_gpu_xid_last_seen_timestamp_seconds",
		"Unix time the XID code was last reported for the GPU.",
		gaugeT, "gpu", "uuid", "xid")
)

// xidWaitMillis bounds how long stop waits for the watcher: NVML's wait
// cannot be interrupted, so the loop wakes up this often to check.
const xidWaitMillis = 500

// maxXIDSeries bounds the counter map (GPUs x distinct XID codes).
const maxXIDSeries = 1024

type xidKey struct {
	uuid string
	xid  uint64
}

type xidEntry struct {
	count uint64
	last  time.Time
}

// xidWatcher owns an NVML event set and the XID counters. Its goroutine is
// the only writer; scrapes and snapshots read under mu.
type xidWatcher struct {
	set   nvml.EventSet
	log   *slog.Logger
	index map[string]int // uuid -> GPU index; read-only after start
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	entries map[xidKey]*xidEntry
	lastXID map[string]uint64
	dropped uint64
}

// startXIDWatcher registers every device for XID events and starts the
// goroutine that counts them. Devices that cannot deliver XID events get
// xid_events marked unsupported. It returns nil when no device can.
func startXIDWatcher(lib nvmlLib, devs []*gpuDevState, log *slog.Logger) *xidWatcher {
	if len(devs) == 0 {
		return nil
	}
	set, ret := lib.EventSetCreate()
	if ret != nvml.SUCCESS {
		log.Warn("XID events unavailable: cannot create NVML event set", "err", ret.Error())
		for _, ds := range devs {
			ds.unsupported[fXID] = true
		}
		return nil
	}
	w := &xidWatcher{
		set: set, log: log, index: map[string]int{},
		quit: make(chan struct{}), done: make(chan struct{}),
		entries: map[xidKey]*xidEntry{}, lastXID: map[string]uint64{},
	}
	registered := 0
	for _, ds := range devs {
		if ds.handle == nil {
			continue
		}
		w.index[ds.uuid] = ds.index
		types, ret := ds.handle.GetSupportedEventTypes()
		if ret == nvml.SUCCESS && types&nvml.EventTypeXidCriticalError == 0 {
			ret = nvml.ERROR_NOT_SUPPORTED
		}
		if ret == nvml.SUCCESS {
			ret = ds.handle.RegisterEvents(nvml.EventTypeXidCriticalError, set)
		}
		switch ret {
		case nvml.SUCCESS:
			registered++
		case nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND:
			ds.unsupported[fXID] = true
		default:
			log.Warn("cannot register for XID events", "gpu", ds.index, "uuid", ds.uuid, "err", ret.Error())
		}
	}
	if registered == 0 {
		set.Free()
		return nil
	}
	go w.loop()
	return w
}

func (w *xidWatcher) loop() {
	defer close(w.done)
	defer w.set.Free()
	for {
		select {
		case <-w.quit:
			return
		default:
		}
		data, ret := w.set.Wait(xidWaitMillis)
		switch ret {
		case nvml.SUCCESS:
			if data.EventType&nvml.EventTypeXidCriticalError != 0 {
				w.record(data)
			}
		case nvml.ERROR_TIMEOUT:
		default:
			// A broken event set would otherwise spin; wait, then try again.
			w.log.Debug("NVML event wait failed", "err", ret.Error())
			select {
			case <-w.quit:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func (w *xidWatcher) record(data nvml.EventData) {
	uuid := "unknown"
	if data.Device != nil {
		if u, ret := data.Device.GetUUID(); ret == nvml.SUCCESS {
			uuid = u
		}
	}
	k := xidKey{uuid: uuid, xid: data.EventData}
	now := time.Now()
	w.mu.Lock()
	e := w.entries[k]
	if e == nil && len(w.entries) >= maxXIDSeries {
		w.dropped++
		w.mu.Unlock()
		return
	}
	if e == nil {
		e = &xidEntry{}
		w.entries[k] = e
	}
	e.count++
	e.last = now
	w.lastXID[uuid] = data.EventData
	w.mu.Unlock()
	w.log.Warn("GPU XID error", "gpu", w.gpuLabel(uuid), "uuid", uuid, "xid", data.EventData)
}

func (w *xidWatcher) gpuLabel(uuid string) string {
	if i, ok := w.index[uuid]; ok {
		return strconv.Itoa(i)
	}
	return ""
}

// stop ends the goroutine and frees the event set; it returns within about
// xidWaitMillis.
func (w *xidWatcher) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

func (w *xidWatcher) points() []point {
	w.mu.Lock()
	defer w.mu.Unlock()
	pts := make([]point, 0, 2*len(w.entries))
	for k, e := range w.entries {
		gpu, xid := w.gpuLabel(k.uuid), strconv.FormatUint(k.xid, 10)
		pts = append(pts,
			pt(mXIDTotal, float64(e.count), gpu, k.uuid, xid),
			pt(mXIDLast, float64(e.last.UnixNano())/1e9, gpu, k.uuid, xid))
	}
	return pts
}

// counts returns the XID counts per GPU UUID, sorted by XID.
func (w *xidWatcher) counts() map[string][]XIDCount {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]XIDCount{}
	for k, e := range w.entries {
		out[k.uuid] = append(out[k.uuid], XIDCount{XID: k.xid, Count: e.count, LastSeen: e.last})
	}
	for _, l := range out {
		sort.Slice(l, func(i, j int) bool { return l[i].XID < l[j].XID })
	}
	return out
}

// last returns the last XID per GPU UUID (DCGM_FI_DEV_XID_ERRORS).
func (w *xidWatcher) last() map[string]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]uint64, len(w.lastXID))
	for k, v := range w.lastXID {
		out[k] = v
	}
	return out
}
