package watch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sshkick/sshkick/internal/policy"
)

// Metrics are the daemon's Prometheus metrics, in a private registry. A
// nil *Metrics records nothing.
type Metrics struct {
	Registry   *prometheus.Registry
	sessionsG  *prometheus.GaugeVec
	actions    *prometheus.CounterVec
	failures   prometheus.Counter
	evalDur    prometheus.Histogram
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

// NewMetrics builds the metrics.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(),
		sessionsG:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sshkick_watch_sessions", Help: "Sessions seen at the last evaluation, by kind."}, []string{"kind"}),
		actions:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sshkick_watch_actions_total", Help: "Decisions carried out: warn, kick, cancel, exempt."}, []string{"action"}),
		failures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sshkick_watch_failures_total", Help: "Warnings not delivered, kicks that did not end the session, discovery, audit and state errors."}),
		evalDur:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sshkick_watch_evaluation_seconds", Help: "Time of one evaluation: discovery, decision and actions.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		reloadOK:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sshkick_watch_last_reload_success", Help: "1 if the last policy load succeeded."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sshkick_watch_last_reload_timestamp_seconds", Help: "When the policy was last loaded (or a load failed)."}),
	}
	m.Registry.MustRegister(m.sessionsG, m.actions, m.failures, m.evalDur, m.reloadOK, m.reloadTime)
	for _, a := range []string{"warn", "kick", "cancel", "exempt"} {
		m.actions.WithLabelValues(a)
	}
	return m
}

func (m *Metrics) sessions(in []policy.Input) {
	if m == nil {
		return
	}
	m.sessionsG.Reset()
	for _, x := range in {
		m.sessionsG.WithLabelValues(string(x.Session.Kind)).Inc()
	}
}

func (m *Metrics) action(k policy.ActionKind, failed bool) {
	if m == nil {
		return
	}
	m.actions.WithLabelValues(string(k)).Inc()
	if failed {
		m.failures.Inc()
	}
}

func (m *Metrics) failure() {
	if m != nil {
		m.failures.Inc()
	}
}

func (m *Metrics) evaluated(d time.Duration) {
	if m != nil {
		m.evalDur.Observe(d.Seconds())
	}
}

func (m *Metrics) reloaded(ok bool, at time.Time) {
	if m == nil {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	m.reloadOK.Set(v)
	m.reloadTime.Set(float64(at.UnixNano()) / 1e9)
}

// Serve serves /metrics on addr until ctx is done.
func (m *Metrics) Serve(ctx context.Context, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return ln.Addr(), nil
}
