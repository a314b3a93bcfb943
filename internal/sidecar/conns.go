package sidecar

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/connlimit"
)

// connMetrics count what the listeners' connection caps do.
type connMetrics struct {
	refused *prometheus.CounterVec
	reg     prometheus.Registerer
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	m := &connMetrics{reg: reg, refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerohop_connections_refused_total",
		Help: "Connections closed at accept because the listener (reason listener_limit) or the client's address (client_limit) was at its cap.",
	}, []string{"listener", "reason"})}
	reg.MustRegister(m.refused)
	return m
}

// limit applies listener l's connection caps to ln: its open connections
// are a gauge, its refusals counted and logged (at most once a minute: a
// flood must not flood the log too).
func (m *connMetrics) limit(ln net.Listener, l config.Listener, log *slog.Logger) net.Listener {
	byReason := map[string]prometheus.Counter{}
	for _, r := range []string{connlimit.ReasonListener, connlimit.ReasonClient} {
		byReason[r] = m.refused.WithLabelValues(l.Name, r) // the series exist from the start, at 0
	}
	var lastLog atomic.Int64
	cl := connlimit.NewListener(ln, connlimit.Options{
		Max:       l.MaxConnections,
		PerClient: l.MaxConnectionsPerClient,
		Refused: func(reason string) {
			byReason[reason].Inc()
			now := time.Now().UnixNano()
			if last := lastLog.Load(); now-last >= int64(time.Minute) && lastLog.CompareAndSwap(last, now) {
				log.Warn("refusing connections: listener at its connection cap", "listener", l.Name, "reason", reason,
					"max_connections", l.MaxConnections, "max_connections_per_client", l.MaxConnectionsPerClient)
			}
		},
	})
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "zerohop_connections_open",
		Help:        "Connections the listener holds open.",
		ConstLabels: prometheus.Labels{"listener": l.Name},
	}, func() float64 { return float64(cl.Open()) }))
	return cl
}
