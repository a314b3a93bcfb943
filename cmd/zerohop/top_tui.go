package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// renderTop lays a snapshot out as text, for the terminal view and --once;
// maxRoutes bounds the route table.
func renderTop(s topSnapshot, admin string, maxRoutes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "zerohop top  %s  %s (rates over %.1fs)  q: quit\n\n", admin, s.Time.Format("15:04:05 MST"), s.IntervalSeconds)
	line := func(label string, fields ...string) {
		fmt.Fprintf(&b, "%-13s %s\n", label, strings.Join(fields, "   "))
	}
	r := s.Requests
	line("REQUESTS/s", "total "+fmtRate(r.Total), "app shm "+fmtRate(r.AppSharedMemory), "sidecar cache "+fmtRate(r.SidecarCache),
		"store "+fmtRate(r.Store), "upstream "+fmtRate(r.Upstream), "hit ratio "+pct(s.HitRatio))
	line("BYTES/s", "app served "+fmtBytes(s.AppServedBytesPerSec), "cache written "+fmtBytes(s.SidecarWrittenPerSec))
	c := s.Cache
	line("CACHE", c.State, fmt.Sprintf("entries %d", c.Entries), "file "+fmtBytes(float64(c.FileBytes)),
		"arena "+fmtBytes(float64(c.ArenaLiveBytes))+" ("+pct(c.Fill)+")", "inserts "+fmtRate(c.InsertsPerSec)+"/s",
		"evictions "+fmtRate(c.EvictionsPerSec)+"/s", "reclaimed "+fmtRate(c.ReclaimedPerSec)+"/s",
		fmt.Sprintf("heartbeat %.1fs ago", c.HeartbeatAgeSeconds))
	reasons := make([]string, 0, len(s.App.BypassesPerSec))
	for k := range s.App.BypassesPerSec {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	var bp []string
	for _, k := range reasons {
		bp = append(bp, k+" "+fmtRate(s.App.BypassesPerSec[k]))
	}
	line("APP", fmt.Sprintf("processes %d", s.App.Processes), "misses "+fmtRate(s.App.MissesPerSec)+"/s",
		"bypasses/s: "+strings.Join(bp, ", "), "writer stale "+fmtRate(s.App.WriterStalePerSec)+"/s",
		"corrupt "+fmtRate(s.App.CorruptPerSec)+"/s")
	line("INVALIDATION", "lag "+fmtBytes(s.InvalidationLagBytes), fmt.Sprintf("applied seq %d", s.InvalidationSeq))
	l := s.Limits
	line("LIMITS", fmt.Sprintf("connections open %.0f", l.ConnectionsOpen), "refused "+fmtRate(l.ConnectionsRefusedPerSec)+"/s",
		"egress refused "+fmtRate(l.EgressRefusedPerSec)+"/s", "filter answers "+fmtRate(l.FilterAnswersPerSec)+"/s")
	if st := s.Store; st != nil {
		line("STORE", fmt.Sprintf("entries %d", st.Entries), "disk "+fmtBytes(float64(st.DiskBytes)), "hits "+fmtRate(st.HitsPerSec)+"/s")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ROUTE\tREQ/s\tHIT\t5XX\tP50 ms\tP99 ms\t")
	for i, rt := range s.Routes {
		if i >= maxRoutes {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", rt.Route, fmtRate(rt.RequestsPerSec), pct(rt.HitRatio), pct(rt.ErrorRatio), rt.P50Ms, rt.P99Ms)
	}
	tw.Flush()
	if len(s.Clusters) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "CLUSTER\tERRORS/s\tREFUSED/s\t")
		for _, cl := range s.Clusters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", cl.Cluster, fmtRate(cl.ErrorsPerSec), fmtRate(cl.RefusalsPerSec))
		}
		tw.Flush()
	}
	return b.String()
}

// The terminal view: a bubbletea program that samples every interval and
// shows the last snapshot (or the last error, keeping the figures).
type topModel struct {
	ctx      context.Context
	src      *topSource
	interval time.Duration
	admin    string
	prev     *topSample
	snap     *topSnapshot
	err      error
	height   int
}

type topTick time.Time

type topReading struct {
	s   *topSample
	err error
}

func (m topModel) read() tea.Cmd {
	return func() tea.Msg {
		s, err := m.src.sample(m.ctx)
		return topReading{s, err}
	}
}

func (m topModel) Init() tea.Cmd { return m.read() }

func (m topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.height = msg.Height
	case topReading:
		m.err = msg.err
		if msg.err == nil {
			if m.prev != nil {
				s := topCompute(m.prev, msg.s)
				m.snap = &s
			}
			m.prev = msg.s
		}
		return m, tea.Tick(m.interval, func(t time.Time) tea.Msg { return topTick(t) })
	case topTick:
		return m, m.read()
	}
	return m, nil
}

func (m topModel) View() string {
	var b strings.Builder
	if m.snap == nil {
		fmt.Fprintf(&b, "zerohop top  %s  waiting for two readings...  q: quit\n", m.admin)
	} else {
		routes := 20
		if m.height > 16 {
			routes = m.height - 16
		}
		b.WriteString(renderTop(*m.snap, m.admin, routes))
	}
	if m.err != nil {
		fmt.Fprintf(&b, "\nerror: %v\n", m.err)
	}
	return b.String()
}

func runTopTUI(ctx context.Context, src *topSource, interval time.Duration, admin string) error {
	m := topModel{ctx: ctx, src: src, interval: interval, admin: admin}
	_, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
	return err
}
