// Package alert turns model stats and drift findings into alerts and
// delivers them to Alertmanager (v2 API) and plain webhooks.
//
// Four rules are evaluated every alerts.interval for every monitored
// (model, version): latency_p95 and error_rate read agent/observe's sliding
// windows, drift reads the drift engine's per-feature findings, and
// accuracy_drop compares the window's accuracy with the reference window's.
// Thresholds, `for`, min_samples, window and hysteresis come from the
// configuration, per model over global over built-in defaults.
//
// Each alert has one identity, its rule plus labels (model, version; for
// drift also feature and method), and moves inactive → pending → firing →
// resolved. Severity is not part of the identity: a firing alert escalates
// to critical once the critical condition has held for `for`, and eases
// back to warning at once when the value falls below critical × (1 -
// hysteresis). It resolves when the value falls to the resolve threshold
// (warning × (1 - hysteresis) unless set), or when its subject has no
// samples in the window at all. Hysteresis holds only firing alerts: a
// pending one must stay above warning for the whole of `for`. With fewer
// than min_samples samples the value does not count: a pending alert goes
// back to inactive, a firing one holds.
//
// Guarantees: evaluation never blocks on delivery (each receiver has a
// bounded queue and its own goroutine; when full the oldest notification
// is dropped and counted), secrets (bearer tokens, URL paths) are never
// logged, and a firing alert is re-sent to Alertmanager every
// resend_interval with endsAt in the future, as Prometheus does, so that a
// restarted Alertmanager learns it again. docs/alerts.md is the user
// documentation.
package alert
