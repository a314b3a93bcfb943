package jwtcheck

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/zerohop/zerohop/proxy/internal/filewatch"
)

// SourceOptions say where a Verifier's keys come from.
type SourceOptions struct {
	JWKSFile       string
	JWKSURL        string
	HMACSecretFile string
	Algorithms     []string
	// RefreshInterval is the period of JWKSURL fetches. Default 5m.
	RefreshInterval time.Duration
	// MinRefreshInterval bounds fetches for unknown key ids. Default 10s.
	MinRefreshInterval time.Duration
	// Client fetches JWKSURL. Default: a client with a 10s timeout.
	Client *http.Client
	// OnReload reports each reload's outcome (err nil: n keys in use).
	OnReload func(n int, err error)
}

// maxJWKS bounds a fetched key set.
const maxJWKS = 1 << 20

// Source keeps a Verifier's keys current.
type Source struct {
	o SourceOptions
	v *Verifier

	mu          sync.Mutex // one reload at a time; guards the fields below
	jwks        []Key
	secret      []Key
	lastFetch   time.Time
	fileContent []byte
}

// NewSource loads the keys once and gives them to v. A missing or bad
// file is an error; an unreachable URL is not (it is reported through
// OnReload and fetched again later: an identity provider that is down
// must not keep the sidecar from starting), and tokens are refused until
// a set is loaded.
func NewSource(v *Verifier, o SourceOptions) (*Source, error) {
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 5 * time.Minute
	}
	if o.MinRefreshInterval <= 0 {
		o.MinRefreshInterval = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	s := &Source{o: o, v: v}
	if o.HMACSecretFile != "" {
		b, err := os.ReadFile(o.HMACSecretFile)
		if err != nil {
			return nil, fmt.Errorf("jwtcheck: %w", err)
		}
		if err := s.setSecret(b); err != nil {
			return nil, err
		}
	}
	if o.JWKSFile != "" {
		b, err := os.ReadFile(o.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwtcheck: %w", err)
		}
		s.fileContent = b
		keys, err := ParseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.JWKSFile, err)
		}
		s.jwks = keys
	}
	if err := s.publish(); err != nil && o.JWKSURL == "" {
		return nil, err
	}
	if o.JWKSURL != "" {
		s.fetch(context.Background())
	}
	v.o.UnknownKey = s.unknownKey
	return s, nil
}

func (s *Source) setSecret(b []byte) error {
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < 32 {
		return fmt.Errorf("%w: %s: an HS256 secret needs at least 32 bytes", ErrKeySet, s.o.HMACSecretFile)
	}
	s.secret = []Key{{Alg: "HS256", Key: bytes.Clone(b)}}
	return nil
}

// publish builds the set from what is loaded and gives it to the
// Verifier; on error the Verifier keeps its old set.
func (s *Source) publish() error {
	ks, err := NewKeySet(append(append([]Key(nil), s.jwks...), s.secret...), s.o.Algorithms)
	if err != nil {
		return err
	}
	s.v.SetKeys(ks)
	return nil
}

func (s *Source) report(n int, err error) {
	if s.o.OnReload != nil {
		s.o.OnReload(n, err)
	}
}

// fetch gets JWKSURL; the caller holds no lock.
func (s *Source) fetch(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastFetch = time.Now()
	keys, err := s.get(ctx)
	if err == nil {
		old := s.jwks
		s.jwks = keys
		if err = s.publish(); err != nil {
			s.jwks = old
		}
	}
	if err != nil {
		s.report(0, err)
		return
	}
	s.report(s.v.Keys().Len(), nil)
}

func (s *Source) get(ctx context.Context) ([]Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.o.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("jwtcheck: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwtcheck: fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwtcheck: fetch JWKS: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("jwtcheck: fetch JWKS: %w", err)
	}
	if len(b) > maxJWKS {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrKeySet, maxJWKS)
	}
	return ParseJWKS(b)
}

// unknownKey refreshes the set for a token naming a key id it lacks, at
// most once per MinRefreshInterval (a flood of made-up key ids costs one
// fetch per interval), and reports whether the set now has kid.
func (s *Source) unknownKey(kid string) bool {
	if s.o.JWKSURL == "" {
		return false
	}
	s.mu.Lock()
	wait := time.Since(s.lastFetch) < s.o.MinRefreshInterval
	s.mu.Unlock()
	if !wait {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.fetch(ctx)
		cancel()
	}
	ks := s.v.Keys()
	return ks != nil && ks.byKid[kid] != nil
}

// Run keeps the keys current until ctx is done: the file watched, the
// URL fetched every RefreshInterval.
func (s *Source) Run(ctx context.Context) {
	var wg sync.WaitGroup
	watch := func(path string, load func([]byte) error, last []byte) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			filewatch.Watch(ctx, filewatch.Options{Path: path, Load: load,
				OnError: func(err error) { s.report(0, err) }}, last)
		}()
	}
	if s.o.JWKSFile != "" {
		watch(s.o.JWKSFile, func(b []byte) error {
			keys, err := ParseJWKS(b)
			if err != nil {
				return fmt.Errorf("%s: %w", s.o.JWKSFile, err)
			}
			return s.replace(func() error { s.jwks = keys; return nil })
		}, s.fileContent)
	}
	if s.o.HMACSecretFile != "" {
		last, _ := os.ReadFile(s.o.HMACSecretFile)
		watch(s.o.HMACSecretFile, func(b []byte) error {
			return s.replace(func() error { return s.setSecret(b) })
		}, last)
	}
	if s.o.JWKSURL != "" {
		t := time.NewTicker(s.o.RefreshInterval)
		defer t.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
				s.fetch(ctx)
			}
		}
	}
	wg.Wait()
}

// replace changes what is loaded with change and publishes the result;
// on any error the old keys stay.
func (s *Source) replace(change func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	jwks, secret := s.jwks, s.secret
	err := change()
	if err == nil {
		err = s.publish()
	}
	if err != nil {
		s.jwks, s.secret = jwks, secret
		return err
	}
	s.report(s.v.Keys().Len(), nil)
	return nil
}
