package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zerohop/zerohop/internal/sidecar"
	"github.com/zerohop/zerohop/invalidate"
	"github.com/zerohop/zerohop/shm"
	"github.com/zerohop/zerohop/store"
)

// entryInfo is one cached entry as inspect and keys show it.
type entryInfo struct {
	URL           string              `json:"url"`
	Method        string              `json:"method"`
	Kind          string              `json:"kind"` // "response", or "vary" for the marker naming the Vary fields
	Variant       map[string]string   `json:"variant,omitempty"`
	VaryOn        []string            `json:"vary_on,omitempty"`
	Status        int                 `json:"status,omitempty"`
	AgeSeconds    int64               `json:"age_seconds"`
	FreshSeconds  int64               `json:"fresh_seconds"` // left; negative: stale for that long
	Stored        time.Time           `json:"stored"`
	Expires       time.Time           `json:"expires"`
	Tags          []string            `json:"tags,omitempty"`
	Flags         []string            `json:"flags,omitempty"`
	BodyBytes     int                 `json:"body_bytes"`
	EntryBytes    int                 `json:"entry_bytes"`
	Where         []string            `json:"where"`
	Headers       map[string][]string `json:"headers,omitempty"`
	SWRSeconds    uint32              `json:"stale_while_revalidate_seconds,omitempty"`
	SIESeconds    uint32              `json:"stale_if_error_seconds,omitempty"`
	primaryTarget string
	key           string // the cache key: shm and store entries merge on it
}

func describeEntry(e *shm.Entry, nowMs int64, withHeaders bool) (entryInfo, bool) {
	p, ok := shm.SplitKey(e.Key)
	if !ok {
		return entryInfo{}, false
	}
	in := entryInfo{
		URL: string(p.Scheme) + "://" + string(p.Host) + string(p.Target), Method: string(p.Method),
		Kind: "response", Status: e.Status, AgeSeconds: e.AgeSeconds(nowMs),
		FreshSeconds: (e.ExpiresMs - nowMs) / 1000, Stored: time.UnixMilli(e.StoredMs).UTC(),
		Expires: time.UnixMilli(e.ExpiresMs).UTC(), BodyBytes: len(e.Body), EntryBytes: len(e.Raw),
		Where: []string{"shm"}, SWRSeconds: e.SWR, SIESeconds: e.SIE, primaryTarget: string(p.Target), key: string(e.Key),
	}
	if e.Flags&shm.FlagVaryIndex != 0 {
		in.Kind, in.Status = "vary", 0
		for it := shm.NewStringIter(e.Vary); it.Next(); {
			in.VaryOn = append(in.VaryOn, it.String())
		}
	}
	if fields, ok := shm.VaryFields(p.Vary); ok && len(fields) > 0 {
		in.Variant = map[string]string{}
		for _, f := range fields {
			v := f.Value
			if !f.Present {
				v = "(absent)"
			}
			in.Variant[f.Name] = v
		}
	}
	for it := shm.NewStringIter(e.Tags); it.Next(); {
		if t := it.String(); !strings.HasPrefix(t, "\x00") { // the writer's bookkeeping
			in.Tags = append(in.Tags, t)
		}
	}
	for _, f := range []struct {
		bit  uint16
		name string
	}{{shm.FlagMustRevalidate, "must-revalidate"}, {shm.FlagNoCache, "no-cache"},
		{shm.FlagHeadersOnly, "headers-only"}, {shm.FlagAuthShared, "shared-with-authorization"}} {
		if e.Flags&f.bit != 0 {
			in.Flags = append(in.Flags, f.name)
		}
	}
	if withHeaders {
		in.Headers = http.Header{}
		for it := shm.NewHeaderIter(e.Headers); it.Next(); {
			n := http.CanonicalHeaderKey(string(it.Name()))
			in.Headers[n] = append(in.Headers[n], string(it.Value()))
		}
	}
	return in, true
}

// openForInspection maps the cache read-only; it never writes to it.
func openForInspection(dir string) (*shm.Reader, error) {
	r, err := shm.Open(dir, &shm.ReaderOptions{Offline: true})
	if err != nil {
		return nil, fmt.Errorf("open the cache in %s: %w", dir, err)
	}
	return r, nil
}

