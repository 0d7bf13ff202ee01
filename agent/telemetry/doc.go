// Package telemetry samples the hardware of an inference host, GPUs through
// NVML and the host through gopsutil, and keeps the latest snapshot of each
// for Prometheus (/metrics), the agent API and the durable store.
//
// The package follows node_exporter's shape: one file per collector, a small
// internal collector interface, and a [Telemetry] value that ticks every
// collector on its own interval (defaults: GPU 1s, host 5s) and implements
// [prometheus.Collector] from the latest snapshots. Register it on your own
// registry with registry.MustRegister(t); nothing here touches the global
// Prometheus registry.
//
// What it guarantees:
//
//   - A failing collector never stops the others, never panics the agent (a
//     panic inside a collector is recovered and reported as an error), and says
//     that it failed: vigil_collector_up{collector} is 0 and Status reports the
//     reason. A host without an NVIDIA driver or libnvidia-ml.so is such a
//     case: the GPU collector is down with the reason "no NVML driver found:
//     ...", and everything else keeps running.
//   - Stale values are never served as fresh. A snapshot is stale when its last
//     successful collection is older than 3 of its collector's intervals. A
//     stale collector's values are dropped from /metrics (only its self-metrics
//     remain, with vigil_collector_stale 1); the accessors still return the
//     old snapshot, but with Stale set to true so the API can label it. Until a
//     snapshot turns stale it is served even if the latest tick failed (the
//     failure shows in vigil_collector_up and Status).
//   - An NVML function that a device does not support (ERROR_NOT_SUPPORTED) is
//     asked once per device and field, then listed as unsupported in the
//     snapshot and in vigil_gpu_field_unsupported, and never asked again.
//   - A GPU that falls off the bus (ERROR_GPU_IS_LOST) is reported as lost
//     (vigil_gpu_up 0, Lost in the snapshot); the other GPUs keep being
//     collected.
//   - XID errors are counted from NVML events by their own goroutine, so they
//     keep counting when a sampling tick fails.
//   - A simulated GPU backend (gpu.simulate: N) is marked as simulated
//     everywhere: simulated="true" on vigil_gpu_info, Simulated in GPUSnapshot
//     and in CollectorStatus.
//
// Each successful tick's values can be handed to the durable store as
// [Sample] values through [WithSampleSink].
package telemetry