var cacheDirFlag = &cli.StringFlag{Name: "cache-dir", Value: "/var/run/zerohop", EnvVars: []string{"ZEROHOP_CACHE_DIR"}, Usage: "the shared cache `DIR`"}

func newInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show every cached variant of a URL: status, headers, age, freshness left, tags, size (read-only)",
		ArgsUsage: "URL",
		Description: "Reads the shared cache file, and the store (Pebble) through the running sidecar's admin endpoint\n" +
			"(GET /cache/inspect), which holds the store locked; each entry says where it lives: shm, store or both.\n" +
			"When the admin endpoint does not answer, only shared memory is read, and the output says so.\n" +
			"A response that varies (Vary) shows its marker, which names the request fields, and one entry per variant.",
		Flags: append([]cli.Flag{
			cacheDirFlag,
			&cli.StringFlag{Name: "method", Value: http.MethodGet, Usage: "the request `METHOD` the entry was stored for"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		}, inspectAdminFlags...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("inspect: give one URL", 2)
			}
			scheme, host, target, err := invalidate.SplitURL(c.Args().First())
			if err != nil {
				return cli.Exit("inspect: "+err.Error(), 2)
			}
			primary := shm.AppendKey(nil, c.String("method"), scheme, host, target)
			r, err := openForInspection(c.String("cache-dir"))
			if err != nil {
				return err
			}
			defer r.Close()
			now := time.Now().UnixMilli()
			var found []entryInfo
			skipped, err := r.Walk(func(e *shm.Entry) bool {
				if shm.SameResource(e.Key, primary) {
					if in, ok := describeEntry(e, now, true); ok {
						found = append(found, in)
					}
				}
				return true
			})
			if err != nil {
				return err
			}
			ans, note := askStore(c, "/cache/inspect", url.Values{"url": {c.Args().First()}, "method": {c.String("method")}})
			found = mergeStored(found, ans, now, true)
			sortEntries(found)
			if c.Bool("json") {
				return writeJSON(c.App.Writer, map[string]any{"url": c.Args().First(), "entries": found, "note": note})
			}
			w := c.App.Writer
			if len(found) == 0 {
				where := "not in shared memory nor in the store"
				if ans == nil {
					where = "not in shared memory"
				}
				fmt.Fprintf(w, "%s: %s (%s)\n", c.Args().First(), where, note)
				return cli.Exit("", 1)
			}
			fmt.Fprintf(w, "%s %s: %d entries (%s)\n", c.String("method"), c.Args().First(), len(found), note)
			for _, in := range found {
				printEntry(w, in)
			}
			if skipped > 0 {
				fmt.Fprintf(w, "(%d slots changed while read and were skipped)\n", skipped)
			}
			return nil
		},
	}
}

func sortEntries(es []entryInfo) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].URL != es[j].URL {
			return es[i].URL < es[j].URL
		}
		if es[i].Kind != es[j].Kind {
			return es[i].Kind == "vary" // the marker first
		}
		return fmt.Sprint(es[i].Variant) < fmt.Sprint(es[j].Variant)
	})
}

func printEntry(w io.Writer, in entryInfo) {
	fresh := fmt.Sprintf("fresh for %ds", in.FreshSeconds)
	if in.FreshSeconds <= 0 {
		fresh = fmt.Sprintf("stale for %ds", -in.FreshSeconds)
	}
	if in.Kind == "vary" {
		fmt.Fprintf(w, "\n  vary marker: varies on %s (%s, %d bytes, in %s)\n", strings.Join(in.VaryOn, ", "), fresh, in.EntryBytes, whereText(in))
		return
	}
	fmt.Fprintf(w, "\n  variant %s\n", variantString(in.Variant))
	fmt.Fprintf(w, "    status %d, age %ds, %s (expires %s), stored %s\n", in.Status, in.AgeSeconds, fresh,
		in.Expires.Format(time.RFC3339), in.Stored.Format(time.RFC3339))
	fmt.Fprintf(w, "    body %d bytes, entry %d bytes, in %s\n", in.BodyBytes, in.EntryBytes, whereText(in))
	if len(in.Tags) > 0 {
		fmt.Fprintf(w, "    tags: %s\n", strings.Join(in.Tags, ", "))
	}
	if len(in.Flags) > 0 {
		fmt.Fprintf(w, "    flags: %s\n", strings.Join(in.Flags, ", "))
	}
	if in.SWRSeconds > 0 || in.SIESeconds > 0 {
		fmt.Fprintf(w, "    stale-while-revalidate %ds, stale-if-error %ds\n", in.SWRSeconds, in.SIESeconds)
	}
	names := make([]string, 0, len(in.Headers))
	for n := range in.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, v := range in.Headers[n] {
			fmt.Fprintf(w, "    %s: %s\n", n, v)
		}
	}
}

func variantString(v map[string]string) string {
	if len(v) == 0 {
		return "(no Vary)"
	}
	parts := make([]string, 0, len(v))
	for n, val := range v {
		parts = append(parts, fmt.Sprintf("%s=%q", n, val))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newKeysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "list cached URLs, by URL prefix or surrogate key, with size and freshness (read-only)",
		Description: "Reads the shared cache file, and the store (Pebble) through the running sidecar's admin endpoint\n" +
			"(GET /cache/keys), which holds the store locked; WHERE says shm, store or both. When the admin endpoint\n" +
			"does not answer, only shared memory is read, and the output says so. The sidecar returns at most\n" +
			fmt.Sprintf("%d entries (--limit; default %d) and reads at most %d records per listing.\n", sidecar.MaxCacheKeysLimit, sidecar.DefaultCacheKeysLimit, store.DefaultInspectVisit) +
			"Each line is one stored response (a Vary variant is one line, with its request fields).",
		Flags: append([]cli.Flag{
			cacheDirFlag,
			&cli.StringFlag{Name: "prefix", Usage: "only URLs starting with `URL` (scheme and host included)"},
			&cli.StringFlag{Name: "tag", Usage: "only responses carrying surrogate key `TAG`"},
			&cli.IntFlag{Name: "limit", Value: sidecar.DefaultCacheKeysLimit, Usage: fmt.Sprintf("print at most `N` (at most %d; 0 = that maximum)", sidecar.MaxCacheKeysLimit)},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		}, inspectAdminFlags...),
		Action: func(c *cli.Context) error {
			r, err := openForInspection(c.String("cache-dir"))
			if err != nil {
				return err
			}
			defer r.Close()
			prefix, tag := c.String("prefix"), c.String("tag")
			now := time.Now().UnixMilli()
			var es []entryInfo
			var total int
			_, err = r.Walk(func(e *shm.Entry) bool {
				in, ok := describeEntry(e, now, false)
				if !ok || in.Kind == "vary" || !strings.HasPrefix(in.URL, prefix) {
					return true
				}
				if tag != "" && !hasString(in.Tags, tag) {
					return true
				}
				total++
				es = append(es, in)
				return true
			})
			if err != nil {
				return err
			}
			limit := c.Int("limit")
			if limit < 0 || limit > sidecar.MaxCacheKeysLimit {
				return fmt.Errorf("--limit %d: want 0 to %d", limit, sidecar.MaxCacheKeysLimit)
			}
			if limit == 0 {
				limit = sidecar.MaxCacheKeysLimit
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if prefix != "" {
				q.Set("prefix", prefix)
			}
			if tag != "" {
				q.Set("tag", tag)
			}
			ans, note := askStore(c, "/cache/keys", q)
			es = mergeStored(es, ans, now, false)
			total = max(total, len(es)) // the store's entries not in shared memory
			more := ans != nil && (ans.More || !ans.Complete)
			sortEntries(es)
			if len(es) > limit {
				es = es[:limit]
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, map[string]any{"total": total, "more_in_store": more, "entries": es, "note": note})
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STATUS\tBODY\tFRESH\tAGE\tWHERE\tMETHOD\tURL\tVARIANT\tTAGS")
			for _, in := range es {
				fmt.Fprintf(tw, "%d\t%d\t%ds\t%ds\t%s\t%s\t%s\t%s\t%s\n", in.Status, in.BodyBytes, in.FreshSeconds, in.AgeSeconds,
					whereText(in), in.Method, in.URL, variantString(in.Variant), strings.Join(in.Tags, ","))
			}
			tw.Flush()
			switch {
			case more:
				fmt.Fprintf(c.App.Writer, "(%d shown; the store holds more: --limit, --prefix, --tag)\n", len(es))
			case len(es) < total:
				fmt.Fprintf(c.App.Writer, "(%d of %d shown; --limit)\n", len(es), total)
			}
			fmt.Fprintf(c.App.Writer, "(%s)\n", note)
			if total == 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
